"""REST endpoints over the store (completed calls) and the runtime (live ones). JSON errors throughout."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from service.core import auth
from service.fanout.hub import TeamScope
from service.live.state import runtime as _rt
from service.storage.backends import CallStore
from service.storage.coaching import CoachingStore
from service.storage.sqlite import previous_session
from service.web.metrics import render

log = logging.getLogger(__name__)

MAX_NOTE = 4000
READ_SETTLE_S = 2.0
"""How long a read waits for queued writes, so it shows a call's latest rows; past that it shows what is stored."""


async def _settle(request: Request) -> None:
    """Let the writes already queued land first, so the read sees a call's latest rows; not for longer than
    ``READ_SETTLE_S``, after which the read answers with what is stored."""
    writer = request.app.state.writer
    if not await writer.settle(READ_SETTLE_S):
        log.warning("a read went ahead with %d writes still queued", writer.depth)


def _store(request: Request) -> CallStore:
    store: CallStore = request.app.state.store
    return store


def claims(request: Request, *roles: auth.Role) -> auth.Claims:
    try:
        c = auth.claims(_rt(request).settings.secret, request.headers, request.query_params)
    except auth.AuthError as e:
        raise HTTPException(401, str(e)) from None
    if c.role not in roles:
        raise HTTPException(403, f"role {c.role} may not do this")
    return c


def _flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise HTTPException(400, f"{name} must be true or false")


def _int(request: Request, name: str, default: int, top: int) -> int:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not 0 <= value <= top:
        raise HTTPException(400, f"{name} must be 0..{top}")
    return value


def public(call: dict[str, Any]) -> dict[str, Any]:
    """A call as clients see it: where its recording can be fetched, never where the server keeps it; and the
    session before it when its id was used before (see ``store.previous_session``)."""
    out = {**call, "recording": f"/v1/calls/{call['id']}/recording" if call.get("recording") else None}
    out["previous"] = previous_session(call["id"])
    return out


async def team_scope(store: Any, c: auth.Claims) -> TeamScope | None:
    """A supervisor token's ``teams`` claim as the agents it may see (None: every agent). Read from the store's
    teams: the agents filed under those teams, and those filed under others; an agent filed under none is seen
    when their call names one of the teams (a live call's ingest ``team``)."""
    if c.role != "supervisor" or c.teams is None:
        return None
    rows = await asyncio.to_thread(cast(CoachingStore, store).teams)
    teams = frozenset(c.teams)
    members = {a for r in rows if r["team"] in teams for a in r["agents"]}
    others = frozenset(a for r in rows if r["team"] not in teams for a in r["agents"])
    return TeamScope(teams, members, others)


async def _call_or_404(request: Request, c: auth.Claims) -> dict[str, Any]:
    call_id = request.path_params["call_id"]
    live = _rt(request).calls.get(call_id)
    if live is None:
        # A call that has just ended is off the live table but its last row may still be queued for the store.
        await _settle(request)
    call = live.call_object() if live is not None else await asyncio.to_thread(_store(request).get_call, call_id)
    # An agent asking for someone else's call learns nothing, not even that it exists.
    if call is None or (c.role == "agent" and call["agent_id"] != c.agent_id):
        raise HTTPException(404, f"no call {call_id}")
    scope = await team_scope(_store(request), c)
    if scope is not None and not scope.admits_call(call):
        raise HTTPException(403, "this token is scoped to teams this call's agent is not in")
    return call


async def list_calls(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    live, flagged = _flag(request, "live"), _flag(request, "flagged")
    agent_id = request.query_params.get("agent_id")
    if c.role == "agent":
        if agent_id not in (None, c.agent_id):
            raise HTTPException(403, "agents may list only their own calls")
        agent_id = c.agent_id
    limit, offset = _int(request, "limit", 100, 1000), _int(request, "offset", 0, 10**9)
    rt = _rt(request)
    scope = await team_scope(_store(request), c)
    if scope is not None and agent_id is not None and agent_id in scope.others:
        raise HTTPException(403, "this token is scoped to teams this agent is not in")
    if live is not True:
        # So that a call that has just ended is listed as ended, not missing.
        await _settle(request)
    live_calls = [call.call_object() for call in rt.calls.values()]
    live_calls += [view.call for view in rt.hub.calls_elsewhere() if view.call["id"] not in rt.calls]
    live_calls = [x for x in live_calls if (agent_id is None or x["agent_id"] == agent_id)
                  and (flagged is None or x["flagged"] == flagged)
                  and (scope is None or scope.admits_call(x))]
    stored: list[dict[str, Any]] = []
    if live is not True:
        stored = await asyncio.to_thread(_store(request).list_calls, flagged=flagged, agent_id=agent_id,
                                         agent_ids=None if scope is None else sorted(scope.members),
                                         limit=limit + len(live_calls), offset=offset)
        live_ids = {x["id"] for x in live_calls}
        stored = [x for x in stored if x["id"] not in live_ids and x["status"] != "live"]
    calls = stored if live is False else live_calls + stored
    return JSONResponse({"calls": [public(x) for x in calls[:limit]]})


async def get_call(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    call = await _call_or_404(request, c)
    notes = await asyncio.to_thread(_store(request).notes, call["id"])
    # The review state lives in the row derived when the call ended (docs/coaching.md); none before that.
    metrics = await asyncio.to_thread(cast(CoachingStore, _store(request)).metrics, call["id"])
    review = {k: None if metrics is None else metrics[k] for k in ("review", "review_updated", "reviewed_by")}
    return JSONResponse({**public(call), "notes": notes, **review})


async def call_events(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    call = await _call_or_404(request, c)
    types = [t for t in request.query_params.get("type", "").split(",") if t]
    try:
        since = float(request.query_params["since"]) if "since" in request.query_params else None
    except ValueError:
        raise HTTPException(400, "since must be seconds of call time") from None
    await _settle(request)  # a live call's latest events are visible at once
    events = await asyncio.to_thread(_store(request).events, call["id"], types, since)
    return JSONResponse({"call_id": call["id"], "events": events})


async def call_transcript(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    call = await _call_or_404(request, c)
    await _settle(request)
    rows = await asyncio.to_thread(_store(request).transcript, call["id"])
    return JSONResponse({"call_id": call["id"], "utterances": rows})


async def call_recording(request: Request) -> Response:
    c = claims(request, "supervisor")
    call = await _call_or_404(request, c)
    path = call.get("recording")
    if not path or not await asyncio.to_thread(Path(path).exists):
        raise HTTPException(404, "no recording kept for this call (see the recording policy)")
    return FileResponse(path, media_type="audio/wav", filename=f"{call['id']}.wav")


async def add_note(request: Request) -> Response:
    c = claims(request, "supervisor")
    call = await _call_or_404(request, c)
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise HTTPException(400, "body must be JSON: {\"text\": \"...\"}") from None
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE:
        raise HTTPException(422, f"text must be a non-empty string of at most {MAX_NOTE} characters")
    t = body.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < 10**7):
        raise HTTPException(422, "t must be call time in seconds (a number >= 0) or null")
    author = body.get("author") if isinstance(body.get("author"), str) else "supervisor"
    note = await asyncio.to_thread(cast(CoachingStore, _store(request)).add_coaching_note, call["id"],
                                   None if t is None else float(t), author[:100], text.strip())
    return JSONResponse(note, status_code=201)


async def healthz(request: Request) -> Response:
    rt = _rt(request)
    return JSONResponse({"status": "ok", "live_calls": len(rt.calls), "asr": rt.submit is not None})


async def metrics(request: Request) -> Response:
    state = request.app.state
    return PlainTextResponse(render(state.runtime, state.writer, state.worker, state.scheduler),
                             media_type="text/plain; version=0.0.4")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "status": exc.status_code}, status_code=exc.status_code)
