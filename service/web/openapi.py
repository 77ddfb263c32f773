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
            "/v1/calls/{call_id}": _get("One call, with supervisor notes", [_CALL_ID]),
            "/v1/calls/{call_id}/events": _get("The call's events in order", [
                _CALL_ID, _query("type", "string", "comma-separated event types"),
                _query("since", "number", "call time in seconds")]),
            "/v1/calls/{call_id}/transcript": _get("Redacted utterances of both legs", [_CALL_ID]),
            "/v1/calls/{call_id}/recording": _get("Stereo WAV, channel 0 customer, 1 agent (supervisor)",
                                                  [_CALL_ID], {"audio/wav": {}}),
            "/v1/calls/{call_id}/notes": {"post": {
                "summary": "Add a supervisor incident note", "parameters": [_CALL_ID],
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string"}, "author": {"type": "string"}}}}}},
                "responses": {"201": {"description": "created", "content": _JSON},
                              "422": {"description": "bad note", "content": _JSON}, **_ERRORS}}},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "OK"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics",
                                 "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}}}},
        },
    }
