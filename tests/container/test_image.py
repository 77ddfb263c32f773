"""The Docker image, built from the unchanged Dockerfile and run for real (podman, runc), as an operator would.

One container on its defaults (SQLite, in-process bus, the bundled Whisper model): its own HEALTHCHECK passes,
a labelled call with an interruption streamed by ``callwatch replay`` into its ingest socket brings the agent
the interruption alert, and it stops cleanly on SIGTERM. Then two worker containers sharing a real PostgreSQL
and Redis on 127.0.0.1: a call on each, each call's alert reaching its agent connected to the other worker.

Everything listens on and connects to 127.0.0.1 only. Nothing here measures time: every wait is bounded and
polls for a state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from service.core import auth
from tests.container.podman import REPO, Container, start
from tests.scale.servers import RedisServer, free_port

pytestmark = [pytest.mark.container, pytest.mark.shared]

DATA = Path(os.environ.get("CALLWATCH_DATA", REPO.parent / "shared" / "data"))
CALL = DATA / "calls" / "dev" / "dev-001-interrupting-agent.wav"
"""Labelled: the agent cuts the customer off at 42.7 s and 52.9 s."""
CALL_S = 58.0
SPEED = 4.0
SECRET = "container-test-secret-" + "0" * 32
WAIT_S = 120.0
"""For an alert once the call is streamed; the replay itself waits up to 60 s for each call's end."""
REPLAY_TIMEOUT_S = CALL_S / SPEED + 180.0


@pytest.fixture(scope="session")
def call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled call up to just past its two interruptions: one alert (the second is within the cooldown)."""
    if not CALL.is_file():
        pytest.skip(f"{CALL} not found (set CALLWATCH_DATA)")
    x, rate = sf.read(CALL, dtype="int16", always_2d=True)
    out = tmp_path_factory.mktemp("call") / "interrupting.wav"
    sf.write(out, x[: int(CALL_S * rate)], rate, subtype="PCM_16")
    return out


@contextlib.contextmanager
def container(image: str, env: dict[str, str], args: list[str] | None = None) -> Iterator[Container]:
    c = start(image, free_port(), {"CALLWATCH_SECRET": SECRET, **env}, args)
    try:
        yield c
    finally:
        c.remove()


@contextlib.contextmanager
def replay(c: Container, wav: Path, agent_id: str) -> Iterator[subprocess.Popen[str]]:
    """``callwatch replay`` from this checkout into the container's native ingest socket, as the agent too."""
    env = {**os.environ, "CALLWATCH_SECRET": SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-m", "service", "replay", str(wav), "--url", c.ws, "--protocol", "native",
         "--speed", str(SPEED), "--agent-id", agent_id, "--language", "en"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stdout and not proc.stdout.closed:
            proc.communicate()


def finished(proc: subprocess.Popen[str], *containers: Container) -> dict[str, Any]:
    """The replay's closing JSON line, after it exits 0 (no errors: every call ended)."""
    try:
        out, _ = proc.communicate(timeout=REPLAY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"callwatch replay did not finish in {REPLAY_TIMEOUT_S:.0f} s:\n{out}\n{logs(*containers)}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        pytest.fail(f"callwatch replay exited {proc.returncode}:\n{out}\n{logs(*containers)}")
    summary: dict[str, Any] = json.loads(lines[-1])
    return summary


def logs(*containers: Container) -> str:
    return "\n".join(f"--- {c.name} ---\n{c.logs()}" for c in containers)


@dataclass
class Agent:
    """An agent's screen: every event of its calls, collected in the background."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def alerts(self, rule: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "alert" and e.get("rule") == rule]


@contextlib.asynccontextmanager
async def agent_screen(c: Container, agent_id: str) -> AsyncIterator[Agent]:
    token = auth.issue(SECRET, "agent", agent_id)
    screen = Agent()

    async def collect(ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                screen.events.append(json.loads(raw))

    async with connect(f"{c.ws}/v1/ws/agent", additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        task = asyncio.create_task(collect(ws))
        try:
            yield screen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until_alert(screen: Agent, rule: str, *containers: Container) -> dict[str, Any]:
    """The first such alert; fails once the call has ended without one (alerts come before the end)."""
    for _ in range(int(WAIT_S / 0.1)):
        if found := screen.alerts(rule):
            return found[0]
        if any(e.get("type") == "call_ended" for e in screen.events):
            break
        await asyncio.sleep(0.1)
    got = Counter(str(e.get("type")) for e in screen.events)
    pytest.fail(f"no {rule} alert on the agent's screen; it got {dict(got)}\n{logs(*containers)}")


async def get(url: str, role: auth.Role | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {auth.issue(SECRET, role)}"} if role else {}
    async with httpx.AsyncClient() as http:
        return await http.get(url, headers=headers, timeout=10)


async def test_the_image_passes_its_health_check_and_alerts_an_agent_on_a_live_call(
        call: Path, image: str) -> None:
    # Its defaults (SQLite and recordings in its data dir, the in-process bus, Whisper on); only the audio
    # speed bound is lifted so that the call can be sent at four times real time.
    with container(image, {"CALLWATCH_MAX_AUDIO_SPEED": "0"}) as c:
        await asyncio.to_thread(c.wait_healthy)
        health = (await get(f"{c.http}/healthz")).json()
        assert health["asr"] is True, f"the bundled Whisper model did not load in the container: {health}"
        async with agent_screen(c, "ann") as screen:
            with replay(c, call, "ann") as proc:
                alert = await until_alert(screen, "interruption", c)
                summary = await asyncio.to_thread(finished, proc, c)
        assert summary["errors"] == 0 and summary["alerts"] >= 1, summary
        assert alert["call_id"].startswith("replay-")
        assert 42.0 < alert["t"] < CALL_S, alert  # the labelled cut-off at 42.7 s, not something else
        # The stored call, over the REST API, as a supervisor.
        r = await get(f"{c.http}/v1/calls/{alert['call_id']}", "supervisor")
        assert r.status_code == 200, r.text
        assert c.healthcheck()
        code = await asyncio.to_thread(c.stop)
        assert code == 0, f"the service did not exit cleanly on SIGTERM ({code}):\n{c.logs()}"


async def test_two_worker_containers_share_postgresql_and_redis(
        call: Path, image: str, pg_url: str, redis_server: RedisServer) -> None:
    env = {"CALLWATCH_DB": pg_url, "CALLWATCH_REDIS": redis_server.url, "CALLWATCH_MAX_AUDIO_SPEED": "0"}
    # As compose.yaml runs them, less Whisper (two cores are all a CI machine has).
    with container(image, env, ["--no-asr"]) as a, container(image, env, ["--no-asr"]) as b:
        await asyncio.gather(asyncio.to_thread(a.wait_healthy), asyncio.to_thread(b.wait_healthy))
        # Each agent's screen is on the other worker than their call: the alert crosses the Redis bus.
        async with agent_screen(b, "ann") as ann, agent_screen(a, "bob") as bob:
            with replay(a, call, "ann") as on_a, replay(b, call, "bob") as on_b:
                alert_ann = await until_alert(ann, "interruption", a, b)
                alert_bob = await until_alert(bob, "interruption", a, b)
                summaries = await asyncio.gather(asyncio.to_thread(finished, on_a, a, b),
                                                 asyncio.to_thread(finished, on_b, a, b))
        for summary in summaries:
            assert summary["errors"] == 0 and summary["alerts"] >= 1, summaries
        assert alert_ann["call_id"] != alert_bob["call_id"]
        # Both calls are in the one database: listed, ended, by either worker.
        r = await get(f"{a.http}/v1/calls", "supervisor")
        r.raise_for_status()
        statuses = {x["id"]: x["status"] for x in r.json()["calls"]}
        assert statuses.get(alert_ann["call_id"]) == "ended", statuses
        assert statuses.get(alert_bob["call_id"]) == "ended", statuses
        for c in (a, b):
            assert await asyncio.to_thread(c.stop) == 0, c.logs()
