"""REST endpoints for coaching across calls (issue 16; docs/coaching.md is their contract): call search, agent and
team scorecards, teams, the review queue, coaching notes, incidents (and their CSV), a call's JSON export, and
erasure. Access: an agent sees their own calls, scorecard and notes only; a supervisor sees everyone, or the agents
of the teams their token names. Errors are JSON (``rest.http_error``). ``routes()`` mounts them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import time
from typing import Any, cast

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.core import auth
from service.live.state import runtime as _rt
from service.storage.coaching import (
    INCIDENT_COLUMNS,
    PERIODS,
    REVIEW_STATES,
    SEVERITIES,
    SORTS,
    CoachingStore,
    Conflict,
    Filters,
    NotFound,
    Scope,
)
from service.web.rest import claims

MAX_TEXT = 4000
MAX_NAME = 100
MAX_PAGE = 200
DEFAULT_SPAN = {"day": 30 * 86400.0, "week": 12 * 7 * 86400.0}
SETTLE_S = 2.0


def _store(request: Request) -> CoachingStore:
    return cast(CoachingStore, request.app.state.store)


async def _settle(request: Request) -> None:
    """Writes already queued (a call that has just ended) land before a read or a change of its rows."""
    await request.app.state.writer.settle(SETTLE_S)


async def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


# -- parameters ------------------------------------------------------------------------------------------------


def _str(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if len(value) > MAX_NAME * 2:
        raise HTTPException(400, f"{name} is too long")
    return value


def _float(request: Request, name: str, low: float = 0.0) -> float | None:
    raw = _str(request, name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be a number") from None
    if not value >= low or value == float("inf"):
        raise HTTPException(400, f"{name} must be a finite number >= {low:g}")
    return value


def _int(request: Request, name: str, default: int, top: int) -> int:
    raw = _str(request, name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be an integer") from None
    if not 0 <= value <= top:
        raise HTTPException(400, f"{name} must be 0..{top}")
    return value


def _bool(request: Request, name: str) -> bool | None:
    raw = _str(request, name)
    if raw is None:
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise HTTPException(400, f"{name} must be true or false")


def _choice(request: Request, name: str, choices: Any, default: str | None = None) -> str | None:
    value = _str(request, name) or default
    if value is not None and value not in choices:
        raise HTTPException(400, f"{name} must be one of {', '.join(choices)}")
    return value


def _paging(request: Request) -> tuple[int, int]:
    limit = _int(request, "limit", 50, MAX_PAGE)
    if limit < 1:
        raise HTTPException(400, f"limit must be 1..{MAX_PAGE}")
    return limit, _int(request, "offset", 0, 10**9)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise HTTPException(400, "body must be a JSON object") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, top: int = MAX_TEXT, required: bool = True) -> str:
    value = body.get(name, None if required else "")
    if value is None and not required:
        value = ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > top:
        raise HTTPException(422, f"{name} must be a{' non-empty' if required else ''} string of at most {top} "
                                 "characters")
    return value.strip()


def _moment(body: dict[str, Any]) -> float | None:
    t = body.get("t")
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < 10**7:
        raise HTTPException(422, "t must be call time in seconds (a number >= 0) or null")
    return float(t)


def _author(body: dict[str, Any]) -> str:
    author = body.get("author")
    return author.strip()[:MAX_NAME] if isinstance(author, str) and author.strip() else "supervisor"


# -- who may see what ----------------------------------------------------------------------------------------------


def _scope(c: auth.Claims) -> Scope:
    if c.role == "agent":
        return Scope(agent_id=c.agent_id)
    return Scope(teams=c.teams)


async def _may_see_agent(request: Request, c: auth.Claims, agent_id: str) -> None:
    """403 unless ``c`` may see ``agent_id``'s calls, scorecard and notes."""
    if c.role == "agent":
        if agent_id != c.agent_id:
            raise HTTPException(403, "agents may see only their own calls, scorecard and notes")
        return
    if c.teams is not None:
        team = await _run(_store(request).team_of, agent_id)
        if team is None or team["team"] not in c.teams:
            raise HTTPException(403, "this token is scoped to teams this agent is not in")


async def _call_agent(request: Request, c: auth.Claims, call_id: str) -> tuple[str, str]:
    """The call's agent and status; 404 for a call that does not exist or that an agent may not see, 403 for
    one outside a scoped supervisor's teams."""
    found: tuple[str, str] | None = await _run(_store(request).call_agent, call_id)
    if found is None or (c.role == "agent" and found[0] != c.agent_id):
        raise HTTPException(404, f"no call {call_id}")
    await _may_see_agent(request, c, found[0])
    return found


# -- search ----------------------------------------------------------------------------------------------------


async def search(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    agent_id = _str(request, "agent_id")
    if c.role == "agent" and agent_id not in (None, c.agent_id):
        raise HTTPException(403, "agents may search only their own calls")
    if agent_id is not None and c.role == "supervisor":
        await _may_see_agent(request, c, agent_id)
    min_score = _float(request, "min_score")
    f = Filters(q=_str(request, "q"), agent_id=agent_id, team=_str(request, "team"),
                start_from=_float(request, "from"), start_to=_float(request, "to"), rule=_str(request, "rule"),
                flagged=_bool(request, "flagged"), min_score=None if min_score is None else int(min_score),
                language=_str(request, "language"), min_duration=_float(request, "min_duration"),
                max_duration=_float(request, "max_duration"), has_notes=_bool(request, "has_notes"),
                review=_choice(request, "review", REVIEW_STATES),
                sort=_choice(request, "sort", SORTS, "newest") or "newest", scope=_scope(c))
    limit, offset = _paging(request)
    await _settle(request)
    hits, next_offset = await _run(_store(request).search, f, limit=limit, offset=offset)
    return JSONResponse({"hits": hits, "next_offset": next_offset})


# -- scorecards ----------------------------------------------------------------------------------------------


def _period(request: Request) -> tuple[str, float, float]:
    period = _choice(request, "period", PERIODS, "week") or "week"
    end = _float(request, "to")
    end = time.time() if end is None else end
    start = _float(request, "from")
    start = end - DEFAULT_SPAN[period] if start is None else start
    if start >= end:
        raise HTTPException(400, "from must be before to")
    if end - start > 400 * 86400:
        raise HTTPException(400, "a scorecard covers at most 400 days")
    return period, start, end


async def agent_scorecard(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    agent_id = request.path_params["agent_id"]
    await _may_see_agent(request, c, agent_id)
    period, start, end = _period(request)
    await _settle(request)
    return JSONResponse(await _run(_store(request).scorecard, agent_id, period, start, end))


async def team_scorecard(request: Request) -> Response:
    c = claims(request, "supervisor")
    team = request.path_params["team"]
    if c.teams is not None and team not in c.teams:
        raise HTTPException(403, "this token is scoped to other teams")
    period, start, end = _period(request)
    await _settle(request)
    return JSONResponse(await _run(_store(request).team_scorecard, team, period, start, end))


# -- teams -----------------------------------------------------------------------------------------------------


async def set_team(request: Request) -> Response:
    c = claims(request, "supervisor")
    agent_id = request.path_params["agent_id"]
    body = await _body(request)
    team = body.get("team")
    if team is not None and (not isinstance(team, str) or not team.strip() or len(team) > MAX_NAME):
        raise HTTPException(422, f"team must be a non-empty string of at most {MAX_NAME} characters, or null")
    team = None if team is None else team.strip()
    if c.teams is not None:
        current = await _run(_store(request).team_of, agent_id)
        if (current is not None and current["team"] not in c.teams) or (team is not None and team not in c.teams):
            raise HTTPException(403, "this token is scoped to other teams")
    return JSONResponse(await _run(_store(request).set_team, agent_id, team))


async def list_teams(request: Request) -> Response:
    c = claims(request, "supervisor")
    return JSONResponse({"teams": await _run(_store(request).teams, c.teams)})


# -- the review queue ------------------------------------------------------------------------------------------------


async def queue(request: Request) -> Response:
    c = claims(request, "supervisor")
    review = _choice(request, "review", (*REVIEW_STATES, "all"), "new")
    limit, offset = _paging(request)
    await _settle(request)
    out = await _run(_store(request).queue, review=None if review == "all" else review,
                     agent_id=_str(request, "agent_id"), team=_str(request, "team"),
                     start_from=_float(request, "from"), start_to=_float(request, "to"), scope=_scope(c),
                     limit=limit, offset=offset)
    return JSONResponse(out)


async def set_review(request: Request) -> Response:
    c = claims(request, "supervisor")
    call_id = request.path_params["call_id"]
    body = await _body(request)
    state = body.get("state")
    if state not in REVIEW_STATES:
        raise HTTPException(422, f"state must be one of {', '.join(REVIEW_STATES)}")
    await _settle(request)
    await _call_agent(request, c, call_id)
    try:
        out = await _run(_store(request).set_review, call_id, state, _author(body))
    except Conflict as e:
        raise HTTPException(409, str(e)) from None
    return JSONResponse(out)


# -- coaching notes ----------------------------------------------------------------------------------------------


async def add_note(request: Request) -> Response:
    c = claims(request, "supervisor")
    body = await _body(request)
    call_id = body.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise HTTPException(422, "call_id must be the id of a call")
    text, t = _text(body, "text"), _moment(body)
    await _settle(request)
    await _call_agent(request, c, call_id)
    note = await _run(_store(request).add_coaching_note, call_id, t, _author(body), text)
    return JSONResponse(note, status_code=201)


async def list_notes(request: Request) -> Response:
    c = claims(request, "supervisor", "agent")
    agent_id = _str(request, "agent_id")
    if agent_id is not None:
        await _may_see_agent(request, c, agent_id)
    limit, offset = _paging(request)
    notes, next_offset = await _run(_store(request).list_notes, agent_id=agent_id, call_id=_str(request, "call_id"),
                                    acknowledged=_bool(request, "acknowledged"), scope=_scope(c), limit=limit,
                                    offset=offset)
    return JSONResponse({"notes": notes, "next_offset": next_offset})


async def acknowledge(request: Request) -> Response:
    c = claims(request, "agent")
    try:
        note_id = int(request.path_params["note_id"])
    except ValueError:
        raise HTTPException(404, "no such note") from None
    note = await _run(_store(request).note, note_id)
    if note is None or note["agent_id"] != c.agent_id:  # another agent's note: as if there were none
        raise HTTPException(404, f"no note {note_id}")
    return JSONResponse(await _run(_store(request).acknowledge, note_id))


# -- incidents ---------------------------------------------------------------------------------------------------


async def add_incident(request: Request) -> Response:
    c = claims(request, "supervisor")
    call_id = request.path_params["call_id"]
    body = await _body(request)
    severity = body.get("severity")
    if severity not in SEVERITIES:
        raise HTTPException(422, f"severity must be one of {', '.join(SEVERITIES)}")
    fields = {"category": _text(body, "category", top=MAX_NAME), "severity": severity,
              "what_happened": _text(body, "what_happened"), "outcome": _text(body, "outcome", required=False),
              "follow_up": _text(body, "follow_up", required=False), "author": _author(body), "t": _moment(body)}
    await _settle(request)
    await _call_agent(request, c, call_id)
    try:
        incident = await _run(_store(request).add_incident, call_id, fields)
    except NotFound as e:
        raise HTTPException(404, str(e)) from None
    return JSONResponse(incident, status_code=201)


def _incident_filters(request: Request, c: auth.Claims) -> dict[str, Any]:
    return {"call_id": _str(request, "call_id"), "agent_id": _str(request, "agent_id"), "team": _str(request, "team"),
            "category": _str(request, "category"), "severity": _choice(request, "severity", SEVERITIES),
            "created_from": _float(request, "from"), "created_to": _float(request, "to"), "scope": _scope(c)}


async def list_incidents(request: Request) -> Response:
    c = claims(request, "supervisor")
    limit, offset = _paging(request)
    rows, next_offset = await _run(_store(request).incidents, **_incident_filters(request, c), limit=limit,
                                   offset=offset)
    return JSONResponse({"incidents": rows, "next_offset": next_offset})


def _csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text that starts like a formula gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


async def incidents_csv(request: Request) -> Response:
    c = claims(request, "supervisor")
    rows, _ = await _run(_store(request).incidents, **_incident_filters(request, c), limit=None)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(INCIDENT_COLUMNS)
    for r in rows:
        writer.writerow([_csv_cell(r[k]) for k in INCIDENT_COLUMNS])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="incidents.csv"'})


# -- one call: export and erasure ---------------------------------------------------------------------------------


async def export_call(request: Request) -> Response:
    c = claims(request, "supervisor")
    call_id = request.path_params["call_id"]
    await _settle(request)
    await _call_agent(request, c, call_id)
    out = await _run(_store(request).export, call_id)
    if out is None:
        raise HTTPException(404, f"no call {call_id}")
    call = out["call"]
    call["recording"] = f"/v1/calls/{call_id}/recording" if call.get("recording") else None
    return JSONResponse(out, headers={"Content-Disposition": f'attachment; filename="{call_id}.json"'})


async def erase_call(request: Request) -> Response:
    c = claims(request, "supervisor")
    call_id = request.path_params["call_id"]
    incidents = _choice(request, "incidents", ("keep", "delete"), "keep")
    if call_id in _rt(request).calls:
        raise HTTPException(409, f"call {call_id} is live: erase it once it has ended")
    await _settle(request)  # the call's last rows and its recording's finish are written before it goes
    await _call_agent(request, c, call_id)
    try:
        done = await _run(_store(request).erase, call_id, keep_incidents=incidents == "keep")
    except NotFound as e:
        raise HTTPException(404, str(e)) from None
    except Conflict as e:
        raise HTTPException(409, str(e)) from None
    deleted = False
    if done["recording"]:
        try:
            await _run(os.unlink, done["recording"])
            deleted = True
        except FileNotFoundError:
            pass
    return JSONResponse({"call_id": call_id, "erased": True, "recording_deleted": deleted,
                         "incidents_kept": done["incidents_kept"], "incidents_deleted": done["incidents_deleted"]})


def routes() -> list[BaseRoute]:
    """The coaching endpoints, for ``create_app``."""
    return [
        Route("/v1/search", search),
        Route("/v1/agents/{agent_id}/scorecard", agent_scorecard),
        Route("/v1/agents/{agent_id}/team", set_team, methods=["PUT"]),
        Route("/v1/teams", list_teams),
        Route("/v1/teams/{team}/scorecard", team_scorecard),
        Route("/v1/queue", queue),
        Route("/v1/calls/{call_id}/review", set_review, methods=["PUT"]),
        Route("/v1/notes", add_note, methods=["POST"]),
        Route("/v1/notes", list_notes, methods=["GET"]),
        Route("/v1/notes/{note_id}/acknowledge", acknowledge, methods=["POST"]),
        Route("/v1/calls/{call_id}/incidents", add_incident, methods=["POST"]),
        Route("/v1/incidents", list_incidents),
        Route("/v1/incidents.csv", incidents_csv),
        Route("/v1/calls/{call_id}/export", export_call),
        Route("/v1/calls/{call_id}", erase_call, methods=["DELETE"]),
    ]
