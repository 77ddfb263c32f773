"""Refusing a websocket upgrade with an HTTP status and the same JSON error body as the REST API.

A bare close before accept reaches the client as a body-less 403, which leaves an integrator guessing
whether the token, the role or the URL was wrong. Servers without the denial-response extension still
refuse, with the bare 403.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from service.ingest.common import CLOSE_POLICY

UNAUTHORIZED = 401
"""No credential, or one that does not verify."""
FORBIDDEN = 403
"""A valid credential that does not allow this (another role, another agent's calls)."""


async def deny(ws: WebSocket, status: int, message: str) -> None:
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse({"error": message, "status": status}, status_code=status))
    else:
        await ws.close(CLOSE_POLICY)
