"""Garbage at every ingest endpoint: each connection gets an error or a refusal, the service carries on."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.service.audiohook_client import Client
from tests.service.conftest import Server, native_call, wait_ended

TWILIO_START = {"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA-fuzz", "tracks": ["inbound"],
                                            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                                            "customParameters": {}}}


def junk(rng: random.Random) -> list[str | bytes]:
    choices: list[str | bytes] = [
        bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 3000))),
        "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 200))),
        json.dumps({"type": "start", "call_id": rng.choice(["x", "", None, 5, "a" * 500]),
                    "agent_id": rng.choice(["a", None, {}]), "sample_rate": rng.choice([8000, -1, 1e9, "x"]),
                    "channels": rng.choice([2, 0, 1000, None]), "encoding": rng.choice(["pcm16", "mulaw", 1])}),
        json.dumps({"event": "media", "media": {"track": "inbound", "timestamp": str(rng.randint(-5, 10**7)),
                                                "payload": "AAAA"}}),
        json.dumps({"event": "start", "start": rng.choice([None, [], {"mediaFormat": 5}])}),
        json.dumps(TWILIO_START),
        json.dumps([1, 2, 3]),
        json.dumps({"type": "stop"}),
    ]
    return [rng.choice(choices) for _ in range(rng.randint(1, 6))]


@pytest.mark.parametrize("seed", range(40))
async def test_random_input_never_takes_the_service_down(server: Server, seed: int) -> None:
    rng = random.Random(seed)
    path = rng.choice(["native", "twilio"])
    token = server.token("ingest")
    url = f"{server.ws}/v1/ingest/{path}?token={token}"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        try:
            for msg in junk(rng):
                await ws.send(msg)
            while True:
                try:
                    reply = await asyncio.wait_for(ws.recv(), 2)  # a guard, not a timing check
                except TimeoutError:
                    break  # the junk was acceptable (ignorable messages): nothing more will come
                assert isinstance(reply, str)
                parsed = json.loads(reply)
                assert parsed["type"] in ("started", "error")
                assert parsed.get("code") != "internal", parsed  # bad input is named, never a crash
        except ConnectionClosed:
            pass
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/healthz")).status_code == 200
    silence = np.zeros(1600, dtype=np.int16)
    await native_call(server, silence, silence, call_id=f"after-{seed}")
    assert (await wait_ended(server, f"after-{seed}"))["duration"] == pytest.approx(0.2)


async def test_audiohook_garbage_after_open_is_a_disconnect(server: Server) -> None:
    cl = Client(server)
    ws = await cl.connect()
    await cl.open("conv-fuzz")
    await ws.send(b"\x01\x02\x03")  # not whole stereo samples
    reply = json.loads(await ws.recv())
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "error"
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert (await wait_ended(server, "conv-fuzz"))["status"] == "ended"


async def test_audiohook_without_credentials_is_refused(server: Server) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(f"{server.ws}/v1/ingest/audiohook"):
            pass


TRAVERSALS = ["/static/../app.py", "/static/js/../../app.py", "/static/..%2fapp.py", "/static/%2e%2e/app.py",
              "/static/%2e%2e%2fapp.py", "/static/js/%2e%2e%2f%2e%2e%2fapp.py", "/static/..%5capp.py",
              "/static/%252e%252e%252fapp.py", "/static//etc/passwd", "/static/../../../../../../etc/passwd"]
"""Paths out of the static folder as a client may send them: raw, percent-encoded, doubly encoded. The folder
sits beside ``service/web/app.py``, which is what ``..`` would reach."""


async def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """A GET of ``path`` exactly as written: HTTP clients (httpx among them) resolve ``..`` before sending."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_no_path_leaves_the_static_folder(server: Server, path: str) -> None:
    status, body = await raw_get(server.port, path)
    assert status in (400, 404), (path, status, body[:200])
    assert b"import" not in body and b"root:" not in body, path
    if status == 404:  # the app's own answer (a 400 comes from the HTTP parser, before the app)
        assert json.loads(body) == {"error": "Not Found", "status": 404}, path


async def test_the_raw_request_reaches_the_static_files(server: Server) -> None:
    """The check above is worth something only if a raw request is served like any other."""
    status, body = await raw_get(server.port, "/static/js/dom.js")
    assert status == 200 and b"export function" in body
