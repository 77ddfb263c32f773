"""Issue 15's findings, one test each (or more), as an operator and an attacker found them: over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.core import auth
from service.core.logsafe import redact
from service.ingest.audiohook import AudioHookSession
from service.ingest.common import CallAudio, IngestError, clean_id
from service.ingest.native import parse_json
from service.storage.sqlite import Store
from tests.service.audiohook_client import OFFER, Client
from tests.service.conftest import Server, dev_call, make_settings, native_call, running, wait_ended

GUARD_S = 20.0
"""An upper bound on waits for something that must happen, so a regression fails instead of hanging."""


def tone(seconds: float, amp: int = 3000, hz: float = 200.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


async def get(srv: Server, path: str, role: auth.Role = "supervisor") -> httpx.Response:
    async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer(role)) as client:
        return await client.get(path)


async def native_start(srv: Server, call_id: str, agent_id: str = "agent-1") -> tuple[Any, dict[str, Any]]:
    ws = await connect(f"{srv.ws}/v1/ingest/native", additional_headers=srv.bearer("ingest"))
    await ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": agent_id}))
    return ws, json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))


async def recv_until_closed(ws: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), GUARD_S)))
    return got


# -- 1. a reused call id never wipes the call that had it --------------------------------------------------


async def test_a_reused_native_id_starts_a_linked_call_and_keeps_the_first(server: Server) -> None:
    silence = np.zeros(16000, dtype=np.int16)
    first = await native_call(server, tone(2), silence, call_id="reuse-1", agent_id="agent-a")
    assert first[0] == {"type": "started", "call_id": "reuse-1"}
    await wait_ended(server, "reuse-1")
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        assert (await client.post("/v1/calls/reuse-1/notes", json={"text": "keep me"})).status_code == 201
    before = (await get(server, "/v1/calls/reuse-1/events")).json()["events"]
    again = await native_call(server, silence[:1600], silence[:1600], call_id="reuse-1", agent_id="agent-b")
    assert again[0] == {"type": "started", "call_id": "reuse-1~2"}
    second = await wait_ended(server, "reuse-1~2")
    assert second["previous"] == "reuse-1" and second["agent_id"] == "agent-b"
    kept = (await get(server, "/v1/calls/reuse-1")).json()
    assert kept["agent_id"] == "agent-a" and kept["duration"] == pytest.approx(2.0)
    assert [n["text"] for n in kept["notes"]] == ["keep me"] and kept["previous"] is None
    assert (await get(server, "/v1/calls/reuse-1/events")).json()["events"] == before
    assert (await get(server, "/v1/calls/reuse-1/recording")).status_code == 200
    third = await native_call(server, silence[:800], silence[:800], call_id="reuse-1")
    assert third[0]["call_id"] == "reuse-1~3"
    assert (await wait_ended(server, "reuse-1~3"))["previous"] == "reuse-1~2"


async def test_a_reused_audiohook_conversation_keeps_the_first_call(server: Server) -> None:
    for n in range(2):
        cl = Client(server)
        await cl.connect()
        assert (await cl.open("conv-again"))["type"] == "opened"
        await cl.audio(tone(1.0 + n), tone(1.0 + n))
        await cl.send("close", reason="end")
        assert (await cl.recv())["type"] == "closed"
    first, second = await wait_ended(server, "conv-again"), await wait_ended(server, "conv-again~2")
    assert first["duration"] == pytest.approx(1.0) and second["duration"] == pytest.approx(2.0)


async def test_an_id_that_is_still_streaming_is_refused(server: Server) -> None:
    ws, started = await native_start(server, "twice")
    assert started["call_id"] == "twice"
    ws2, refused = await native_start(server, "twice")
    assert refused["type"] == "error" and refused["code"] == "call_live"
    await ws2.close()
    await ws.send(json.dumps({"type": "stop"}))
    await recv_until_closed(ws)
    assert (await wait_ended(server, "twice"))["status"] == "ended"


async def test_a_second_audiohook_session_of_a_live_conversation_gets_disconnect_not_opened(server: Server) -> None:
    a, b = Client(server), Client(server)
    await a.connect()
    assert (await a.open("conv-dup"))["type"] == "opened"
    await b.connect()
    reply = await b.open("conv-dup")
    assert reply["type"] == "disconnect" and "already streaming" in reply["parameters"]["info"]
    await a.send("close", reason="end")
    assert (await a.recv())["type"] == "closed"


# -- 2. a crash keeps the interrupted call's audio, and the call stops reading as live -------------------


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


async def test_a_crashed_workers_call_keeps_its_recording_and_is_closed_at_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, recording="all")
    crashed = f"{socket.gethostname()}-{dead_pid()}"
    store = Store(settings.database_url, worker_id=crashed)
    store.heartbeat(crashed)  # it was alive a moment ago: the heartbeat timeout has not run out
    store.write([("call", {"id": "cut-off", "agent_id": "a1", "source": "native", "language": "en",
                           "started": time.time() - 5, "ended": None, "status": "live", "duration": 0.0,
                           "escalation_score": 0, "flagged": False, "flags": [], "counts": {},
                           "recording": None})])
    store.close()
    audio = np.stack([tone(3.0), tone(3.0, hz=300)], axis=1).astype("<i2")
    (tmp_path / "recordings").mkdir()
    (tmp_path / "recordings" / "cut-off.part").write_bytes(audio.tobytes())
    async with running(settings) as srv:
        call = (await get(srv, "/v1/calls/cut-off")).json()
        assert call["status"] == "interrupted"
        wav = await get(srv, "/v1/calls/cut-off/recording")
        assert wav.status_code == 200
    path = tmp_path / "recordings" / "cut-off.wav"
    data, rate = sf.read(path, dtype="int16")
    assert rate == 8000 and np.array_equal(data, audio)


# -- 3. a huge `discarded` is a gap on the clock, never an hour of analysis or audio ---------------------


async def test_a_long_discarded_gap_moves_the_clock_without_being_analysed_or_recorded(server: Server) -> None:
    cl = Client(server)
    await cl.connect()
    await cl.open("conv-gap")
    await cl.audio(tone(1.0), tone(1.0))
    await cl.send("paused")
    await cl.send("resumed", discarded="PT3000S")
    await cl.audio(tone(1.0), tone(1.0))
    await cl.send("close", reason="end")
    assert (await cl.recv())["type"] == "closed"
    call = await wait_ended(server, "conv-gap")
    assert call["duration"] == pytest.approx(3002.0)
    events = (await get(server, "/v1/calls/conv-gap/events")).json()["events"]
    [gap] = [e for e in events if e["type"] == "gap"]
    assert gap["start"] == pytest.approx(1.0) and gap["duration"] == pytest.approx(3000.0)
    recorded, _ = sf.read(server.settings.data_dir / "recordings" / "conv-gap.wav", dtype="int16")
    assert len(recorded) == 16000  # what was sent, not 3000 s of silence


async def test_a_gap_beyond_the_calls_clock_is_refused(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, max_audio_speed=2.0, audio_burst_s=10.0)) as srv:
        cl = Client(srv)
        ws = await cl.connect()
        await cl.open("conv-hour")
        await cl.audio(tone(0.5), tone(0.5))
        await cl.send("discarded", discarded="PT3599S")
        reply = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
        assert reply["type"] == "disconnect" and "faster than real time" in reply["parameters"]["info"]
        await cl.send("close", reason="error")
        assert json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))["type"] == "closed"
        await ws.close()
        call = await wait_ended(srv, "conv-hour")
        assert call["duration"] == pytest.approx(0.5)
        # The client's close answers our disconnect: the call ends for our reason, not the echo.
        [ended] = (await get(srv, "/v1/calls/conv-hour/events?type=call_ended")).json()["events"]
        assert ended["reason"] == "too_fast"


# -- 4. no socket is held without authenticating; slow heads and crowds are cut off -----------------------


async def test_twilio_connected_messages_do_not_keep_an_unauthenticated_socket_open(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, start_timeout_s=1.0)) as srv:
        async with connect(f"{srv.ws}/v1/ingest/twilio") as ws:
            async def chatter() -> None:
                while True:
                    await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
                    await asyncio.sleep(0.2)

            task = asyncio.create_task(chatter())
            try:
                reply = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
            finally:
                task.cancel()
            assert reply == {"type": "error", "code": "start_timeout",
                             "message": "no call started within 1 s"}


async def raw_connect(srv: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", srv.port)


async def test_a_request_head_sent_slowly_is_cut_off(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, header_timeout_s=0.5)) as srv:
        reader, writer = await raw_connect(srv)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), GUARD_S)  # to EOF: the server closed
        assert answer.startswith(b"HTTP/1.1 408")
        writer.close()
        async with httpx.AsyncClient(base_url=srv.http) as client:  # a prompt client is served as ever
            assert (await client.get("/healthz")).status_code == 200


async def test_connections_from_one_address_are_capped(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, max_connections_per_address=3)) as srv:
        held = [await raw_connect(srv) for _ in range(3)]
        reader, writer = await raw_connect(srv)
        answer = await asyncio.wait_for(reader.read(), GUARD_S)
        assert answer.startswith(b"HTTP/1.1 503") and b"this address" in answer
        for _, w in [*held, (reader, writer)]:
            w.close()
        for _ in range(200):  # the held ones are released; the server takes new connections again
            try:
                async with httpx.AsyncClient(base_url=srv.http) as client:
                    if (await client.get("/healthz")).status_code == 200:
                        break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the server stayed closed after the connections were released")


async def test_connections_in_all_are_capped(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, max_connections=2)) as srv:
        held = [await raw_connect(srv) for _ in range(2)]
        reader, writer = await raw_connect(srv)
        answer = await asyncio.wait_for(reader.read(), GUARD_S)
        assert answer.startswith(b"HTTP/1.1 503") and b"too many open connections" in answer
        for _, w in [*held, (reader, writer)]:
            w.close()


# -- 5. a call may not deliver audio faster than its clock allows -----------------------------------------


async def test_a_flood_faster_than_real_time_is_cut_off_and_what_came_before_is_kept(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, max_audio_speed=2.0, audio_burst_s=3.0)) as srv:
        ws, started = await native_start(srv, "flood")
        assert started["call_id"] == "flood"
        frame = np.zeros((1600, 2), dtype="<i2").tobytes()  # 0.2 s
        with contextlib.suppress(ConnectionClosed):
            for _ in range(600):  # 120 s of audio, sent at once
                await ws.send(frame)
        replies = await recv_until_closed(ws)
        assert replies[-1]["code"] == "too_fast" and ws.close_code == 1008
        call = await wait_ended(srv, "flood")
        assert call["status"] == "ended" and 3.0 <= call["duration"] < 30.0


# -- 6-8. Genesys AudioHook conformance ------------------------------------------------------------------

REVERSED = [{"type": "audio", "format": "PCMU", "channels": ["internal", "external"], "rate": 8000}]


@pytest.mark.shared
async def test_stereo_offered_internal_first_is_accepted_and_the_legs_map_by_label(server: Server) -> None:
    speech, _ = dev_call("dev-001-interrupting-agent", seconds=6, offset=40)
    cl = Client(server)
    ws = await cl.connect()
    opened = await cl.open("conv-rev", media=REVERSED)
    assert opened["type"] == "opened" and opened["parameters"]["media"] == REVERSED
    # Channel 0 is `internal` (the agent): it speaks, the customer is silent.
    await cl.audio(speech, np.zeros_like(speech))
    await cl.send("close", reason="end")
    assert (await cl.recv())["type"] == "closed"
    await ws.close()
    await wait_ended(server, "conv-rev")
    events = (await get(server, "/v1/calls/conv-rev/events?type=speech_start")).json()["events"]
    assert events and {e["leg"] for e in events} == {"agent"}


def test_the_reversed_offer_puts_external_on_the_customer_leg() -> None:
    s = AudioHookSession("s1")
    s.receive(json.dumps({"version": "2", "type": "open", "seq": 1, "id": "s1",
                               "parameters": {"conversationId": "c", "media": REVERSED}}))
    internal = np.full(4, 0x80, np.uint8)  # mu-law 0x80: a large positive sample
    external = np.full(4, 0x00, np.uint8)  # mu-law 0x00: a large negative one
    [audio] = s.receive(np.stack([internal, external], 1).tobytes()).events
    assert isinstance(audio, CallAudio) and audio.customer[0] < 0 < audio.agent[0]


async def test_after_disconnect_the_client_ends_the_session(server: Server) -> None:
    cl = Client(server)
    ws = await cl.connect()
    await cl.open("conv-bye")
    await ws.send(b"\x01\x02\x03")  # not whole stereo samples
    bye = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
    assert bye["type"] == "disconnect" and bye["parameters"]["reason"] == "error"
    await cl.send("close", reason="error")  # the reference client answers disconnect with close ...
    closed = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
    assert closed["type"] == "closed"  # ... and expects closed, on a socket still open
    await ws.close()
    assert (await wait_ended(server, "conv-bye"))["status"] == "ended"


async def test_a_message_of_another_protocol_version_is_refused(server: Server) -> None:
    cl = Client(server)
    ws = await cl.connect()
    await ws.send(json.dumps({"version": "1", "type": "open", "seq": 1, "id": cl.session_id,
                              "parameters": {"conversationId": "conv-v1", "media": OFFER}}))
    bye = json.loads(await asyncio.wait_for(ws.recv(), GUARD_S))
    assert bye["type"] == "disconnect" and "version" in bye["parameters"]["info"]


async def test_a_replayed_signed_upgrade_is_refused(server: Server) -> None:
    cl = Client(server)
    headers = cl.headers()
    async with connect(f"{server.ws}/v1/ingest/audiohook", additional_headers=headers):
        pass
    with pytest.raises(InvalidStatus) as err:
        async with connect(f"{server.ws}/v1/ingest/audiohook", additional_headers=headers):
            pass
    assert err.value.response.status_code == 401


async def test_client_errors_and_media_refusals_are_logged_and_the_close_reason_kept(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="callwatch.ingest")
    cl = Client(server)
    await cl.connect()
    await cl.open("conv-err")
    await cl.send("error", code=500, message="upstream media failure")
    await cl.send("close", reason="error")
    assert (await cl.recv())["type"] == "closed"
    await wait_ended(server, "conv-err")
    [ended] = (await get(server, "/v1/calls/conv-err/events?type=call_ended")).json()["events"]
    assert ended["reason"] == "error"
    refused = Client(server)
    await refused.connect()
    assert (await refused.open("conv-mono", media=[OFFER[1]]))["type"] == "disconnect"
    text = caplog.text
    assert "upstream media failure" in text and "media refused" in text


# -- the smaller findings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["é.é", "abc.dé", "\u2028.x", "a.b\x00"])
def test_a_token_with_non_ascii_characters_is_refused_not_a_crash(token: str) -> None:
    with pytest.raises(auth.AuthError):
        auth.verify("secret", token)


async def test_a_non_ascii_token_gets_401_over_http(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        r = await client.get("/v1/calls?token=%C3%A9.%C3%A9")
    assert r.status_code == 401 and r.json()["error"] == "malformed token"


@pytest.mark.parametrize("path", ["/v1/ws/agent?tok%65n=abc.def", "/x?a=1&%74oken=abc.def", "/x?TOKEN=abc.def",
                                  "/x?tok%65n=abc.def&x=1"])
def test_token_masking_sees_through_percent_encoding(path: str) -> None:
    assert "abc.def" not in redact(f'1.2.3.4 - "GET {path} HTTP/1.1" 200')


def test_an_audiohook_language_must_be_a_language_tag() -> None:
    s = AudioHookSession("s1")
    with pytest.raises(IngestError) as err:
        s.receive(json.dumps({"version": "2", "type": "open", "seq": 1, "id": "s1",
                                   "parameters": {"conversationId": "c", "media": OFFER, "language": "x" * 900_000}}))
    assert err.value.code == "bad_language"
    s = AudioHookSession("s2")
    s.receive(json.dumps({"version": "2", "type": "open", "seq": 1, "id": "s2",
                               "parameters": {"conversationId": "c", "media": OFFER, "language": "en-US"}}))
    with pytest.raises(IngestError):
        s.receive(json.dumps({"version": "2", "type": "update", "seq": 2, "id": "s2",
                                   "parameters": {"language": "<script>" * 10}}))


async def test_deeply_nested_json_is_invalid_data_not_an_internal_error(server: Server) -> None:
    with pytest.raises(IngestError) as err:
        parse_json("[" * 200_000)
    assert err.value.close_code == 1007
    async with connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest")) as ws:
        await ws.send("[" * 200_000)
        [reply] = await recv_until_closed(ws)
    assert reply["code"] == "bad_json" and ws.close_code == 1007


async def test_call_objects_do_not_show_where_the_server_keeps_recordings(server: Server) -> None:
    await native_call(server, tone(1.0), tone(1.0), call_id="where")
    await wait_ended(server, "where")
    call = (await get(server, "/v1/calls/where")).json()
    assert call["recording"] == "/v1/calls/where/recording"
    listed = (await get(server, "/v1/calls")).json()["calls"]
    assert [c["recording"] for c in listed] == ["/v1/calls/where/recording"]
    assert str(server.settings.data_dir) not in json.dumps([call, listed])


@pytest.mark.parametrize("bad", [".", "..", ".hidden"])
async def test_dot_call_ids_are_refused(server: Server, bad: str) -> None:
    with pytest.raises(IngestError):
        clean_id(bad, "call_id")
    ws, reply = await native_start(server, bad)
    await ws.close()
    assert reply["type"] == "error" and reply["code"] == "bad_call_id"


async def test_a_refused_upgrade_does_not_log_an_unfinished_handshake(server: Server) -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    uv = logging.getLogger("uvicorn.error")
    uv.addHandler(handler)
    try:
        with pytest.raises(InvalidStatus):
            async with connect(f"{server.ws}/v1/ingest/native"):
                pass
        async with httpx.AsyncClient(base_url=server.http) as client:  # the refusal has been fully handled
            assert (await client.get("/healthz")).status_code == 200
    finally:
        uv.removeHandler(handler)
    assert not [r for r in seen if "handshake" in r.getMessage()]

