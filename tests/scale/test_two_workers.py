"""Two workers in one process sharing PostgreSQL and Redis: a supervisor on one sees a call ingested by the other.

``test_worker_processes.py`` runs them as separate ``callwatch serve`` processes, and kills one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import connect

from service.core import auth
from service.core.settings import Settings
from service.fanout.bus_hub import BusHub
from service.web import app as app_module
from tests.scale.servers import RedisServer
from tests.scale.test_bus import WAIT_S, until
from tests.signals import leg, vowel

SECRET = "test-secret"


@contextlib.asynccontextmanager
async def worker(settings: Settings) -> AsyncIterator[tuple[Starlette, int]]:
    app = app_module.create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           ws="websockets-sansio", lifespan="on"))
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), "the worker to start")
    if task.done():
        task.result()
    hub = app.state.hub
    assert isinstance(hub, BusHub)
    await until(lambda: hub._events is not None, "the worker's hub to subscribe")
    try:
        yield app, server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
        await hub.close()
        await hub.bus.close()


def bearer(role: auth.Role, agent_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(SECRET, role, agent_id)}"}


async def stream_call(port: int, call_id: str) -> None:
    customer = leg(8.0, [(0.5, vowel(180, -20, 2.0))])
    agent = leg(8.0, [(1.0, vowel(120, -20, 2.0))], seed=1)
    async with connect(f"ws://127.0.0.1:{port}/v1/ingest/native", additional_headers=bearer("ingest")) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": "agent-7", "sample_rate": 8000,
                                  "encoding": "pcm16", "channels": 2, "channel_map": ["customer", "agent"],
                                  "language": "en"}))
        await ws.recv()
        for i in range(0, len(customer), 1600):
            await ws.send(np.stack([customer[i:i + 1600], agent[i:i + 1600]], axis=1).astype("<i2").tobytes())
        await ws.send(json.dumps({"type": "stop"}))
        with contextlib.suppress(Exception):
            async for _ in ws:
                pass


async def test_a_supervisor_on_one_worker_follows_a_call_on_the_other(
        pg_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    # One process: the default worker id (hostname-pid) would be the same for both.
    settings = [Settings(data_dir=tmp_path / name, db_url=pg_url, redis_url=redis_server.url, secret=SECRET,
                         no_asr=True, recording="none", worker_id=name) for name in ("w1", "w2")]
    async with worker(settings[0]) as (_, port_a), worker(settings[1]) as (_, port_b):
        on_b = f"ws://127.0.0.1:{port_b}/v1/ws"
        async with connect(f"{on_b}/supervisor", additional_headers=bearer("supervisor")) as sup, \
                connect(f"{on_b}/agent", additional_headers=bearer("agent", "agent-7")) as ag:
            await stream_call(port_a, "two-1")
            board: list[dict[str, Any]] = []
            while not board or board[-1]["type"] != "call_ended":
                board.append(json.loads(await asyncio.wait_for(sup.recv(), WAIT_S)))
            assert board[0]["type"] == "call_started" and board[0]["call"]["agent_id"] == "agent-7"
            assert {e["call_id"] for e in board} == {"two-1"}
            seen: list[dict[str, Any]] = []
            while not seen or seen[-1]["type"] != "call_ended":
                seen.append(json.loads(await asyncio.wait_for(ag.recv(), WAIT_S)))
            assert "dead_air" in [e["type"] for e in seen]


async def test_an_agent_whose_screen_lands_on_the_other_worker_mid_call_sees_the_call(
        pg_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    """Bug 1 of issue 14: the screen of an agent whose call streams into worker A connects (say, after being cut
    off for lagging) to worker B while the call goes on. It must be shown the call at once, not stay blank until
    the next call_updated."""
    settings = [Settings(data_dir=tmp_path / name, db_url=pg_url, redis_url=redis_server.url, secret=SECRET,
                         no_asr=True, recording="none", worker_id=name) for name in ("w1", "w2")]
    customer = leg(4.0, [(0.5, vowel(180, -20, 2.0))])
    agent = leg(4.0, [(1.0, vowel(120, -20, 2.0))], seed=1)
    async with worker(settings[0]) as (_, port_a), worker(settings[1]) as (app_b, port_b), \
            connect(f"ws://127.0.0.1:{port_a}/v1/ingest/native", additional_headers=bearer("ingest")) as call:
        await call.send(json.dumps({"type": "start", "call_id": "mid-1", "agent_id": "agent-7", "sample_rate": 8000,
                                    "encoding": "pcm16", "channels": 2, "channel_map": ["customer", "agent"],
                                    "language": "en"}))
        await call.recv()
        for i in range(0, len(customer), 1600):
            await call.send(np.stack([customer[i:i + 1600], agent[i:i + 1600]], axis=1).astype("<i2").tobytes())
        hub_b = app_b.state.hub
        await until(lambda: hub_b.is_live_elsewhere("mid-1"), "worker B to hear of the call")
        # The call goes on (no more audio for now, so nothing else is on its way): the screen opens on B.
        async with connect(f"ws://127.0.0.1:{port_b}/v1/ws/agent", additional_headers=bearer("agent", "agent-7")) as ag:
            first = json.loads(await asyncio.wait_for(ag.recv(), WAIT_S))
            assert first["type"] == "call_started" and first["call_id"] == "mid-1"
            assert first["call"]["agent_id"] == "agent-7" and first["call"]["status"] == "live"
            async with connect(f"ws://127.0.0.1:{port_b}/v1/ws/agent",
                               additional_headers=bearer("agent", "agent-8")) as other:
                await call.send(json.dumps({"type": "stop"}))
                seen = [first]
                while seen[-1]["type"] != "call_ended":
                    seen.append(json.loads(await asyncio.wait_for(ag.recv(), WAIT_S)))
                assert {e["call_id"] for e in seen} == {"mid-1"}
                with contextlib.suppress(TimeoutError):
                    got = await asyncio.wait_for(other.recv(), 0.5)
                    raise AssertionError(f"another agent's screen was shown {got!r}")
        # /metrics of a worker on the bus shows the bus's counters and the hub's.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}") as client:
            metrics = (await client.get("/metrics")).text
        lines = set(metrics.splitlines())
        assert {"callwatch_remote_calls_expired_total 0", "callwatch_subscribers_cut_off_total 0"} <= lines
        assert any(line.startswith("callwatch_bus_published ") for line in lines)
        assert any(line.startswith("callwatch_bus_subscriber_reconnects ") for line in lines)
