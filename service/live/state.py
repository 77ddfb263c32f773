"""The process's one ``Runtime``, as a request handler or a socket finds it (``app.state.runtime``)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from service.live.pipeline import Runtime


def runtime(conn: HTTPConnection) -> Runtime:
    """The ``Runtime`` of the application serving ``conn`` (a ``Request`` or a ``WebSocket``)."""
    rt: Runtime = conn.app.state.runtime
    return rt
