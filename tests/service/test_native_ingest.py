"""Native ingest over a real websocket: the happy path end to end, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.service.conftest import Server, dev_call, native_call

START = {"type": "start", "call_id": "c-err", "agent_id": "a1", "sample_rate": 8000, "encoding": "pcm16",
         "channels": 2, "channel_map": ["customer", "agent"], "language": "en"}


async def get(srv: Server, path: str, role: Any = "supervisor", agent_id: str | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.http) as client:
        return await client.get(path, headers=srv.bearer(role, agent_id))


@pytest.mark.shared
async def test_a_call_streams_through_and_is_stored(server: Server) -> None:
    customer, agent = dev_call("dev-001-interrupting-agent", seconds=100)
    replies = await native_call(server, customer, agent, call_id="call-1", agent_id="agent-7")
    assert replies[0] == {"type": "started", "call_id": "call-1"}
    r = await get(server, "/v1/calls/call-1")
    assert r.status_code == 200
    call = r.json()
    assert call["status"] == "ended" and call["agent_id"] == "agent-7" and call["duration"] == pytest.approx(100)
    events = (await get(server, "/v1/calls/call-1/events")).json()["events"]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "call_started" and kinds[-1] == "call_ended"
    assert "interruption" in kinds and "prosody" in kinds
    assert all(e["call_id"] == "call-1" for e in events)
    alerts = [e for e in events if e["type"] == "alert"]
    assert any(a["rule"] == "interruption" and a["cause"][0]["type"] == "interruption" for a in alerts)
    ts = [e["t"] for e in events if e["type"] not in ("call_started", "call_updated", "call_ended")]
    assert max(ts) <= 100.0 + 1e-6
    wav = await get(server, "/v1/calls/call-1/recording")
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
    listed = (await get(server, "/v1/calls?agent_id=agent-7")).json()["calls"]
    assert [c["id"] for c in listed] == ["call-1"]


async def test_ingest_needs_an_ingest_token(server: Server) -> None:
    for headers in ({}, server.bearer("supervisor"), {"Authorization": "Bearer nonsense"}):
        with pytest.raises(InvalidStatus) as err:
            async with connect(f"{server.ws}/v1/ingest/native", additional_headers=headers):
                pass
        assert err.value.response.status_code == 401
        assert json.loads(err.value.response.body) == {"error": "unauthorized: no valid ingest token", "status": 401}


async def errors_for(srv: Server, *messages: str | bytes) -> tuple[dict[str, Any], int | None]:
    async with connect(f"{srv.ws}/v1/ingest/native?token={srv.token('ingest')}") as ws:
        reply: dict[str, Any] = {}
        for m in messages:
            await ws.send(m)
        try:
            async for msg in ws:
                reply = json.loads(msg)
        except ConnectionClosed:
            pass
        return reply, ws.close_code


@pytest.mark.parametrize(("messages", "code", "close"), [
    (["{not json"], "bad_json", 1007),
    ([b"\x00\x01\x02\x03"], "not_started", 1008),
    ([json.dumps({**START, "encoding": "g729"})], "unsupported_encoding", 1003),
    ([json.dumps({**START, "sample_rate": 1})], "unsupported_sample_rate", 1003),
    ([json.dumps(START), b"\x00" * 3], "bad_frame", 1007),
    ([json.dumps(START), b"\x00" * (300 * 1024)], "frame_too_big", 1009),
    ([json.dumps(START), json.dumps(START)], "already_started", 1008),
])
async def test_bad_input_gets_an_error_and_a_close_code(server: Server, messages: list[str | bytes], code: str,
                                                        close: int) -> None:
    reply, close_code = await errors_for(server, *messages)
    assert reply.get("type") == "error" and reply.get("code") == code and reply.get("message")
    assert close_code == close


async def test_a_bad_connection_does_not_disturb_a_good_one(server: Server) -> None:
    silence = np.zeros(1600, dtype=np.int16)
    async with connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest")) as good:
        await good.send(json.dumps({**START, "call_id": "good"}))
        assert json.loads(await good.recv())["type"] == "started"
        await errors_for(server, json.dumps({**START, "call_id": "bad"}), b"\x00" * 5)
        await errors_for(server, json.dumps({**START, "call_id": "good"}))  # same id while live: refused
        await good.send(np.stack([silence, silence], 1).tobytes())
        await good.send(json.dumps({"type": "stop"}))
        with pytest.raises(ConnectionClosed):
            await good.recv()
        assert good.close_code == 1000
    call = (await get(server, "/v1/calls/good")).json()
    assert call["status"] == "ended" and call["duration"] == pytest.approx(0.2)
    bad = (await get(server, "/v1/calls/bad")).json()
    assert bad["status"] == "ended" and bad["duration"] == 0


async def test_a_dropped_connection_closes_the_call_cleanly(server: Server) -> None:
    tone = (3000 * np.sin(np.arange(8000) * 0.3)).astype(np.int16)
    ws = await connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest"))
    await ws.send(json.dumps({**START, "call_id": "dropped"}))
    await ws.recv()
    await ws.send(np.stack([tone, tone], 1).tobytes())
    ws.transport.abort()  # no close handshake, like a crashed sender
    for _ in range(200):
        call = (await get(server, "/v1/calls/dropped")).json()
        if call["status"] != "live":
            break
        import asyncio
        await asyncio.sleep(0.02)
    assert call["status"] == "ended" and call["duration"] == pytest.approx(1.0)


async def test_a_sender_that_never_starts_or_goes_quiet_is_closed(tmp_path: Path) -> None:
    from tests.service.conftest import make_settings, running, wait_ended

    async with running(make_settings(tmp_path, start_timeout_s=0.2, idle_timeout_s=0.3)) as srv:
        reply, close_code = await errors_for(srv)
        assert (reply.get("code"), close_code) == ("start_timeout", 1008)
        reply, close_code = await errors_for(srv, json.dumps({**START, "call_id": "stalled"}))
        assert (reply.get("code"), close_code) == ("idle_timeout", 1008)
        assert (await wait_ended(srv, "stalled"))["status"] == "ended"
