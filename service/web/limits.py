"""Limits below the application: what a client may hold before its request even reaches a handler.

Everything else in callwatch is checked per request; these cannot be. A client that opens sockets and never
finishes its request head (slowloris) holds a file descriptor each and is never seen by the ASGI app, so the
request head gets a deadline and each address, and the server as a whole, a ceiling on open connections.
They live in uvicorn's protocol classes, the one place that sees a connection from its first byte.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from service.core.settings import Settings

log = logging.getLogger("callwatch.limits")

LOG_EVERY_S = 10.0
"""A flood of refused connections is logged once per this many seconds, with a count, not once per socket."""


class _Throttled:
    def __init__(self) -> None:
        self.last = 0.0
        self.count = 0

    def warn(self, message: str, *args: object) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.last >= LOG_EVERY_S:
            log.warning(message + " (%d refused since the last such message)", *args, self.count)
            self.last, self.count = now, 0


_refusals = _Throttled()
_slow_heads = _Throttled()


def _status_line(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message, "status": status}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


class LimitedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a request-head deadline and connection ceilings."""

    header_timeout_s = 10.0
    max_connections = 0
    max_per_address = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_for: object = self.scope
        why = self._over_limit()
        if why is not None:
            _refusals.warn("refused a connection from %s: %s", self.client[0] if self.client else "?", why)
            transport.write(_status_line(503, "Service Unavailable", why))
            transport.close()
            return
        self._arm_head_timer()

    def _over_limit(self) -> str | None:
        if self.max_connections and len(self.connections) > self.max_connections:
            return f"too many open connections (limit {self.max_connections})"
        if self.max_per_address and self.client:
            host = self.client[0]
            mine = sum(1 for c in self.connections if (getattr(c, "client", None) or ("",))[0] == host)
            if mine > self.max_per_address:
                return f"too many open connections from this address (limit {self.max_per_address})"
        return None

    def _arm_head_timer(self) -> None:
        self._head_for = self.scope  # the head has arrived once the scope is a new one
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.scope is self._head_for and not self.transport.is_closing():
            _slow_heads.warn("closed a connection from %s: no complete request head within %g s",
                             self.client[0] if self.client else "?", self.header_timeout_s)
            self.transport.write(_status_line(408, "Request Timeout", "request head not received in time"))
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self._head_timer is not None and self.scope is not self._head_for:
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A kept-alive connection's next request gets the same deadline for its head (unless a pipelined one
        # has already arrived and is being answered).
        busy = self.cycle is not None and not self.cycle.response_complete
        if self._head_timer is None and not busy and not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_head_timer", None) is not None:
            self._head_timer.cancel()  # type: ignore[union-attr]
            self._head_timer = None
        super().connection_lost(exc)


class DenialAwareWebSocket(WebSocketsSansIOProtocol):
    """uvicorn logs "ASGI callable returned without completing handshake" (an error) after every upgrade the
    app refuses with an HTTP response, although that response is the complete answer to the handshake (uvicorn
    marks only accept and close as complete). Refusals are already logged by callwatch with their reason."""

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True


def protocols(settings: Settings) -> dict[str, Any]:
    """``http`` and ``ws`` arguments for ``uvicorn.Config`` that enforce ``settings``' connection limits."""
    http = type("CallwatchHTTP", (LimitedH11,), {
        "header_timeout_s": settings.header_timeout_s, "max_connections": settings.max_connections,
        "max_per_address": settings.max_connections_per_address})
    return {"http": http, "ws": DenialAwareWebSocket}
