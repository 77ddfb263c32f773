"""The web pages: the agent's screen, the supervisors' board and the call review, plus their static assets.

Plain HTML, CSS and JavaScript modules from ``service/web/static``; no build step and nothing from a CDN. The pages
are public shells: every piece of call data is fetched by the page with the user's token, so the server-side
checks of the API are the only access control. Mount with ``routes=[*page_routes(), ...]``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
"""Everything comes from callwatch itself; websockets may use either scheme (behind a TLS proxy or not)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-cache")]


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


async def agent_page(request: Request) -> Response:
    return _page("agent.html")


async def supervisor_page(request: Request) -> Response:
    return _page("supervisor.html")


async def review_page(request: Request) -> Response:
    return _page("call.html")


COACHING_PAGES = {"/search": "search.html", "/scorecard": "scorecard.html", "/queue": "queue.html",
                  "/notes": "notes.html", "/incidents": "incidents.html"}
"""Issue 16's pages: call search, scorecards, the review queue, coaching notes and incidents."""


def _static_page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _page(name)

    return endpoint


async def calls_index(request: Request) -> Response:
    """``/calls`` alone has no page of its own: the board lists the calls."""
    return RedirectResponse("/supervisor", status_code=307)


class _Assets(StaticFiles):
    """Static files that revalidate (small, and they change with every deploy) and are never sniffed."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *ASSET_HEADERS]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def page_routes() -> list[BaseRoute]:
    """``/agent``, ``/supervisor``, ``/calls/{call_id}``, the coaching pages and ``/static/...``."""
    return [
        Route("/agent", agent_page, methods=["GET", "HEAD"]),
        Route("/supervisor", supervisor_page, methods=["GET", "HEAD"]),
        Route("/calls", calls_index, methods=["GET", "HEAD"]),
        Route("/calls/{call_id}", review_page, methods=["GET", "HEAD"]),
        *(Route(path, _static_page(name), methods=["GET", "HEAD"]) for path, name in COACHING_PAGES.items()),
        Mount("/static", app=_Assets(directory=STATIC), name="static"),
    ]
