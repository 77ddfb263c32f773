"""Teams end to end (issue 16): the team an ingest names reaches the store, ``callwatch token --teams`` scopes a
supervisor, and that scope holds on the older call endpoints and the live sockets too; a call's review state on
``GET /v1/calls/{id}``; a note at a moment through the older ``POST /v1/calls/{id}/notes``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from service.core import auth
from service.fanout.hub import TeamScope
from service.ingest.audiohook import AudioHookSession
from service.ingest.common import CallStart, IngestError
from service.ingest.native import NativeIngest
from service.ingest.twilio import TwilioIngest
from service.storage.backends import open_store
from service.storage.coaching import CoachingStore
from tests.service.conftest import Server, make_settings, running, wait_ended

NATIVE = {"type": "start", "call_id": "c1", "agent_id": "a1", "sample_rate": 8000, "encoding": "pcm16",
          "channels": 2, "channel_map": ["customer", "agent"], "language": "en"}
TWILIO = {"event": "start", "streamSid": "MZ1", "start": {
    "streamSid": "MZ1", "callSid": "CA1", "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
    "customParameters": {"agent_id": "a7"}}}
SID = "d89b9e94-0000-4000-8000-000000000001"
OFFER = [{"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}]


def native_start(**fields: Any) -> CallStart:
    [start] = NativeIngest().receive(json.dumps({**NATIVE, **fields})).events
    assert isinstance(start, CallStart)
    return start


def twilio_start(**params: Any) -> CallStart:
    msg = json.loads(json.dumps(TWILIO))
    msg["start"]["customParameters"].update(params)
    [start] = TwilioIngest().receive(json.dumps(msg)).events
    assert isinstance(start, CallStart)
    return start


def audiohook_start(custom: dict[str, Any]) -> CallStart:
    s = AudioHookSession(SID, "org1")
    r = s.receive(json.dumps({"version": "2", "type": "open", "seq": 1, "serverseq": 0, "id": SID,
                              "position": "PT0S", "parameters": {"organizationId": "org1", "conversationId": "conv-1",
                                                                 "media": OFFER, "customConfig": custom}}))
    [start] = r.events
    assert isinstance(start, CallStart)
    return start


def test_each_ingest_names_the_agents_team() -> None:
    assert native_start(team="north").team == "north"
    assert native_start().team is None
    assert twilio_start(team="north").team == "north"
    assert twilio_start().team is None and twilio_start(team="").team is None
    assert audiohook_start({"agent_id": "gen", "team": "north"}).team == "north"
    assert audiohook_start({"agent_id": "gen"}).team is None


@pytest.mark.parametrize("team", ["no spaces", "../up", "x" * 129, ".hidden"])
def test_a_bad_team_is_refused_like_a_bad_agent_id(team: str) -> None:
    for start in (native_start, twilio_start):
        with pytest.raises(IngestError) as err:
            start(team=team)
        assert err.value.code == "bad_team"
    with pytest.raises(IngestError) as err:
        audiohook_start({"agent_id": "gen", "team": team})
    assert err.value.code == "bad_team"
    with pytest.raises(IngestError):
        native_start(team=7)


# -- through a running server ----------------------------------------------------------------------------------


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with running(make_settings(tmp_path)) as srv:
        yield srv


def bearer(srv: Server, role: auth.Role, agent_id: str | None = None,
           teams: tuple[str, ...] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(srv.settings.secret, role, agent_id, teams=teams)}"}


async def open_call(srv: Server, call_id: str, agent_id: str, team: str | None = None) -> ClientConnection:
    """A live native call with a second of quiet audio, left open."""
    ws = await connect(f"{srv.ws}/v1/ingest/native", additional_headers=srv.bearer("ingest"))
    await ws.send(json.dumps({**NATIVE, "call_id": call_id, "agent_id": agent_id,
                              **({"team": team} if team else {})}))
    assert json.loads(await ws.recv())["type"] == "started"
    await ws.send(np.zeros((8000, 2), dtype="<i2").tobytes())
    return ws


async def stop(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "stop"}))
    await ws.close()


def add_ended_call(srv: Server, call_id: str, agent: str, team: str | None) -> None:
    store = open_store(srv.settings.database_url)
    assert isinstance(store, CoachingStore)
    try:
        if team is not None:
            store.set_team(agent, team)
        row: dict[str, Any] = {"id": call_id, "agent_id": agent, "source": "native", "language": "en",
                               "started": 1767225600.0, "ended": None, "status": "live", "duration": 0.0,
                               "escalation_score": 0, "flagged": False, "flags": [], "counts": {}, "recording": None}
        store.write([("call", row)])
        store.write([("events", (call_id, 0, [{"type": "utterance", "call_id": call_id, "t": 3.0, "leg": "customer",
                                                "start": 1.0, "end": 3.0, "text": "hello", "language": "en"}]))])
        store.write([("call", {**row, "status": "ended", "ended": 1767225660.0, "duration": 60.0})])
    finally:
        store.close()


async def test_the_team_an_ingest_names_files_the_agent_when_the_call_ends(server: Server) -> None:
    ws = await open_call(server, "teamed", "ann", team="north")
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        live = (await client.get("/v1/calls/teamed")).json()
        assert live["status"] == "live" and live["team"] == "north"  # on the live call object too
        await stop(ws)
        await wait_ended(server, "teamed")
        teams = (await client.get("/v1/teams")).json()["teams"]
        assert teams == [{"team": "north", "agents": ["ann"]}]
        # A team a supervisor set wins over the ingest's.
        assert (await client.put("/v1/agents/ann/team", json={"team": "south"})).status_code == 200
        ws = await open_call(server, "teamed-2", "ann", team="north")
        await stop(ws)
        await wait_ended(server, "teamed-2")
        assert (await client.get("/v1/teams")).json()["teams"] == [{"team": "south", "agents": ["ann"]}]


async def test_a_team_scoped_supervisor_sees_only_their_teams_calls(server: Server) -> None:
    add_ended_call(server, "ann-1", "ann", "north")
    add_ended_call(server, "bob-1", "bob", "south")
    add_ended_call(server, "cy-1", "cy", None)
    north = bearer(server, "supervisor", teams=("north",))
    async with httpx.AsyncClient(base_url=server.http, headers=north) as client:
        assert [c["id"] for c in (await client.get("/v1/calls")).json()["calls"]] == ["ann-1"]
        assert (await client.get("/v1/calls?agent_id=bob")).status_code == 403
        assert (await client.get("/v1/calls?agent_id=ann")).json()["calls"][0]["id"] == "ann-1"
        for path in ("", "/events", "/transcript", "/recording"):
            assert (await client.get(f"/v1/calls/bob-1{path}")).status_code == 403, path
            assert (await client.get(f"/v1/calls/cy-1{path}")).status_code == 403, path
        assert (await client.post("/v1/calls/bob-1/notes", json={"text": "x"})).status_code == 403
        assert (await client.get("/v1/calls/ann-1/transcript")).json()["utterances"][0]["text"] == "hello"
        assert (await client.post("/v1/calls/ann-1/notes", json={"text": "ok"})).status_code == 201
    async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
        assert {c["id"] for c in (await client.get("/v1/calls")).json()["calls"]} == {"ann-1", "bob-1", "cy-1"}
        assert (await client.get("/v1/calls/bob-1")).status_code == 200


async def next_call_ids(ws: ClientConnection, seconds: float = 1.0) -> set[str]:
    seen: set[str] = set()
    try:
        while True:
            seen.add(json.loads(await asyncio.wait_for(ws.recv(), seconds))["call_id"])
    except TimeoutError:
        return seen


async def test_the_board_and_listen_in_keep_to_the_tokens_teams(server: Server) -> None:
    add_ended_call(server, "old-ann", "ann", "north")
    add_ended_call(server, "old-bob", "bob", "south")
    calls = [await open_call(server, "ann-live", "ann"), await open_call(server, "bob-live", "bob"),
             await open_call(server, "dee-live", "dee", team="north")]  # dee: filed under no team yet
    north = bearer(server, "supervisor", teams=("north",))
    try:
        async with connect(f"{server.ws}/v1/ws/supervisor", additional_headers=north) as board:
            assert await next_call_ids(board) == {"ann-live", "dee-live"}
            calls.append(await open_call(server, "bob-live-2", "bob", team="north"))  # bob is filed under south
            calls.append(await open_call(server, "eve-live", "eve", team="north"))
            assert await next_call_ids(board) == {"eve-live"}
        async with connect(f"{server.ws}/v1/ws/supervisor", additional_headers=server.bearer("supervisor")) as board:
            assert {"ann-live", "bob-live", "dee-live", "eve-live"} <= await next_call_ids(board)
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{server.ws}/v1/ws/listen/bob-live", additional_headers=north):
                pass
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            async with connect(f"{server.ws}/v1/ws/supervisor?call_id=bob-live", additional_headers=north):
                pass
        async with connect(f"{server.ws}/v1/ws/listen/ann-live", additional_headers=north):
            pass  # accepted: ann is filed under north
        async with httpx.AsyncClient(base_url=server.http, headers=north) as client:
            listed = {c["id"] for c in (await client.get("/v1/calls?live=true")).json()["calls"]}
            assert listed == {"ann-live", "dee-live", "eve-live"}
            assert (await client.get("/v1/calls/bob-live")).status_code == 403
    finally:
        for ws in calls:
            await stop(ws)


def test_team_scope_admits_by_filing_then_by_the_call_object() -> None:
    scope = TeamScope(frozenset({"north"}), {"ann"}, frozenset({"bob"}))
    assert scope.admits_call({"agent_id": "ann", "team": None})
    assert not scope.admits_call({"agent_id": "bob", "team": "north"})  # a supervisor's filing wins
    assert scope.admits_call({"agent_id": "dee", "team": "north"})
    assert not scope.admits_call({"agent_id": "dee", "team": "south"})


async def test_a_calls_review_state_and_a_note_at_a_moment_on_the_older_endpoints(server: Server) -> None:
    add_ended_call(server, "ann-1", "ann", "north")
    ws = await open_call(server, "still-live", "ann")
    try:
        async with httpx.AsyncClient(base_url=server.http, headers=server.bearer("supervisor")) as client:
            call = (await client.get("/v1/calls/ann-1")).json()
            assert (call["review"], call["review_updated"], call["reviewed_by"]) == ("new", None, None)
            assert (await client.get("/v1/calls/still-live")).json()["review"] is None  # not ended: no state yet
            r = await client.put("/v1/calls/ann-1/review", json={"state": "reviewed", "author": "maria"})
            assert r.status_code == 200
            call = (await client.get("/v1/calls/ann-1")).json()
            assert (call["review"], call["reviewed_by"]) == ("reviewed", "maria")

            r = await client.post("/v1/calls/ann-1/notes", json={"text": "Slow down here", "t": 12.5})
            assert r.status_code == 201 and r.json()["t"] == 12.5 and r.json()["agent_id"] == "ann"
            r = await client.post("/v1/calls/ann-1/notes", json={"text": "The whole call"})
            assert r.status_code == 201 and r.json()["t"] is None
            for bad in (-1, "12", True):
                assert (await client.post("/v1/calls/ann-1/notes", json={"text": "x", "t": bad})).status_code == 422
            notes = (await client.get("/v1/calls/ann-1")).json()["notes"]
            assert [(n["text"], n["t"]) for n in notes] == [("Slow down here", 12.5), ("The whole call", None)]
            moments = (await client.get("/v1/notes?call_id=ann-1")).json()["notes"]
            assert {n["t"] for n in moments} == {12.5, None}
    finally:
        await stop(ws)
