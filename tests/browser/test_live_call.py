"""The three pages in a real browser while shared labelled calls stream in through /v1/ingest/native.

One agent (agent-1) takes the interrupting-agent call while agent-2 takes the escalation call, both faster
than real time. The agent's screen must show the interruption tip, the board must list both calls and flag
the escalation, listen-in must feed samples into the page's audio graph, and the review must plot the voices
and keep a supervisor's note. Screenshots of each page go to tests/browser/artifacts/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from tests.browser.conftest import (
    PAGE_ERRORS,
    WAIT_MS,
    ByCall,
    LabelledWords,
    browser_missing,
    labels,
    running_with_pages,
    signed_in,
    until,
)
from tests.service.conftest import Server, dev_call, make_settings, wait_ended

missing = browser_missing()
pytestmark = [pytest.mark.browser, pytest.mark.shared,
              pytest.mark.skipif(missing is not None, reason=missing or "")]

if missing is None:
    from playwright.async_api import Browser, Page, expect

INTERRUPTING = "dev-001-interrupting-agent"
ESCALATION = "dev-002-escalation"
SPEED = 4.0
"""Times real time: fast enough for a short test, slow enough that the calls are still live while we look."""


async def stream_call(srv: Server, name: str, call_id: str, agent_id: str, speed: float = SPEED) -> None:
    customer, agent = dev_call(name)
    step = 1600  # 0.2 s
    async with connect(f"{srv.ws}/v1/ingest/native", additional_headers=srv.bearer("ingest")) as ws:
        await ws.send(json.dumps({"type": "start", "call_id": call_id, "agent_id": agent_id, "sample_rate": 8000,
                                  "encoding": "pcm16", "channels": 2, "channel_map": ["customer", "agent"],
                                  "language": "en"}))
        assert json.loads(await ws.recv())["type"] == "started"
        for i in range(0, len(customer), step):
            await ws.send(np.stack([customer[i:i + step], agent[i:i + step]], axis=1).astype("<i2").tobytes())
            await asyncio.sleep(step / 8000 / speed)
        await ws.send(json.dumps({"type": "stop"}))


@pytest.fixture
async def live_site(tmp_path: Path) -> AsyncIterator[Server]:
    submit = ByCall({"call-interrupting": LabelledWords(labels(INTERRUPTING)),
                     "call-escalation": LabelledWords(labels(ESCALATION))})
    async with running_with_pages(make_settings(tmp_path), submit=submit) as srv:
        yield srv


async def canvas_has_ink(page: Page, selector: str) -> bool:
    inked: bool = await page.eval_on_selector(selector, """canvas => {
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
        return false;
    }""")
    return inked


async def test_agent_board_listen_in_and_review(live_site: Server, browser: Browser, artifacts: Path) -> None:
    srv = live_site
    agent = await signed_in(browser, srv, "/agent", srv.token("agent", "agent-1"))
    board = await signed_in(browser, srv, "/supervisor", srv.token("supervisor"))
    await expect(agent.get_by_test_id("idle")).to_be_visible()
    await expect(agent.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    await expect(board.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT_MS)

    streams = asyncio.gather(stream_call(srv, INTERRUPTING, "call-interrupting", "agent-1"),
                             stream_call(srv, ESCALATION, "call-escalation", "agent-2"))
    try:
        # The agent's screen: the interruption tip appears as a card, and only agent-1's call is shown.
        await expect(agent.locator("[data-testid=alert][data-rule=interruption]")).to_be_visible(timeout=WAIT_MS)
        await expect(agent.locator("#call-id")).to_have_text("Call call-interrupting")
        await expect(agent.locator("#transcript .turn").first).to_be_visible(timeout=WAIT_MS)
        await agent.screenshot(path=str(artifacts / "agent.png"), full_page=True, animations="disabled")
        await agent.set_viewport_size({"width": 420, "height": 860})
        await agent.screenshot(path=str(artifacts / "agent-narrow.png"), animations="disabled")
        await agent.set_viewport_size({"width": 1400, "height": 900})

        # The board lists both calls. Listen-in (early, while the call has long to run): samples reach the
        # page's audio graph.
        rows = board.get_by_test_id("call-row")
        await expect(board.locator("[data-testid=call-row][data-call-id=call-interrupting]")).to_be_visible(
            timeout=WAIT_MS)
        escalation = board.locator("[data-testid=call-row][data-call-id=call-escalation]")
        await escalation.get_by_test_id("listen").click()
        await expect(escalation.get_by_test_id("listen")).to_have_attribute("aria-pressed", "true")
        await until(board, "window.callwatchListen.samplesScheduled", 16000)

        # The review of a call still in progress follows it, then reloads with the recording when it ends.
        review = await signed_in(browser, srv, "/calls/call-escalation", srv.token("supervisor"))
        await expect(review.locator("#call-title")).to_contain_text("Live", timeout=WAIT_MS)

        # The escalation is flagged and sorted on top; filters narrow the board.
        await expect(escalation).to_have_attribute("data-flagged", "true", timeout=WAIT_MS)
        await expect(rows.first).to_have_attribute("data-call-id", "call-escalation")
        await board.screenshot(path=str(artifacts / "supervisor.png"), full_page=True, animations="disabled")
        await escalation.get_by_test_id("listen").click()
        await expect(board.locator("#listen-bar")).to_be_hidden()
        await expect(escalation.get_by_test_id("listen")).to_have_attribute("aria-pressed", "false")
        await board.fill("#filter-agent", "agent-1")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-call-id", "call-interrupting")
        await board.fill("#filter-agent", "")
        await board.check("#filter-flagged")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_have_attribute("data-call-id", "call-escalation")
        await board.uncheck("#filter-flagged")
        await board.set_viewport_size({"width": 420, "height": 860})
        await board.screenshot(path=str(artifacts / "supervisor-narrow.png"), full_page=True, animations="disabled")
        await board.set_viewport_size({"width": 1400, "height": 900})
        await streams
    finally:
        if not streams.done():
            streams.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streams
    await wait_ended(srv, "call-escalation")
    await wait_ended(srv, "call-interrupting")

    # Between calls the agent's screen says so.
    await expect(agent.get_by_test_id("idle")).to_be_visible(timeout=WAIT_MS)
    await agent.screenshot(path=str(artifacts / "agent-idle.png"), animations="disabled")

    # The review: recording with alert markers, plots drawn, transcript in sync, a note saved and read back.
    await expect(review.locator("#call-title")).to_contain_text("Ended", timeout=WAIT_MS)
    await expect(review.locator("#audio")).to_have_attribute("src", re.compile("^blob:"), timeout=WAIT_MS)
    await expect(review.locator("#timeline .marker").first).to_be_visible()
    await expect(review.locator("#plot-loudness[data-points]")).to_be_attached(timeout=WAIT_MS)
    assert await canvas_has_ink(review, "#plot-loudness")
    assert await canvas_has_ink(review, "#plot-pitch")
    assert int(await review.locator("#plot-loudness").get_attribute("data-points") or 0) > 50
    line = review.locator("#review-transcript .line").nth(4)
    await line.click()
    await expect(line).to_have_attribute("aria-current", "true")
    await expect(review.locator("#review-alerts [data-testid=alert]").first).to_be_visible()
    await review.fill("#note-author", "Dana")
    await review.fill("#note-text", "Customer escalated after the second transfer; coach on acknowledging first.")
    await review.get_by_test_id("save-note").click()
    await expect(review.get_by_test_id("note")).to_contain_text("coach on acknowledging first")
    await review.screenshot(path=str(artifacts / "review.png"), full_page=True, animations="disabled")
    async with review.expect_download() as download_info:
        await review.click("[data-export='events.csv']")
    download = await download_info.value
    assert download.suggested_filename == "callwatch-call-escalation-events.csv"
    csv_text = await asyncio.to_thread(Path(await download.path()).read_text)
    assert csv_text.startswith("t,type,leg,") and ",alert," in csv_text
    await review.emulate_media(color_scheme="dark")
    await review.screenshot(path=str(artifacts / "review-dark.png"), full_page=True, animations="disabled")
    async with httpx.AsyncClient(base_url=srv.http, headers=srv.bearer("supervisor")) as client:
        notes = (await client.get("/v1/calls/call-escalation")).json()["notes"]
    assert [n["author"] for n in notes] == ["Dana"]
    assert "acknowledging first" in notes[0]["text"]
    assert not [e for page in (agent, board, review) for e in PAGE_ERRORS[page]]
