"""Twilio Media Streams ingest, driven by streamdouble (a third-party Twilio simulator) over real sockets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamdouble.api import call as twilio_call
from streamdouble.chaos import Impairments
from streamdouble.session import SessionConfig
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from audio.pcm import mulaw_encode
from service.ingest.twilio import twilio_signature
from tests.service.conftest import Server, dev_call, make_settings, running, wait_ended

pytestmark = pytest.mark.shared


def ulaw_frames(pcm: np.ndarray) -> list[bytes]:
    n = len(pcm) // 160 * 160
    data = mulaw_encode(pcm[:n])
    return [data[i:i + 160] for i in range(0, n, 160)]


def fork_config(srv: Server, customer: np.ndarray, agent: np.ndarray, **extra: object) -> SessionConfig:
    return SessionConfig(fork=True, tracks=["inbound", "outbound"], agent_frames=ulaw_frames(agent),
                         custom_parameters={"agent_id": "tw-agent", "language": "en",
                                            "token": srv.token("ingest")}, **extra)


async def test_both_tracks_become_one_aligned_call(server: Server) -> None:
    customer, agent = dev_call("dev-001-interrupting-agent", seconds=3, offset=41)
    report = await twilio_call(f"{server.ws}/v1/ingest/twilio", frames=ulaw_frames(customer),
                               config=fork_config(server, customer, agent))
    assert report.result.violations == []
    call = await wait_ended(server, report.result.identity.call_sid)
    assert call["source"] == "twilio" and call["agent_id"] == "tw-agent" and call["language"] == "en"
    assert call["duration"] == pytest.approx(3.0, abs=0.02)


async def test_lost_packets_keep_the_timeline(server: Server) -> None:
    customer, agent = dev_call("dev-000-calm", seconds=3, offset=5)
    config = fork_config(server, customer, agent, impairments=Impairments(loss=0.2, jitter_ms=15),
                         chaos_seed=7)
    report = await twilio_call(f"{server.ws}/v1/ingest/twilio", frames=ulaw_frames(customer), config=config)
    assert report.result.frames_dropped > 0
    call = await wait_ended(server, report.result.identity.call_sid)
    # Lost customer audio became silence in place: the call is as long as the agent's unimpaired track.
    assert call["duration"] == pytest.approx(3.0, abs=0.1)


async def test_without_a_token_parameter_the_stream_is_refused(server: Server) -> None:
    customer, agent = dev_call("dev-000-calm", seconds=0.5)
    config = fork_config(server, customer, agent)
    config.custom_parameters.pop("token")
    report = await twilio_call(f"{server.ws}/v1/ingest/twilio", frames=ulaw_frames(customer), config=config)
    assert report.result.frames_sent < len(ulaw_frames(customer)) * 2  # cut off early


async def test_signature_is_checked_when_an_auth_token_is_configured(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, twilio_auth_token="AUTHTOKEN")) as srv:
        url = f"{srv.ws}/v1/ingest/twilio"
        with pytest.raises(InvalidStatus) as err:
            async with connect(url, additional_headers={"X-Twilio-Signature": "bad"}):
                pass
        assert err.value.response.status_code == 403
        assert json.loads(err.value.response.body)["error"] == "unauthorized: bad X-Twilio-Signature"
        good = {"X-Twilio-Signature": twilio_signature("AUTHTOKEN", url)}
        async with connect(url, additional_headers=good) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(json.dumps({"event": "start", "streamSid": "MZ9", "start": {
                "streamSid": "MZ9", "callSid": "CA9", "tracks": ["inbound", "outbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": {"agent_id": "a9"}}}))
            await ws.send(json.dumps({"event": "media", "media": {"track": "sideways", "timestamp": "0",
                                                                   "payload": ""}}))
            reply = json.loads(await ws.recv())
            assert reply["type"] == "error" and reply["code"] == "bad_track"
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1007
        call = await wait_ended(srv, "CA9")
        assert call["agent_id"] == "a9" and call["status"] == "ended"


async def test_audio_held_for_alignment_is_kept_when_the_connection_drops(server: Server) -> None:
    import base64

    ws = await connect(f"{server.ws}/v1/ingest/twilio")
    await ws.send(json.dumps({"event": "start", "streamSid": "MZdrop", "start": {
        "streamSid": "MZdrop", "callSid": "CAdrop", "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"agent_id": "tw-agent", "token": server.token("ingest")}}}))
    payload = base64.b64encode(mulaw_encode(np.full(160, 3000, dtype=np.int16))).decode()
    for i in range(7):  # 140 ms: one 100 ms step handed on, 40 ms still held by the aligner
        for track in ("outbound", "inbound"):
            await ws.send(json.dumps({"event": "media", "streamSid": "MZdrop", "media": {
                "track": track, "chunk": str(i), "timestamp": str(20 * i), "payload": payload}}))
    ws.transport.abort()  # no stop, no close handshake
    call = await wait_ended(server, "CAdrop")
    assert call["duration"] == pytest.approx(0.14)
