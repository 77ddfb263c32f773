"""Agents see only their own calls; supervisors see the board; listen-in streams audio; laggards are cut off."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.analysis.wire import CallChanged, CallEvent
from service.fanout.hub import Hub
from tests.service.conftest import Server, dev_call, make_settings, native_call, running, wait_ended

START = {"type": "start", "sample_rate": 8000, "encoding": "pcm16", "channels": 2,
         "channel_map": ["customer", "agent"], "language": "en"}


async def collect_until_ended(ws: ClientConnection, calls: set[str]) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    pending = set(calls)
    while pending:
        ev = json.loads(await asyncio.wait_for(ws.recv(), 30))
        got.append(ev)
        if ev["type"] == "call_ended":
            pending.discard(ev["call_id"])
    return got


@pytest.mark.shared
async def test_agent_sees_only_own_calls_and_supervisor_sees_the_board(server: Server) -> None:
    customer, agent = dev_call("dev-001-interrupting-agent", seconds=60, offset=35)
    async with connect(f"{server.ws}/v1/ws/agent", additional_headers=server.bearer("agent", "ann")) as ann, \
            connect(f"{server.ws}/v1/ws/supervisor?token={server.token('supervisor')}") as sup:
        await asyncio.gather(native_call(server, customer, agent, call_id="ann-call", agent_id="ann"),
                             native_call(server, customer, agent, call_id="bob-call", agent_id="bob"))
        ann_events = await collect_until_ended(ann, {"ann-call"})
        sup_events = await collect_until_ended(sup, {"ann-call", "bob-call"})
    assert {e["call_id"] for e in ann_events} == {"ann-call"}
    assert {"call_started", "call_ended", "alert", "interruption"} <= {e["type"] for e in ann_events}
    assert not {"speech_start", "speech_end"} & {e["type"] for e in ann_events}
    assert {e["call_id"] for e in sup_events} == {"ann-call", "bob-call"}
    assert {e["type"] for e in sup_events} <= {"alert", "call_started", "call_updated", "call_ended"}
    assert any(e["type"] == "alert" for e in sup_events)
    ended = [e for e in sup_events if e["type"] == "call_ended"]
    assert all(e["call"]["status"] == "ended" and e["call"]["counts"]["alert"] >= 1 for e in ended)


async def test_agent_cannot_reach_other_agents_calls(server: Server) -> None:
    refused = [
        (f"{server.ws}/v1/ws/agent?agent_id=bob", server.bearer("agent", "ann"), 403),
        (f"{server.ws}/v1/ws/agent", server.bearer("supervisor"), 403),
        (f"{server.ws}/v1/ws/supervisor", server.bearer("agent", "ann"), 403),
        (f"{server.ws}/v1/ws/listen/x", server.bearer("agent", "ann"), 403),
        (f"{server.ws}/v1/ws/agent", {}, 401),
        (f"{server.ws}/v1/ws/supervisor?token=forged", {}, 401),
    ]
    for url, headers, status in refused:
        with pytest.raises(InvalidStatus) as err:
            async with connect(url, additional_headers=headers):
                pass
        assert err.value.response.status_code == status, url
        body = json.loads(err.value.response.body)
        assert body["status"] == status and body["error"], url
    silence = np.zeros(800, dtype=np.int16)
    await native_call(server, silence, silence, call_id="bob-only", agent_id="bob")
    async with httpx.AsyncClient(base_url=server.http) as client:
        ann = server.bearer("agent", "ann")
        assert (await client.get("/v1/calls/bob-only", headers=ann)).status_code == 404
        assert (await client.get("/v1/calls/bob-only/events", headers=ann)).status_code == 404
        assert (await client.get("/v1/calls?agent_id=bob", headers=ann)).status_code == 403
        assert (await client.get("/v1/calls", headers=ann)).json()["calls"] == []
        bob = server.bearer("agent", "bob")
        assert (await client.get("/v1/calls/bob-only", headers=bob)).status_code == 200
        assert (await client.get("/v1/calls/bob-only/recording", headers=bob)).status_code == 403
        assert (await client.get("/v1/calls")).status_code == 401


async def test_listen_in_streams_stereo_pcm_of_the_live_call(server: Server) -> None:
    tone = (2000 * np.sin(np.arange(1600) * 0.2)).astype(np.int16)
    frame = np.stack([tone, -tone], 1).astype("<i2").tobytes()
    async with connect(f"{server.ws}/v1/ingest/native", additional_headers=server.bearer("ingest")) as ingest:
        await ingest.send(json.dumps({**START, "call_id": "live-1", "agent_id": "ann"}))
        await ingest.recv()
        async with connect(f"{server.ws}/v1/ws/listen/live-1",
                           additional_headers=server.bearer("supervisor")) as listen:
            await asyncio.wait_for(_until_listening(server, "live-1"), 10)
            for _ in range(5):
                await ingest.send(frame)
            received = b""
            while len(received) < 5 * len(frame):
                received += await asyncio.wait_for(listen.recv(), 10)  # type: ignore[operator]
            assert received == frame * 5
            await ingest.send(json.dumps({"type": "stop"}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(listen.recv(), 10)


async def _until_listening(server: Server, call_id: str) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        while "callwatch_subscribers" in (text := (await client.get("/metrics")).text):
            if any(line.startswith("callwatch_listeners 1") for line in text.splitlines()):
                return
            await asyncio.sleep(0.01)


def event(kind: str, n: int = 0) -> CallEvent:
    return CallEvent.from_wire({"type": kind, "call_id": "c", "id": str(n)})


def test_hub_cuts_off_a_subscriber_that_falls_behind_without_waiting() -> None:
    async def scenario() -> None:
        hub = Hub(queue_size=3)
        slow = hub.subscribe("supervisor")
        fast = hub.subscribe("supervisor")
        for i in range(4):
            hub.publish(event("alert", i), "a")
            if i < 3:
                assert (await fast.queue.get()) is not None
        assert slow.cut_off and slow.queue.get_nowait() is None and slow.queue.empty()
        assert not fast.cut_off and hub.stats().cut_off == 1
        hub.publish(event("alert", 4), "a")
        assert fast.queue.qsize() == 2 and slow.queue.empty()
        agent = hub.subscribe("agent", "ann")
        hub.publish(event("prosody"), "bob")
        hub.publish(event("speech_start"), "ann")
        hub.publish(event("prosody"), "ann")
        assert agent.queue.qsize() == 1

    asyncio.run(scenario())


def test_every_screen_gets_the_one_event_serialised_once() -> None:
    async def scenario() -> None:
        hub = Hub()
        screens = [hub.subscribe("supervisor"), hub.subscribe("agent", "ann"), hub.subscribe("supervisor")]
        ev = CallEvent("c", CallChanged("call_started", 0.0, {"id": "c", "agent_id": "ann"}))
        hub.publish(ev, "ann")
        got = [s.queue.get_nowait() for s in screens]
        assert all(g is ev for g in got)
        assert got[0] is not None and got[0].json is got[1].json  # type: ignore[union-attr]

    asyncio.run(scenario())


@pytest.mark.shared
async def test_completed_calls_survive_a_restart(tmp_path: Path) -> None:
    customer, agent = dev_call("dev-001-interrupting-agent", seconds=30, offset=35)
    settings = make_settings(tmp_path)
    async with running(settings) as srv:
        await native_call(srv, customer, agent, call_id="kept", agent_id="ann")
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            r = await client.post("/v1/calls/kept/notes", json={"text": "talked over the customer twice"})
            assert r.status_code == 201
            before = (await client.get("/v1/calls/kept/events")).json()["events"]
    async with running(settings) as srv:
        async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
            call = (await client.get("/v1/calls/kept")).json()
            assert call["status"] == "ended" and call["notes"][0]["text"] == "talked over the customer twice"
            assert (await client.get("/v1/calls/kept/events")).json()["events"] == before
            assert (await client.get("/v1/calls/kept/recording")).content[:4] == b"RIFF"
            assert [c["id"] for c in (await client.get("/v1/calls?live=false")).json()["calls"]] == ["kept"]
            assert (await client.get("/v1/calls?live=true")).json()["calls"] == []


async def test_http_errors_are_json(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        r = await client.get("/v1/calls/nope")
        assert r.status_code == 404 and r.json()["error"]
        assert (await client.get("/v1/calls?flagged=maybe")).status_code == 400
        silence = np.zeros(800, dtype=np.int16)
        await native_call(server, silence, silence, call_id="n1")
        assert (await client.post("/v1/calls/n1/notes", content=b"{")).status_code == 400
        assert (await client.post("/v1/calls/n1/notes", json={"text": ""})).status_code == 422
        assert (await client.post("/v1/calls/n1/notes", json={"text": "x"},
                                  headers=server.bearer("agent", "agent-1"))).status_code == 403
        spec = (await client.get("/openapi.json")).json()
        assert spec["openapi"].startswith("3.") and "/v1/calls/{call_id}/events" in spec["paths"]
        assert (await client.get("/healthz")).json()["status"] == "ok"
        metrics = (await client.get("/metrics")).text
        assert "callwatch_calls_started_total 1" in metrics and "callwatch_writer_queue" in metrics




async def test_the_app_serves_the_pages(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        for path in ("/agent", "/supervisor", "/calls/some-call"):
            r = await client.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


@pytest.mark.shared
async def test_supervisor_can_follow_one_call_and_filter_the_list(server: Server) -> None:
    customer, agent = dev_call("dev-001-interrupting-agent", seconds=30, offset=35)
    quiet = np.zeros(800, dtype=np.int16)
    url = f"{server.ws}/v1/ws/supervisor?call_id=followed&types=interruption,alert,call_ended"
    async with connect(url, additional_headers=server.bearer("supervisor")) as sup:
        await native_call(server, quiet, quiet, call_id="other")
        await native_call(server, customer, agent, call_id="followed")
        events = await collect_until_ended(sup, {"followed"})
    assert {e["call_id"] for e in events} == {"followed"}
    assert {e["type"] for e in events} == {"interruption", "alert", "call_ended"}
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        flagged = {c["id"] for c in (await client.get("/v1/calls?flagged=true")).json()["calls"]}
        calm = {c["id"] for c in (await client.get("/v1/calls?flagged=false")).json()["calls"]}
    assert "other" in calm and "other" not in flagged and flagged | calm == {"other", "followed"}


async def test_metrics_count_ended_calls_and_transcription_and_redaction_work(server: Server) -> None:
    silence = np.zeros(8000, dtype=np.int16)
    await native_call(server, silence, silence, call_id="counted")
    await wait_ended(server, "counted")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        text = (await client.get("/metrics")).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and line[0] != "#"}
    assert values["callwatch_calls_ended_total"] >= 1
    for name in ("callwatch_asr_segments_submitted_total", "callwatch_asr_segments_dropped_total",
                 "callwatch_redaction_held_total", "callwatch_redaction_hold_seconds_max"):
        assert name in values
