"""Faults on the real services, mid-call: PostgreSQL restarted, Redis restarted, the recordings' disk full.

What must hold: no completed call, event or note is lost; live screens recover; a recording that cannot be
written loses only its audio, and says so.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from service.core.settings import Settings
from tests.scale.servers import PostgresServer, RedisServer
from tests.scale.test_two_workers import SECRET, bearer, worker
from tests.service.conftest import Server, make_settings, running, wait_ended
from tests.signals import leg, vowel

GUARD_S = 30.0
STEP = np.zeros((1600, 2), dtype="<i2")  # 0.2 s


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    x = (4000 * np.sin(2 * np.pi * 180 * t)).astype(np.int16)
    return np.stack([x, np.zeros_like(x)], axis=1).astype("<i2")


async def start(srv: Server, call_id: str) -> ClientConnection:
    ws = await connect(f"{srv.ws}/v1/ingest/native", additional_headers=srv.bearer("ingest"))
    await ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": "agent-1"}))
    assert json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))["call_id"] == call_id
    return ws


async def send_audio(ws: ClientConnection, audio: np.ndarray) -> None:
    for i in range(0, len(audio), 1600):
        await ws.send(audio[i:i + 1600].tobytes())


async def stop(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "stop"}))
    try:
        async for _ in ws:
            pass
    except Exception:
        pass


async def test_postgresql_restarted_mid_call_loses_no_call_event_or_note(postgres: PostgresServer, pg_url: str,
                                                                          tmp_path: Path) -> None:
    settings = make_settings(tmp_path, db_url=pg_url, recording="none")
    async with running(settings) as srv:
        ws = await start(srv, "pg-fault")
        await send_audio(ws, tone(2.0))
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            assert (await client.post("/v1/calls/pg-fault/notes", json={"text": "before"})).status_code == 201
        await asyncio.to_thread(postgres.stop)
        try:
            await send_audio(ws, tone(2.0))  # its events are accepted while the database is away
            await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(postgres.start)
        await send_audio(ws, tone(1.0))
        await stop(ws)
        call = await wait_ended(srv, "pg-fault")
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            events = (await client.get("/v1/calls/pg-fault/events")).json()["events"]
            notes = (await client.get("/v1/calls/pg-fault")).json()["notes"]
            metrics = (await client.get("/metrics")).text
    assert call["status"] == "ended" and call["duration"] == 5.0
    kinds = [e["type"] for e in events]
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended"
    published = srv_events_published(metrics)
    assert len(events) == published  # every event the call published is stored: none was dropped
    assert [n["text"] for n in notes] == ["before"]
    assert "callwatch_writer_failures_total 0" in metrics


def srv_events_published(metrics: str) -> int:
    for line in metrics.splitlines():
        if line.startswith("callwatch_events_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no callwatch_events_total in /metrics")


async def test_a_full_recordings_disk_keeps_the_calls_events_and_reports_it(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, recording="all")) as srv:
        recordings = tmp_path / "recordings"
        recordings.mkdir(exist_ok=True)
        part = recordings / "disk-full.part"
        os.symlink("/dev/full", part)  # every write fails with ENOSPC, as on a full disk
        ws = await start(srv, "disk-full")
        await send_audio(ws, tone(3.0))
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            for _ in range(int(GUARD_S / 0.05)):
                metrics = (await client.get("/metrics")).text
                if "callwatch_recording_failures_total 0" not in metrics:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the failed recording writes were not reported")
            part.unlink()  # the disk has room again by the end of the call
            await send_audio(ws, tone(1.0))
            await stop(ws)
            call = await wait_ended(srv, "disk-full")
            events = (await client.get("/v1/calls/disk-full/events")).json()["events"]
            metrics = (await client.get("/metrics")).text
    assert call["status"] == "ended" and call["duration"] == 4.0
    assert len(events) == srv_events_published(metrics) and events[-1]["type"] == "call_ended"
    assert "callwatch_writer_failures_total 0" in metrics


async def test_screens_recover_after_redis_restarts_mid_call(pg_url: str, redis_server: RedisServer,
                                                             tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path, db_url=pg_url, redis_url=redis_server.url, secret=SECRET, no_asr=True,
                    recording="none", max_audio_speed=0.0)
    a, b = (replace(base, data_dir=tmp_path / n, worker_id=n) for n in ("wa", "wb"))
    customer = leg(8.0, [(0.5, vowel(180, -20, 1.5))])
    turn = np.stack([customer, leg(8.0, [], seed=1)], axis=1).astype("<i2")
    async with worker(a) as (_, port_a), worker(b) as (_, port_b):
        # The agent's screen on the other worker: it shows the call's events (dead air here), not only alerts.
        screen = f"ws://127.0.0.1:{port_b}/v1/ws/agent"
        async with connect(screen, additional_headers=bearer("agent", "agent-7")) as sup:
            ingest = await connect(f"ws://127.0.0.1:{port_a}/v1/ingest/native", additional_headers=bearer("ingest"))
            await ingest.send(json.dumps({"type": "start", "call_id": "redis-fault", "agent_id": "agent-7"}))
            await wait_for(sup, lambda m: m.get("type") == "call_started")
            await asyncio.to_thread(redis_server.kill)
            await send_audio(ingest, turn)
            await asyncio.to_thread(redis_server.start)
            # Keep the call going until the screen on the other worker hears from it again.
            async def feed() -> None:  # talk, then fall silent long enough for dead air, in turn
                while True:
                    await send_audio(ingest, turn)
                    await asyncio.sleep(0.2)

            feeding = asyncio.create_task(feed())
            try:
                await wait_for(sup, lambda m: m.get("call_id") == "redis-fault" and m.get("type") == "dead_air")
            finally:
                feeding.cancel()
            await stop(ingest)
            await wait_for(sup, lambda m: m.get("type") == "call_ended" and m.get("call_id") == "redis-fault")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}", headers=bearer("supervisor")) as client:
            r = await client.get("/v1/calls/redis-fault/events")
        kinds = [e["type"] for e in r.json()["events"]]
        assert kinds[0] == "call_started" and kinds[-1] == "call_ended"  # stored through PostgreSQL regardless


async def wait_for(ws: ClientConnection, match: Any) -> dict[str, Any]:
    async def scan() -> dict[str, Any]:
        while True:
            msg = json.loads(await ws.recv())
            if match(msg):
                return msg  # type: ignore[no-any-return]

    return await asyncio.wait_for(scan(), GUARD_S)
