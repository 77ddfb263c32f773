"""A client for Genesys AudioHook v2 written from the protocol (the reference client is not on npm)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from audio.pcm import mulaw_encode
from service.ingest.audiohook import SIGNED_COMPONENTS, sign, signature_base
from tests.service.conftest import AUDIOHOOK_KEY, AUDIOHOOK_SECRET, Server

ORG = "e70b0e0d-0000-4000-8000-00000000000a"
OFFER = [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000},
         {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}]


class Client:
    """The client half of AudioHook v2: seq/serverseq bookkeeping, position, signed upgrade."""

    def __init__(self, srv: Server, session_id: str | None = None, api_key: str = AUDIOHOOK_KEY,
                 secret: str = AUDIOHOOK_SECRET) -> None:
        self.srv, self.session_id = srv, session_id or str(uuid.uuid4())
        self.api_key, self.secret = api_key, secret
        self.seq = self.serverseq = 0
        self.samples = 0
        self.ws: ClientConnection | None = None

    def headers(self) -> dict[str, str]:
        h = {"audiohook-organization-id": ORG, "audiohook-session-id": self.session_id,
             "audiohook-correlation-id": str(uuid.uuid4()), "x-api-key": self.api_key}
        created = int(time.time())
        params = (f"({' '.join(chr(34) + c + chr(34) for c in SIGNED_COMPONENTS)});keyid=\"{self.api_key}\";"
                  f"nonce=\"{uuid.uuid4().hex}\";alg=\"hmac-sha256\";created={created};expires={created + 10}")
        base = signature_base({"@request-target": "/v1/ingest/audiohook",
                               "@authority": f"127.0.0.1:{self.srv.port}", **h}, params)
        return {**h, "signature-input": f"sig1={params}", "signature": f"sig1=:{sign(self.secret, base)}:"}

    async def connect(self) -> ClientConnection:
        self.ws = await connect(f"{self.srv.ws}/v1/ingest/audiohook", additional_headers=self.headers())
        return self.ws

    async def send(self, kind: str, **params: Any) -> None:
        assert self.ws is not None
        self.seq += 1
        await self.ws.send(json.dumps({"version": "2", "type": kind, "seq": self.seq, "serverseq": self.serverseq,
                                       "id": self.session_id, "position": f"PT{self.samples / 8000}S",
                                       "parameters": params}))

    async def recv(self) -> dict[str, Any]:
        assert self.ws is not None
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        self.serverseq = msg["seq"]
        assert msg["clientseq"] == self.seq and msg["id"] == self.session_id and msg["version"] == "2"
        return msg

    async def open(self, conversation: str, media: list[dict[str, Any]] = OFFER) -> dict[str, Any]:
        await self.send("open", organizationId=ORG, conversationId=conversation, media=media, language="en-US",
                        participant={"id": str(uuid.uuid4()), "ani": "+1-555-555-1234", "aniName": "",
                                     "dnis": "+1-800-555-6789"}, customConfig={"agent_id": "gen-agent"})
        return await self.recv()

    async def audio(self, customer: np.ndarray, agent: np.ndarray, frame: int = 1600) -> None:
        assert self.ws is not None
        for i in range(0, len(customer), frame):
            c = np.frombuffer(mulaw_encode(customer[i:i + frame]), np.uint8)
            a = np.frombuffer(mulaw_encode(agent[i:i + frame]), np.uint8)
            await self.ws.send(np.stack([c, a], 1).tobytes())
            self.samples += len(c)
