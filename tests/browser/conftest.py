"""Browser tests: Debian's chromium driven by Playwright against a real callwatch on 127.0.0.1.

The server is the service engineer's ``tests.service.conftest`` setup (their settings, real uvicorn, free port)
with the pages mounted and a stand-in recogniser that answers each speech segment with the shared call's
labelled words, so transcripts, cue phrases and the review's transcript exist without loading Whisper.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn

from service.app import create_app
from service.pages import page_routes
from service.settings import Settings
from tests.service.conftest import CALLS, Server, make_settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives a real chromium (Debian package) through Playwright")


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
    app = create_app(settings, submit=submit)
    if not any(getattr(r, "path", None) == "/agent" for r in app.routes):
        app.router.routes.extend(page_routes())  # until the app factory mounts them itself
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio",
                            lifespan="on", ws_max_size=1 << 20)
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
