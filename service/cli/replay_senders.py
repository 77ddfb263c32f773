"""Clients for the three ingest protocols, used by ``callwatch replay``: stream two legs at a set pace.

Each sender records when the audio up to each point was sent (``SendLog``), so an alert's end-to-end
latency can be measured from the moment the audio that triggered it left this process.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.client import ClientConnection, connect

from audio.events import RATE
from audio.pcm import mulaw_encode
from service.ingest.audiohook import SIGNED_COMPONENTS, sign, signature_base
from service.ingest.twilio import twilio_signature

Int16 = NDArray[np.int16]


@dataclass
class SendLog:
    """Wall-clock send time of each chunk, by the call time its audio reaches."""

    ends: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def note(self, end_s: float) -> None:
        self.ends.append(end_s)
        self.sent_at.append(time.perf_counter())

    def sent_when(self, t: float) -> float | None:
        """When the chunk holding call time ``t`` was sent (None if it never was)."""
        i = bisect.bisect_left(self.ends, t - 1e-6)
        return self.sent_at[i] if i < len(self.sent_at) else None


@dataclass(frozen=True)
class Target:
    url: str
    """Base ``ws://host:port``."""
    call_id: str
    agent_id: str
    language: str
    speed: float
    ingest_token: str = ""
    audiohook_api_key: str = ""
    audiohook_client_secret: str = ""
    twilio_auth_token: str = ""


async def _paced(customer: Int16, agent: Int16, chunk: int, speed: float, log: SendLog,
                 send: Callable[[int, int], Awaitable[None]]) -> None:
    """Calls ``send(start, end)`` for each chunk of samples, at the pace of the audio."""
    began = time.perf_counter()
    n = len(customer)
    for i in range(0, n, chunk):
        due = began + i / RATE / speed
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(i, min(i + chunk, n))
        log.note(min(i + chunk, n) / RATE)


_encoded: dict[tuple[str, int, int], tuple[Int16, Int16, bytes]] = {}


def _shared(kind: str, customer: Int16, agent: Int16, encode: Callable[[Int16, Int16], bytes]) -> bytes:
    """A whole call encoded once and shared by every copy of it under load: a load generator that
    re-encodes each 20 ms chunk spends the processor it is meant to leave to the server."""
    key = (kind, id(customer), id(agent))
    hit = _encoded.get(key)
    if hit is None or hit[0] is not customer or hit[1] is not agent:
        hit = (customer, agent, encode(customer, agent))
        _encoded[key] = hit
    return hit[2]


def interleaved_pcm16(customer: Int16, agent: Int16) -> bytes:
    return _shared("pcm16", customer, agent, lambda c, a: np.stack([c, a], axis=1).astype("<i2").tobytes())


def interleaved_mulaw(customer: Int16, agent: Int16) -> bytes:
    """Two bytes per sample pair: customer's mu-law byte, then the agent's."""
    return _shared("mulaw", customer, agent, lambda c, a: np.stack(
        [np.frombuffer(mulaw_encode(c), np.uint8), np.frombuffer(mulaw_encode(a), np.uint8)], axis=1).tobytes())


async def send_native(tg: Target, customer: Int16, agent: Int16, log: SendLog) -> None:
    headers = {"Authorization": f"Bearer {tg.ingest_token}"}
    async with connect(f"{tg.url}/v1/ingest/native", additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": tg.call_id, "agent_id": tg.agent_id,
                                  "sample_rate": RATE, "encoding": "pcm16", "channels": 2,
                                  "channel_map": ["customer", "agent"], "language": tg.language}))
        reply = json.loads(await ws.recv())
        if reply.get("type") != "started":
            raise RuntimeError(f"service refused the call: {reply}")

        pcm = interleaved_pcm16(customer, agent)

        async def send(i: int, j: int) -> None:
            await ws.send(pcm[4 * i: 4 * j])

        await _paced(customer, agent, RATE // 50, tg.speed, log, send)
        await ws.send(json.dumps({"type": "stop"}))
        await _wait_closed(ws)


async def send_twilio(tg: Target, customer: Int16, agent: Int16, log: SendLog) -> None:
    sid = "MZ" + uuid.uuid4().hex
    url = f"{tg.url}/v1/ingest/twilio"
    headers = {"X-Twilio-Signature": twilio_signature(tg.twilio_auth_token, url)} if tg.twilio_auth_token else {}
    async with connect(url, additional_headers=headers) as ws:
        seq = 0

        async def emit(msg: dict[str, object]) -> None:
            nonlocal seq
            seq += 1
            await ws.send(json.dumps({**msg, "sequenceNumber": str(seq), "streamSid": sid}))

        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await emit({"event": "start", "start": {
            "accountSid": "AC" + "0" * 32, "streamSid": sid, "callSid": tg.call_id,
            "tracks": ["inbound", "outbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1},
            "customParameters": {"agent_id": tg.agent_id, "language": tg.language, "token": tg.ingest_token}}})
        chunk = 0
        ts = 0

        legs = {"inbound": _shared("mulaw-c", customer, agent, lambda c, a: mulaw_encode(c)),
                "outbound": _shared("mulaw-a", customer, agent, lambda c, a: mulaw_encode(a))}

        async def send(i: int, j: int) -> None:
            nonlocal chunk, ts
            for track in ("outbound", "inbound"):
                chunk += 1
                await emit({"event": "media", "media": {"track": track, "chunk": str(chunk), "timestamp": str(ts),
                                                        "payload": base64.b64encode(legs[track][i:j]).decode()}})
            ts += (j - i) * 1000 // RATE

        await _paced(customer, agent, RATE // 50, tg.speed, log, send)
        await emit({"event": "stop", "stop": {"callSid": tg.call_id}})
        await _wait_closed(ws)


def audiohook_headers(tg: Target, session_id: str, org: str, authority: str) -> dict[str, str]:
    h = {"audiohook-organization-id": org, "audiohook-session-id": session_id,
         "audiohook-correlation-id": str(uuid.uuid4()), "x-api-key": tg.audiohook_api_key}
    if not tg.audiohook_client_secret:
        return h
    created = int(time.time())
    covered = " ".join(f'"{c}"' for c in SIGNED_COMPONENTS)
    params = (f'({covered});keyid="{tg.audiohook_api_key}";nonce="{uuid.uuid4().hex}";alg="hmac-sha256";'
              f"created={created};expires={created + 10}")
    base = signature_base({"@request-target": "/v1/ingest/audiohook", "@authority": authority, **h}, params)
    return {**h, "signature-input": f"sig1={params}",
            "signature": f"sig1=:{sign(tg.audiohook_client_secret, base)}:"}


async def send_audiohook(tg: Target, customer: Int16, agent: Int16, log: SendLog) -> None:
    session_id, org = str(uuid.uuid4()), str(uuid.uuid4())
    authority = tg.url.split("://", 1)[-1].split("/", 1)[0]
    headers = audiohook_headers(tg, session_id, org, authority)
    async with connect(f"{tg.url}/v1/ingest/audiohook", additional_headers=headers) as ws:
        seq, serverseq, samples = 0, 0, 0

        async def emit(kind: str, **params: object) -> None:
            nonlocal seq
            seq += 1
            await ws.send(json.dumps({"version": "2", "type": kind, "seq": seq, "serverseq": serverseq,
                                      "id": session_id, "position": f"PT{samples / RATE}S", "parameters": params}))

        await emit("open", organizationId=org, conversationId=tg.call_id, language=tg.language,
                   participant={"id": str(uuid.uuid4()), "ani": "", "aniName": "", "dnis": ""},
                   media=[{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": RATE}],
                   customConfig={"agent_id": tg.agent_id})
        opened = json.loads(await ws.recv())
        if opened.get("type") != "opened":
            raise RuntimeError(f"service did not open the session: {opened}")
        serverseq = int(opened["seq"])

        mulaw = interleaved_mulaw(customer, agent)

        async def send(i: int, j: int) -> None:
            nonlocal samples
            await ws.send(mulaw[2 * i: 2 * j])
            samples += j - i

        await _paced(customer, agent, RATE // 10, tg.speed, log, send)
        await emit("close", reason="end")
        await _wait_closed(ws)


async def _wait_closed(ws: ClientConnection) -> None:
    async for msg in ws:
        if isinstance(msg, str) and '"error"' in msg:
            raise RuntimeError(f"service reported: {msg}")


SENDERS = {"native": send_native, "twilio": send_twilio, "audiohook": send_audiohook}
