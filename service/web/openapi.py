"""A hand-written OpenAPI 3.1 description of the HTTP surface; short enough to keep in step by reading."""

from __future__ import annotations

from typing import Any

_CALL_ID = {"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}
_JSON = {"application/json": {"schema": {"type": "object"}}}
_ERRORS = {"401": {"description": "missing or bad token", "content": _JSON},
           "403": {"description": "role not allowed", "content": _JSON},
           "404": {"description": "no such call", "content": _JSON}}


def _get(summary: str, params: list[dict[str, Any]] | None = None, content: dict[str, Any] | None = None,
         ) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params or [], "security": [{"bearer": []}],
                    "responses": {"200": {"description": "OK", "content": content or _JSON}, **_ERRORS}}}


def _query(name: str, kind: str, desc: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": {"type": kind}, "description": desc}


def _body(summary: str, method: str, params: list[dict[str, Any]], required: list[str],
          properties: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {method: {"summary": summary, "parameters": params, "security": [{"bearer": []}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": required, "properties": properties}}}},
                     "responses": {status: {"description": "OK", "content": _JSON},
                                   "409": {"description": "the call has not ended", "content": _JSON},
                                   "422": {"description": "bad body", "content": _JSON}, **_ERRORS}}}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_PAGING = [_query("limit", "integer", "at most this many (1..200, default 50)"),
           _query("offset", "integer", "skip this many (the answer's next_offset)")]
_PERIOD = [_query("period", "string", "day or week (default)"),
           _query("from", "number", "Unix seconds (default: 12 weeks or 30 days before to)"),
           _query("to", "number", "Unix seconds (default: now)")]
_STR, _NUM, _OPT_NUM = {"type": "string"}, {"type": "number"}, {"type": ["number", "null"]}


def coaching_paths() -> dict[str, Any]:
    """Issue 16's endpoints (service.web.coaching; docs/coaching.md has the JSON shapes)."""
    incident_filters = [_query("call_id", "string", "one call's"), _query("agent_id", "string", "one agent's"),
                        _query("team", "string", "a team's agents'"), _query("category", "string", ""),
                        _query("severity", "string", "low, medium, high or critical"),
                        _query("from", "number", "filed at or after (Unix s)"),
                        _query("to", "number", "filed before (Unix s)")]
    return {
        "/v1/search": _get("Search ended calls: full text over redacted transcripts and filters (agent: own calls)", [
            _query("q", "string", "words that must all be in one line, stemmed (English, Russian)"),
            _query("agent_id", "string", ""), _query("team", "string", "the team's current agents"),
            _query("from", "number", "call start >= (Unix s)"), _query("to", "number", "call start < (Unix s)"),
            _query("rule", "string", "an alert rule that fired"), _query("flagged", "boolean", ""),
            _query("min_score", "integer", "escalation score at least"),
            _query("language", "string", "primary subtag: en, ru"),
            _query("min_duration", "number", "seconds"), _query("max_duration", "number", "seconds"),
            _query("has_notes", "boolean", ""), _query("review", "string", "new, reviewed or coached"),
            _query("sort", "string", "newest (default), oldest, score, duration"), *_PAGING]),
        "/v1/agents/{agent_id}/scorecard": _get("An agent's behaviour per day or week beside the team's median "
                                                "(the agent themselves, or a supervisor)",
                                                [_path("agent_id"), *_PERIOD]),
        "/v1/agents/{agent_id}/team": _body("Set (or, with null, remove) an agent's team (supervisor)", "put",
                                            [_path("agent_id")], ["team"], {"team": {"type": ["string", "null"]}}),
        "/v1/teams": _get("Teams and their agents (supervisor)"),
        "/v1/teams/{team}/scorecard": _get("Each agent of a team per day or week, and their median (supervisor)",
                                           [_path("team"), *_PERIOD]),
        "/v1/queue": _get("Flagged ended calls by review state, newest first (supervisor)", [
            _query("review", "string", "new (default), reviewed, coached or all"), _query("agent_id", "string", ""),
            _query("team", "string", ""), _query("from", "number", ""), _query("to", "number", ""), *_PAGING]),
        "/v1/calls/{call_id}/review": _body("Set a call's review state: new, reviewed, coached (supervisor)", "put",
                                            [_CALL_ID], ["state"], {"state": _STR, "author": _STR}),
        "/v1/notes": {
            **_get("Coaching notes, newest first (agent: about their own calls)", [
                _query("agent_id", "string", ""), _query("call_id", "string", ""),
                _query("acknowledged", "boolean", ""), *_PAGING]),
            **_body("Write a coaching note at a moment of a call (supervisor)", "post", [], ["call_id", "text"],
                    {"call_id": _STR, "t": _OPT_NUM, "text": _STR, "author": _STR}, "201")},
        "/v1/notes/{note_id}/acknowledge": {"post": {
            "summary": "Acknowledge a note about one's own call (the agent)", "parameters": [_path("note_id")],
            "security": [{"bearer": []}],
            "responses": {"200": {"description": "the note", "content": _JSON}, **_ERRORS}}},
        "/v1/calls/{call_id}/incidents": _body(
            "File an incident record from a call (supervisor)", "post", [_CALL_ID],
            ["category", "severity", "what_happened"],
            {"category": _STR, "severity": {"enum": ["low", "medium", "high", "critical"]}, "what_happened": _STR,
             "outcome": _STR, "follow_up": _STR, "t": _OPT_NUM, "author": _STR}, "201"),
        "/v1/incidents": _get("Incident records, newest first (supervisor)", [*incident_filters, *_PAGING]),
        "/v1/incidents.csv": _get("Incident records as CSV (supervisor)", incident_filters, {"text/csv": {}}),
        "/v1/calls/{call_id}/export": _get("Everything kept about a call, as JSON, incidents included (supervisor)",
                                           [_CALL_ID]),
    }


_ERASE = {"delete": {
    "summary": "Erase a call (a customer's erasure request; supervisor): its recording, rows, transcript, search "
               "index rows, derived metrics and notes; incidents are kept, unlinked, unless incidents=delete",
    "parameters": [_CALL_ID, _query("incidents", "string", "keep (default) or delete")],
    "security": [{"bearer": []}],
    "responses": {"200": {"description": "erased", "content": _JSON},
                  "409": {"description": "the call is live", "content": _JSON}, **_ERRORS}}}


def spec(version: str = "0.1.0") -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "callwatch", "version": version,
                 "description": "Live call coaching. Websocket endpoints (ingest, subscribers) are described "
                                "in docs/integration.md; this covers the HTTP API."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "token from `callwatch token`"}}},
        "paths": {
            "/v1/calls": _get("List calls, newest first", [
                _query("live", "boolean", "only live (true) or only finished (false) calls"),
                _query("flagged", "boolean", "only flagged calls"),
                _query("agent_id", "string", "one agent's calls"),
                _query("limit", "integer", "at most this many (default 100)"),
                _query("offset", "integer", "skip this many stored calls")]),
            "/v1/calls/{call_id}": {**_get("One call, with its notes and (once ended) its review state", [_CALL_ID]),
                                    **_ERASE},
            "/v1/calls/{call_id}/events": _get("The call's events in order", [
                _CALL_ID, _query("type", "string", "comma-separated event types"),
                _query("since", "number", "call time in seconds")]),
            "/v1/calls/{call_id}/transcript": _get("Redacted utterances of both legs", [_CALL_ID]),
            "/v1/calls/{call_id}/recording": _get("Stereo WAV, channel 0 customer, 1 agent (supervisor)",
                                                  [_CALL_ID], {"audio/wav": {}}),
            "/v1/calls/{call_id}/notes": {"post": {
                "summary": "Add a supervisor note, at a moment (t) or for the whole call", "parameters": [_CALL_ID],
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string"}, "author": {"type": "string"},
                                   "t": {"type": ["number", "null"], "description": "call time in seconds"}}}}}},
                "responses": {"201": {"description": "created", "content": _JSON},
                              "422": {"description": "bad note", "content": _JSON}, **_ERRORS}}},
            **coaching_paths(),
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}},
        },
    }
