"""The real service on a ``postgresql://`` URL writes a live call into PostgreSQL and serves it back."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from websockets.asyncio.client import connect

from service.core import auth
from service.core.settings import Settings
from service.storage.postgres import PgStore
from service.web import app as app_module
from tests.scale.test_bus import WAIT_S, until
from tests.signals import leg, vowel


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[int]:
    config = uvicorn.Config(app_module.create_app(settings), host="127.0.0.1", port=0, log_level="warning",
                            ws="websockets-sansio", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started or task.done(), "the server to start")
    if task.done():
        task.result()
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def test_a_live_call_is_stored_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, db_url=pg_url, secret="test-secret", no_asr=True, recording="none",
                        max_audio_speed=0.0)
    customer = leg(10.0, [(0.5, vowel(180, -20, 2.0))])
    agent = leg(10.0, [(1.0, vowel(120, -20, 2.0))], seed=1)

    async with serving(settings) as port:
        headers = {"Authorization": f"Bearer {auth.issue(settings.secret, 'ingest', None)}"}
        async with connect(f"ws://127.0.0.1:{port}/v1/ingest/native", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", "call_id": "pg-1", "agent_id": "agent-7",
                                      "sample_rate": 8000, "encoding": "pcm16", "channels": 2,
                                      "channel_map": ["customer", "agent"], "language": "en"}))
            assert json.loads(await ws.recv())["type"] == "started"
            for i in range(0, len(customer), 1600):
                await ws.send(np.stack([customer[i:i + 1600], agent[i:i + 1600]], axis=1).astype("<i2").tobytes())
            await ws.send(json.dumps({"type": "stop"}))
            with contextlib.suppress(Exception):
                async for _ in ws:
                    pass

        supervisor = {"Authorization": f"Bearer {auth.issue(settings.secret, 'supervisor', None)}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=supervisor,
                                     timeout=WAIT_S) as client:
            call: dict[str, Any] = {}
            for _ in range(int(WAIT_S / 0.05)):
                call = (await client.get("/v1/calls/pg-1")).json()
                if call.get("status") not in (None, "live", "closing"):
                    break
                await asyncio.sleep(0.05)
            assert call["status"] == "ended"
            note = await client.post("/v1/calls/pg-1/notes", json={"text": "checked on PostgreSQL"})
            assert note.status_code in (200, 201)

    # The server (and its writer) are gone: what is left is in the database.
    store = PgStore(pg_url)
    try:
        stored = store.get_call("pg-1")
        assert stored is not None and stored["status"] == "ended" and stored["agent_id"] == "agent-7"
        assert stored["duration"] == pytest.approx(10.0)
        kinds = [e["type"] for e in store.events("pg-1")]
        assert kinds[0] == "call_started" and kinds[-1] == "call_ended"
        assert "dead_air" in kinds
        assert [n["text"] for n in store.notes("pg-1")] == ["checked on PostgreSQL"]
        assert [c["id"] for c in store.list_calls(agent_id="agent-7")] == ["pg-1"]
    finally:
        store.close()
