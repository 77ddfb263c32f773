"""The one socket pump that drives every ingest parser: what happens when something unforeseen breaks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from service.live.pipeline import LiveCall
from tests.service.audiohook_client import Client
from tests.service.conftest import Server, wait_ended

GUARD_S = 20.0


def boom(*_: Any, **__: Any) -> None:
    raise RuntimeError("boom")


async def ended_reason(srv: Server, call_id: str) -> str:
    await wait_ended(srv, call_id)
    async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
        r = await client.get(f"/v1/calls/{call_id}/events?type=call_ended")
    [ended] = r.json()["events"]
    return str(ended["reason"])


async def test_a_crash_in_an_audiohook_session_ends_the_call_as_internal(server: Server,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveCall, "update_language", boom)
    cl = Client(server)
    ws = await cl.connect()
    assert (await cl.open("conv-crash"))["type"] == "opened"
    await cl.send("update", language="en-GB")
    bye = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
    # An AudioHook client is told in its own protocol, and may still end the session itself.
    assert bye["type"] == "disconnect" and bye["parameters"] == {"reason": "error", "info": "internal error"}
    await cl.send("close", reason="error")
    assert json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))["type"] == "closed"
    await ws.close()
    assert await ended_reason(server, "conv-crash") == "internal"


async def test_a_crash_in_a_native_stream_ends_the_call_as_internal(server: Server,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LiveCall, "feed", boom)
    async with connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest")) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": "native-crash", "agent_id": "a"}))
        assert json.loads(await ws.recv())["type"] == "started"
        await ws.send(np.zeros((800, 2), "<i2").tobytes())
        replies = []
        with contextlib.suppress(ConnectionClosed):
            while True:
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), GUARD_S)))
    assert replies == [{"type": "error", "code": "internal", "message": "internal error"}]
    assert ws.close_code == 1011
    assert await ended_reason(server, "native-crash") == "internal"
