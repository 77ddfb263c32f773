"""Two real ``callwatch serve`` processes sharing a real PostgreSQL and Redis, and what killing one does.

A call ingested on worker A alerts an agent and a supervisor connected to worker B and is listed by B's REST
API. Then A is killed (SIGKILL) in the middle of a call: B closes that call in the store as interrupted,
with what was received, once A's heartbeat is older than the timeout (set small here), and ends it on its
supervisor's board; B's own call, streaming all along, is untouched and keeps going.

Nothing here measures time: every wait polls for a state, with a generous deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from service.core import auth
from tests.scale.servers import RedisServer, free_port
from tests.scale.test_two_workers import SECRET, bearer, stream_call
from tests.signals import leg, vowel

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 30.0
HEARTBEAT_S = 0.5
TIMEOUT_S = 3.0
CHUNK = 800  # 100 ms at 8 kHz


@dataclass
class Worker:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start_worker(name: str, db: str, redis: str, tmp: Path) -> Worker:
    port = free_port()
    env = {**os.environ, "CALLWATCH_SECRET": SECRET, "PYTHONUNBUFFERED": "1",
           "CALLWATCH_HEARTBEAT_S": str(HEARTBEAT_S), "CALLWATCH_WORKER_TIMEOUT_S": str(TIMEOUT_S)}
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", str(port), "--db", db, "--redis", redis,
             "--worker-id", name, "--no-asr", "--recording", "none", "--data-dir", str(tmp / name),
             "--log-level", "warning"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Worker(name, port, proc, log)


async def until(condition: Callable[[], Any], what: str, workers: tuple[Worker, ...] = ()) -> Any:
    for _ in range(int(WAIT_S / 0.05)):
        result = condition()
        if result:
            return result
        await asyncio.sleep(0.05)
    logs = "\n".join(f"--- {w.name} ---\n{w.tail()}" for w in workers)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


async def healthy(w: Worker) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(int(60 / 0.2)):  # a cold start on a busy machine imports numpy, starlette, psycopg...
            if w.proc.poll() is not None:
                pytest.fail(f"worker {w.name} exited with {w.proc.returncode}:\n{w.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{w.port}/healthz", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    pytest.fail(f"worker {w.name} did not answer /healthz:\n{w.tail()}")


@contextlib.asynccontextmanager
async def two_workers(db: str, redis: str, tmp: Path) -> AsyncIterator[tuple[Worker, Worker]]:
    a, b = start_worker("worker-a", db, redis, tmp), start_worker("worker-b", db, redis, tmp)
    try:
        await asyncio.gather(healthy(a), healthy(b))
        yield a, b
    finally:
        for w in (a, b):
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in (a, b):
            try:
                w.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


@dataclass
class Screen:
    """Everything one websocket subscriber receives, collected in the background."""

    ws: ClientConnection
    events: list[dict[str, Any]] = field(default_factory=list)

    async def collect(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                self.events.append(json.loads(raw))

    def of(self, call_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("call_id") == call_id and e["type"] == kind]


@contextlib.asynccontextmanager
async def screen(url: str, headers: dict[str, str]) -> AsyncIterator[Screen]:
    async with connect(url, additional_headers=headers) as ws:
        s = Screen(ws)
        task = asyncio.create_task(s.collect())
        try:
            yield s
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class PacedCall:
    """A call streamed at real-time pace until told to stop (or until its worker goes away)."""

    port: int
    call_id: str
    agent_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    sent_s: float = 0.0
    cut_off: bool = False

    async def run(self) -> None:
        customer = leg(60.0, [(t, vowel(180, -20, 1.5)) for t in np.arange(0.5, 58, 6.0)])
        agent = leg(60.0, [(t, vowel(120, -20, 1.5)) for t in np.arange(3.5, 58, 6.0)], seed=1)
        headers = bearer("ingest")
        try:
            async with connect(f"ws://127.0.0.1:{self.port}/v1/ingest/native", additional_headers=headers) as ws:
                await ws.send(json.dumps({"type": "start", "call_id": self.call_id, "agent_id": self.agent_id,
                                          "sample_rate": 8000, "encoding": "pcm16", "channels": 2,
                                          "channel_map": ["customer", "agent"], "language": "en"}))
                await ws.recv()
                loop = asyncio.get_running_loop()
                began = loop.time()
                for i in range(0, len(customer), CHUNK):
                    if self.stop.is_set():
                        break
                    frame = np.stack([customer[i:i + CHUNK], agent[i:i + CHUNK]], axis=1).astype("<i2").tobytes()
                    await ws.send(frame)
                    self.sent_s = (i + CHUNK) / 8000
                    await asyncio.sleep(max(0.0, began + self.sent_s - loop.time()))
                await ws.send(json.dumps({"type": "stop"}))
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        pass
        except (ConnectionClosed, OSError):
            self.cut_off = True


def db_call(db: str, call_id: str) -> dict[str, Any] | None:
    with psycopg.connect(db, autocommit=True) as conn:
        row = conn.execute("SELECT status, worker, started, ended, duration FROM calls WHERE id = %s",
                           (call_id,)).fetchone()
        n = conn.execute("SELECT COUNT(*) FROM events WHERE call_id = %s", (call_id,)).fetchone()
        last = conn.execute("SELECT type FROM events WHERE call_id = %s ORDER BY seq DESC LIMIT 1",
                            (call_id,)).fetchone()
    if row is None:
        return None
    return {**dict(zip(("status", "worker", "started", "ended", "duration"), row, strict=True)),
            "events": n[0] if n else 0, "last_event": last[0] if last else None}


async def listed(port: int, live: bool | None = None) -> dict[str, str]:
    params = {} if live is None else {"live": str(live).lower()}
    async with httpx.AsyncClient() as http:
        r = await http.get(f"http://127.0.0.1:{port}/v1/calls", params=params,
                           headers={"Authorization": f"Bearer {auth.issue(SECRET, 'supervisor')}"}, timeout=10)
    r.raise_for_status()
    return {c["id"]: c["status"] for c in r.json()["calls"]}


async def test_killing_a_worker_mid_call_closes_its_call_and_leaves_the_others_alone(
        pg_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    async with two_workers(pg_url, redis_server.url, tmp_path) as (a, b):
        both = (a, b)
        on_b = f"ws://127.0.0.1:{b.port}/v1/ws"
        async with screen(f"{on_b}/supervisor", bearer("supervisor")) as board, \
                screen(f"{on_b}/agent", bearer("agent", "agent-7")) as agent:
            # A call on A: the agent and the supervisor on B get its alerts; B's REST API lists it.
            await stream_call(a.port, "proc-1")
            await until(lambda: board.of("proc-1", "call_ended") and agent.of("proc-1", "call_ended"),
                        "B's screens to see the call on A end", both)
            assert board.of("proc-1", "call_started")[0]["call"]["agent_id"] == "agent-7"
            assert {e["rule"] for e in agent.of("proc-1", "alert")} >= {"interruption", "dead_air"}
            assert {e["rule"] for e in board.of("proc-1", "alert")} >= {"interruption", "dead_air"}
            assert (await listed(b.port))["proc-1"] == "ended"

            # A call on each worker; A's is cut off by killing A.
            on_a, on_b_call = PacedCall(a.port, "proc-2", "agent-8"), PacedCall(b.port, "proc-3", "agent-9")
            tasks = [asyncio.create_task(c.run()) for c in (on_a, on_b_call)]
            await until(lambda: board.of("proc-2", "call_started") and board.of("proc-3", "call_started"),
                        "B's board to show both live calls", both)
            assert {"proc-2", "proc-3"} <= set(await listed(b.port, live=True))
            mid = await until(lambda: (c := db_call(pg_url, "proc-2")) and c["events"] >= 5 and c,
                              "A's call to have stored some of its analysis", both)
            assert mid["status"] == "live" and mid["worker"] == "worker-a"
            assert db_call(pg_url, "proc-3")["worker"] == "worker-b"  # type: ignore[index]

            a.proc.kill()
            a.proc.wait(timeout=30)
            sent_at_kill = on_b_call.sent_s

            closed = await until(lambda: (c := db_call(pg_url, "proc-2")) and c["status"] != "live" and c,
                                 "B to close the killed worker's call in the store", both)
            assert closed["status"] == "interrupted"
            assert closed["last_event"] == "call_ended"
            assert closed["duration"] > 0 and closed["ended"] == pytest.approx(closed["started"] + closed["duration"])
            ended = (await until(lambda: board.of("proc-2", "call_ended"), "B's board to end A's call", both))[0]
            assert ended["call"]["status"] == "interrupted"
            assert "proc-2" not in await listed(b.port, live=True)
            assert (await listed(b.port))["proc-2"] == "interrupted"
            assert on_a.cut_off
            assert "call proc-2 was left live by a worker that stopped responding" in b.tail()

            # B's own call went on throughout.
            assert "proc-3" in await listed(b.port, live=True)
            still = db_call(pg_url, "proc-3")
            assert still is not None and still["status"] == "live" and still["worker"] == "worker-b"
            assert not board.of("proc-3", "call_ended")
            on_b_call.stop.set()
            await asyncio.gather(*tasks)
            assert not on_b_call.cut_off and on_b_call.sent_s > sent_at_kill
            await until(lambda: board.of("proc-3", "call_ended"), "B's own call to end normally", both)
            final = db_call(pg_url, "proc-3")
            assert final is not None and final["status"] == "ended"
            assert final["duration"] == pytest.approx(on_b_call.sent_s, abs=0.11)
        assert b.proc.poll() is None, b.tail()
