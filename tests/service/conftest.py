"""A real callwatch server on 127.0.0.1 (uvicorn, free port) for in-process tests over real sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from service.core import auth
from service.core.settings import Settings
from service.web import limits as conn_limits
from service.web.app import create_app

DATA = Path(os.environ.get("CALLWATCH_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
CALLS = DATA / "calls" / "dev"
AUDIOHOOK_KEY = "test-audiohook-key"
AUDIOHOOK_SECRET = base64.b64encode(b"test audiohook client secret").decode()


@dataclass
class Server:
    settings: Settings
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def token(self, role: auth.Role, agent_id: str | None = None) -> str:
        return auth.issue(self.settings.secret, role, agent_id)

    def bearer(self, role: auth.Role, agent_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, agent_id)}"}


def make_settings(data_dir: Path, **changes: Any) -> Settings:
    # Tests stream recorded calls as fast as the socket takes them; the real-time bound has its own tests.
    base = Settings(data_dir=data_dir, secret="test-secret", no_asr=True, recording="all",
                    audiohook_api_key=AUDIOHOOK_KEY, audiohook_client_secret=AUDIOHOOK_SECRET, max_audio_speed=0.0)
    return replace(base, **changes)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Server]:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning",
                            lifespan="on", ws_max_size=1 << 20, **conn_limits.protocols(settings))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(settings, port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running(make_settings(tmp_path)) as srv:
        yield srv


def dev_call(name: str, seconds: float | None = None, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    path = CALLS / f"{name}.wav"
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set CALLWATCH_DATA)")
    x, rate = sf.read(path, dtype="int16")
    assert rate == 8000
    a = int(offset * rate)
    b = len(x) if seconds is None else a + int(seconds * rate)
    return np.ascontiguousarray(x[a:b, 0]), np.ascontiguousarray(x[a:b, 1])


async def native_call(srv: Server, customer: np.ndarray, agent: np.ndarray, *, call_id: str,
                      agent_id: str = "agent-1", frame_s: float = 0.2) -> list[dict[str, Any]]:
    """Stream a call as fast as the socket takes it; returns the server's text replies."""
    replies: list[dict[str, Any]] = []
    async with connect(f"{srv.ws}/v1/ingest/native", additional_headers=srv.bearer("ingest")) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": agent_id,
                                  "sample_rate": 8000, "encoding": "pcm16", "channels": 2,
                                  "channel_map": ["customer", "agent"], "language": "en"}))
        replies.append(json.loads(await ws.recv()))
        step = int(frame_s * 8000)
        for i in range(0, len(customer), step):
            frame = np.stack([customer[i:i + step], agent[i:i + step]], axis=1).astype("<i2").tobytes()
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop"}))
        await _drain(ws, replies)
    return replies


async def _drain(ws: ClientConnection, into: list[dict[str, Any]]) -> None:
    with contextlib.suppress(Exception):
        async for msg in ws:
            into.append(json.loads(msg))


async def wait_ended(srv: Server, call_id: str) -> dict[str, Any]:
    """The ingest socket closes at once; the call ends when its last transcripts are in."""
    import httpx

    async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
        for _ in range(3000):
            r = await client.get(f"/v1/calls/{call_id}")
            if r.status_code == 200 and r.json()["status"] not in ("live", "closing"):
                call: dict[str, Any] = r.json()
                return call
            await asyncio.sleep(0.02)
    raise AssertionError(f"call {call_id} did not end")
