"""Genesys AudioHook v2 ingest, with a client written from the protocol (the reference client is not on npm)."""

from __future__ import annotations

import json

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.ingest.audiohook import PROBE_ID
from tests.service.audiohook_client import OFFER, Client
from tests.service.conftest import Server, dev_call, wait_ended


@pytest.mark.shared
async def test_full_session_with_pause_and_discarded_audio(server: Server) -> None:
    customer, agent = dev_call("dev-001-interrupting-agent", seconds=4, offset=40)
    cl = Client(server)
    await cl.connect()
    opened = await cl.open("conv-1")
    assert opened["type"] == "opened" and opened["parameters"]["media"] == [OFFER[0]]
    await cl.audio(customer[:16000], agent[:16000])
    await cl.send("ping")
    assert (await cl.recv())["type"] == "pong"
    await cl.send("paused")
    await cl.send("resumed", start=f"PT{cl.samples / 8000}S", discarded="PT1.5S")
    await cl.audio(customer[16000:], agent[16000:])
    await cl.send("update", language="en-GB")
    await cl.send("close", reason="end")
    assert (await cl.recv())["type"] == "closed"
    call = await wait_ended(server, "conv-1")
    assert call["source"] == "audiohook" and call["agent_id"] == "gen-agent" and call["language"] == "en-GB"
    assert call["duration"] == pytest.approx(4.0 + 1.5)  # the paused stretch is call time, as silence


async def test_connection_probe_is_answered_and_leaves_no_call(server: Server) -> None:
    cl = Client(server)
    await cl.connect()
    opened = await cl.open(PROBE_ID)
    assert opened["type"] == "opened" and opened["parameters"]["startPaused"] is False
    await cl.send("close", reason="end")
    closed = await cl.recv()
    assert closed["type"] == "closed" and closed["parameters"] == {}
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        assert (await client.get("/v1/calls")).json()["calls"] == []
        assert (await client.get(f"/v1/calls/{PROBE_ID}")).status_code == 404


@pytest.mark.parametrize("bad", ["key", "secret"])
async def test_wrong_key_or_signature_is_refused_at_the_upgrade(server: Server, bad: str) -> None:
    cl = Client(server, api_key="wrong") if bad == "key" else Client(server, secret="d3Jvbmcgc2VjcmV0")
    with pytest.raises(InvalidStatus) as err:
        await cl.connect()
    assert err.value.response.status_code == 401
    assert json.loads(err.value.response.body)["error"].startswith("unauthorized: ")


async def test_unusable_media_offer_is_declined(server: Server) -> None:
    cl = Client(server)
    ws = await cl.connect()
    reply = await cl.open("conv-2", media=[OFFER[1]])
    assert reply["type"] == "disconnect" and reply["parameters"]["reason"] == "error"
    with pytest.raises(ConnectionClosed):
        await ws.recv()


async def test_out_of_order_seq_is_a_protocol_error(server: Server) -> None:
    cl = Client(server)
    ws = await cl.connect()
    await cl.open("conv-3")
    cl.seq += 5
    await cl.send("ping")
    reply = json.loads(await ws.recv())
    assert reply["type"] == "disconnect" and "seq" in reply["parameters"]["info"]
    with pytest.raises(ConnectionClosed):
        await ws.recv()
    assert ws.close_code == 1007
    assert (await wait_ended(server, "conv-3"))["status"] == "ended"
