"""Browser tests: Debian's chromium driven by Playwright against a real callwatch on 127.0.0.1.

The server is the service engineer's ``tests.service.conftest`` setup (their settings, real uvicorn, free port)
with a stand-in recogniser that answers each speech segment with the shared call's
labelled words, so transcripts, cue phrases and the review's transcript exist without loading Whisper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
import uvicorn

from service.core.settings import Settings
from service.web.app import create_app
from tests.service.conftest import CALLS, Server, make_settings

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 120_000
"""Generous: two CPU cores shared with other work; every wait is for a condition, never a fixed time."""
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install the dev extra)"
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        return "no chromium: run scripts/browser-deps (apt-get install chromium)"
    return None


def chromium_path() -> str:
    return str(CHROMIUM) if CHROMIUM.exists() else str(shutil.which("chromium"))


class LabelledWords:
    """Answers a speech segment with the words the shared call's label file says were spoken in it."""

    def __init__(self, labels: dict[str, Any]) -> None:
        self.utterances = labels["utterances"]

    def __call__(self, call: Any, seg: Any) -> asyncio.Future[Any]:
        said = [u for u in self.utterances if u["leg"] == seg.leg
                and seg.start_s - 0.3 <= (u["start"] + u["end"]) / 2 <= seg.end_s + 0.3]
        words: list[SimpleNamespace] = []
        for u in said:
            tokens = u["text"].split()
            step = (u["end"] - u["start"]) / max(1, len(tokens))
            words += [SimpleNamespace(word=w, start=u["start"] + i * step, end=u["start"] + (i + 1) * step)
                      for i, w in enumerate(tokens)]
        text = " ".join(u["text"] for u in said)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(text=text, words=words, language="en", rejected=None))
        return done


def labels(name: str) -> dict[str, Any]:
    path = CALLS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set CALLWATCH_DATA)")
    result: dict[str, Any] = json.loads(path.read_text())
    return result


class ByCall:
    """One stand-in recogniser per call id, so two calls streaming at once each get their own words."""

    def __init__(self, by_call: dict[str, LabelledWords]) -> None:
        self.by_call = by_call

    def __call__(self, call: Any, seg: Any) -> asyncio.Future[Any] | None:
        words = self.by_call.get(call.id)
        return None if words is None else words(call, seg)


@contextlib.asynccontextmanager
async def running_with_pages(settings: Settings, submit: Any = None) -> AsyncIterator[Server]:
    """``tests.service.conftest.running`` with a transcription hook (that one takes none)."""
    config = uvicorn.Config(create_app(settings, submit=submit), host="127.0.0.1", port=0, log_level="warning",
                            ws="websockets-sansio", lifespan="on", ws_max_size=1 << 20)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(settings, port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Server]:
    """callwatch with the pages, no recogniser."""
    async with running_with_pages(make_settings(tmp_path)) as srv:
        yield srv


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=chromium_path(), headless=True,
                                           args=["--autoplay-policy=no-user-gesture-required"])
        yield chromium
        await chromium.close()


PAGE_ERRORS: dict[Page, list[str]] = {}
"""Script errors and console errors seen on each page; a test ends by checking there were none."""


async def signed_in(browser: Browser, srv: Server, path: str, token: str, width: int = 1400, height: int = 900,
                    *, setup: Callable[[BrowserContext], Awaitable[None]] | None = None) -> Page:
    """``path`` opened and signed in with ``token``; ``setup`` prepares the context first (routes, say)."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    if setup is not None:
        await setup(context)
    page = await context.new_page()
    errors = PAGE_ERRORS.setdefault(page, [])
    page.on("console", lambda m: errors.append(f"{path} console: {m.text}")
            if m.type == "error" and m.text.startswith("callwatch") else None)
    page.on("pageerror", lambda e: errors.append(f"{path} uncaught: {e}"))
    await page.goto(f"{srv.http}{path}")
    await page.fill("#token", token)
    await page.click("[data-testid=signin-submit]")
    return page


async def until(page: Page, expression: str, above: float, timeout_s: float = WAIT_MS / 1000) -> None:
    """Wait for a page value to pass a bar (wait_for_function would need 'unsafe-eval', which the CSP forbids)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (value := await page.evaluate(f"() => {expression}")) is None or value <= above:
        assert loop.time() < deadline, f"{expression} = {value}, never above {above}"
        await asyncio.sleep(0.2)
