"""The page routes and static assets, without a browser: served, locked down, and self-contained."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from service.web.pages import STATIC, page_routes


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=page_routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(("path", "title"), [("/agent", "Agent screen"), ("/supervisor", "Live board"),
                                             ("/calls/any-call-id", "Call review")])
async def test_pages_are_served_with_a_strict_policy(client: httpx.AsyncClient, path: str, title: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert f"<title>{title}" in r.text
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_static_assets_and_their_types(client: httpx.AsyncClient) -> None:
    js = await client.get("/static/js/agent.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    css = await client.get("/static/css/base.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await client.get("/static/nope.js")).status_code == 404
    assert (await client.get("/calls", follow_redirects=False)).headers["location"] == "/supervisor"


async def asgi_get(app: Starlette, path: str) -> tuple[int, bytes]:
    """``path`` handed to the app as the server would after decoding, ``..`` and all: HTTP clients resolve it before
    sending (``tests/service/test_hostile_input.py`` sends such paths over a real socket)."""
    sent: list[dict[str, Any]] = []
    requested, done = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client hangs up once the response is complete
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"test")], "server": ("test", 80), "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("path", ["/static/../pages.py", "/static/js/../../pages.py", "/static/..\\pages.py",
                                  "/static/../../../../../../etc/passwd"])
async def test_static_files_stay_in_their_folder(path: str) -> None:
    status, body = await asgi_get(Starlette(routes=page_routes()), path)
    assert status == 404 and b"import" not in body and b"root:" not in body


async def test_the_unresolved_path_reaches_the_static_files() -> None:
    status, body = await asgi_get(Starlette(routes=page_routes()), "/static/js/../js/dom.js")
    assert status == 200 and b"export function" in body


def test_every_referenced_asset_exists_and_nothing_comes_from_elsewhere() -> None:
    """No CDN, no external font, no absolute URL anywhere in the pages or their code."""
    for file in STATIC.rglob("*"):
        if file.suffix not in {".html", ".js", ".css"}:
            continue
        text = file.read_text()
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), file
        assert not re.search(r"""(import|from)\s*["']https?:""", text), file
        assert "@import url(http" not in text, file
        for ref in re.findall(r"""["'](/static/[^"'?#]+)""", text):
            assert (STATIC / ref.removeprefix("/static/")).is_file(), f"{file.name} refers to missing {ref}"
        for ref in re.findall(r"""from\s+["'](\./[^"']+)["']""", text):
            assert (file.parent / ref).is_file(), f"{file.name} imports missing {ref}"


def test_every_page_has_the_spec_hooks() -> None:
    code = "".join(p.read_text() for p in (STATIC / "js").glob("*.js"))
    for hook in ('"data-testid": "alert"', '"data-testid": "call-row"', '"data-call-id"', '"data-testid": "listen"',
                 "row.dataset.flagged"):
        assert hook in code, hook
