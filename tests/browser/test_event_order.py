"""The agent's screen and the board against a stand-in event stream: what they show when events come in an
order the live pipeline does not usually produce. The pages, their modules and the REST API are real; only the
page's event socket is answered by the test (Playwright's websocket routing), so each event arrives exactly
when the test sends it.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from tests.browser.conftest import PAGE_ERRORS, WAIT_MS, browser_missing, signed_in
from tests.service.conftest import Server

missing = browser_missing()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing is not None, reason=missing or "")]

if missing is None:
    from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect


def alert(call_id: str, n: int, t: float, rule: str = "interruption") -> dict[str, Any]:
    return {"type": "alert", "call_id": call_id, "id": f"{call_id}-{n}", "rule": rule, "severity": "warning",
            "t": t, "message": f"{rule} message {n}", "tip": "a tip"}


def call_object(call_id: str, status: str = "live", duration: float = 0.0) -> dict[str, Any]:
    return {"id": call_id, "agent_id": "ann", "status": status, "duration": duration, "flagged": False,
            "escalation_score": 0, "counts": {"alert": 1}}


class Stream:
    """The page's event socket (``/v1/ws/agent``, ``/v1/ws/supervisor``), answered here: ``send`` delivers one
    event to the page."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.socket: asyncio.Future[WebSocketRoute] = asyncio.get_running_loop().create_future()

    async def route(self, context: BrowserContext) -> None:
        def connected(ws: WebSocketRoute) -> None:
            if not self.socket.done():
                self.socket.set_result(ws)

        await context.route_web_socket(re.compile(re.escape(self.path)), connected)

    async def send(self, ev: dict[str, Any]) -> None:
        (await asyncio.wait_for(self.socket, WAIT_MS / 1000)).send(json.dumps(ev))


async def agent_screen(browser: Browser, site: Server) -> tuple[Page, Stream]:
    stream = Stream("/v1/ws/agent")
    page = await signed_in(browser, site, "/agent", site.token("agent", "ann"), setup=stream.route)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    await expect(page.get_by_test_id("idle")).to_be_visible()
    return page, stream


async def test_an_alert_that_overtakes_its_call_object_is_shown(site: Server, browser: Browser) -> None:
    """Bug 2 of issue 14: the first alert of a call came before the call_updated that told the screen of the
    call, and the screen dropped it."""
    page, stream = await agent_screen(browser, site)
    await stream.send(alert("c9", 1, 5.0))
    cards = page.get_by_test_id("alert")
    await expect(cards).to_have_count(1, timeout=WAIT_MS)
    await expect(cards.first).to_contain_text("interruption message 1")
    await expect(page.locator("#call-id")).to_have_text("Call c9")
    await expect(page.locator("#on-call")).to_be_visible()

    # Its call object follows: the same call, the alert kept.
    await stream.send({"type": "call_updated", "call_id": "c9", "t": 5.0, "call": call_object("c9", duration=5.0)})
    await stream.send(alert("c9", 2, 6.0, "dead_air"))
    await expect(cards).to_have_count(2, timeout=WAIT_MS)
    await expect(page.locator("#call-id")).to_have_text("Call c9")

    # Once it has ended, a straggler of that call does not bring it back.
    await stream.send({"type": "call_ended", "call_id": "c9", "t": 7.0,
                       "call": call_object("c9", "ended", 7.0)})
    await expect(page.get_by_test_id("idle")).to_be_visible(timeout=WAIT_MS)
    await stream.send(alert("c9", 3, 7.5, "monologue"))
    await stream.send(alert("c10", 1, 1.0))  # the agent's next call, met by its alert first as well
    await expect(page.locator("#call-id")).to_have_text("Call c10", timeout=WAIT_MS)
    await expect(cards).to_have_count(1)
    await expect(cards.first).to_contain_text("interruption message 1")
    assert not PAGE_ERRORS[page]


async def test_a_transcript_turn_is_shown_in_spoken_order(site: Server, browser: Browser) -> None:
    page, stream = await agent_screen(browser, site)
    await stream.send({"type": "call_started", "call_id": "c1", "t": 0.0, "call": call_object("c1")})
    await expect(page.locator("#call-id")).to_have_text("Call c1", timeout=WAIT_MS)
    for leg, start, text in (("customer", 4.0, "second"), ("agent", 1.0, "first"), ("customer", 9.0, "third")):
        await stream.send({"type": "utterance", "call_id": "c1", "leg": leg, "start": start, "end": start + 1,
                           "t": start + 1, "text": text})
    turns = page.locator("#transcript .turn")
    await expect(turns).to_have_count(3, timeout=WAIT_MS)
    assert await turns.locator(".turn-text").all_text_contents() == ["first", "second", "third"]
    assert not PAGE_ERRORS[page]


async def test_a_retracted_alert_leaves_the_count_of_its_own_severity(site: Server, browser: Browser) -> None:
    """A retraction carries no severity: the board takes it from the alert it retracts (it used to guess
    "warning", so a retracted critical alert stayed on the board as critical)."""
    stream = Stream("/v1/ws/supervisor")
    page = await signed_in(browser, site, "/supervisor", site.token("supervisor"), setup=stream.route)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    await stream.send({"type": "call_started", "call_id": "c1", "t": 0.0, "call": call_object("c1")})
    row = page.locator("[data-testid=call-row][data-call-id=c1]")
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await stream.send({**alert("c1", 1, 3.0), "severity": "critical"})
    await stream.send(alert("c1", 2, 4.0, "dead_air"))
    chips = row.locator(".chip[data-severity]")
    await expect(chips).to_have_text(["1 critical", "1 warning"], timeout=WAIT_MS)
    await stream.send({"type": "alert_retracted", "call_id": "c1", "id": "c1-1", "rule": "interruption",
                       "reason": "backchannel", "t": 5.0})
    await expect(chips).to_have_text(["1 warning"], timeout=WAIT_MS)
    assert not PAGE_ERRORS[page]
