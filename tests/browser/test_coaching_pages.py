"""Issue 16's pages in Debian's chromium against a real callwatch: call search opening a hit at its moment, the
scorecard plots and the calls behind a point, the review queue, a coaching note at a moment and the agent's
acknowledgement, an incident filed from the review page and exported, and what an agent may not see.

The calls are written straight into the server's store (as the writer would when they end), so every page has
ended calls, transcripts, alerts, teams and a recording without streaming audio through the pipeline.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from service.storage.backends import open_store
from service.storage.coaching import CoachingStore
from tests.browser.conftest import PAGE_ERRORS, WAIT_MS, browser_missing, running_with_pages, signed_in, until
from tests.service.conftest import Server, make_settings

missing = browser_missing()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing is not None, reason=missing or "")]

if missing is None:
    from playwright.async_api import Browser, Page, expect

DAY = 86400.0


def ev(kind: str, t: float, /, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields, "t": t}


def line(leg: str, start: float, text: str) -> dict[str, Any]:
    return ev("utterance", start + 2.0, leg=leg, start=start, end=start + 2.0, text=text, language="en")


def talk(agent_s: float, customer_s: float, interruptions: int) -> list[dict[str, Any]]:
    """Behaviour numbers for the scorecard: talk time and the agent's interruptions of the customer."""
    return [ev("speech_end", 1.0, leg="agent", start=0.0, end=agent_s),
            ev("speech_end", 1.0, leg="customer", start=0.0, end=customer_s),
            *[ev("interruption", 20.0 + i, by="agent", of="customer", start=19.0 + i, overlap=0.5, kind="cutoff",
                 confidence=1.0) for i in range(interruptions)]]


def add_call(store: CoachingStore, call_id: str, agent: str, started: float, events: list[dict[str, Any]], *,
             score: int = 0, flagged: bool = False, duration: float = 60.0) -> None:
    row: dict[str, Any] = {"id": call_id, "agent_id": agent, "source": "native", "language": "en",
                           "started": started, "ended": None, "status": "live", "duration": 0.0,
                           "escalation_score": 0, "flagged": False, "flags": [], "counts": {}, "recording": None}
    store.write([("call", row)])
    own = [{**e, "call_id": call_id, **({"id": f"{call_id}/{e['id']}"} if "id" in e else {})} for e in events]
    store.write([("events", (call_id, 0, own))])
    store.write([("call", {**row, "status": "ended", "ended": started + duration, "duration": duration,
                           "escalation_score": score, "flagged": flagged})])


def seed(srv: Server, tmp_path: Path) -> None:
    """Two agents of team north. ann (a1): three calls, two flagged, one with a recording; bob (a2): two calls."""
    store = open_store(srv.settings.database_url)
    assert isinstance(store, CoachingStore)
    now = time.time()
    try:
        store.set_team("ann", "north")
        store.set_team("bob", "north")
        add_call(store, "ann-1", "ann", now - 2 * DAY, score=70, flagged=True, events=[
            line("agent", 2.0, "Thank you for calling, how can I help"),
            line("customer", 8.0, "My internet has been down all week"),
            line("agent", 14.0, "Let me check the line for you"),
            line("customer", 30.0, "I want to speak to your manager right now"),
            line("agent", 40.0, "I understand, I am sorry about this"),
            ev("alert", 31.0, id="1", rule="manager_request", severity="warning", message="Manager requested"),
            *talk(30.0, 25.0, 2)])
        add_call(store, "ann-2", "ann", now - 9 * DAY, score=20, events=[
            line("customer", 5.0, "My card was charged twice"), *talk(20.0, 20.0, 0)])
        add_call(store, "ann-3", "ann", now - 1 * DAY, score=55, flagged=True, events=[
            line("customer", 12.0, "Please cancel my subscription"), *talk(25.0, 20.0, 1)])
        add_call(store, "bob-1", "bob", now - 3 * DAY, score=80, flagged=True, events=[
            line("customer", 20.0, "Get me your manager about the bill, secret-bob-words"), *talk(40.0, 10.0, 4)])
        add_call(store, "bob-2", "bob", now - 10 * DAY, events=[
            line("customer", 3.0, "bob's private complaint about billing"), *talk(10.0, 30.0, 0)])
        wav = tmp_path / "ann-1.wav"
        sf.write(wav, np.zeros((8000 * 60, 2), dtype=np.int16), 8000, subtype="PCM_16")
        store.write([("recording", ("ann-1", str(wav)))])
    finally:
        store.close()


@pytest.fixture
async def coaching_site(tmp_path: Path) -> AsyncIterator[Server]:
    async with running_with_pages(make_settings(tmp_path)) as srv:
        seed(srv, tmp_path)
        yield srv


def no_errors(*pages: Page) -> None:
    for page in pages:
        assert not PAGE_ERRORS[page], PAGE_ERRORS[page]


async def test_search_and_open_a_hit_at_its_moment(coaching_site: Server, browser: Browser, artifacts: Path) -> None:
    page = await signed_in(browser, coaching_site, "/search", coaching_site.token("supervisor"))
    hits = page.locator("[data-testid=hit]")
    await expect(hits).to_have_count(5, timeout=WAIT_MS)  # no words: every ended call, newest first
    assert await hits.first.get_attribute("data-call-id") == "ann-3"
    await page.select_option("#f-sort", "score")
    await page.click("[data-testid=search-submit]")
    await expect(hits.first).to_have_attribute("data-call-id", "bob-1")
    await page.fill("#q", "managers")
    await page.click("[data-testid=search-submit]")
    await expect(hits).to_have_count(2)
    await expect(hits.first.locator("[data-testid=hit-line]")).to_contain_text("your manager")
    await page.fill("#f-agent", "ann")
    await page.select_option("#f-flagged", "true")
    await page.click("[data-testid=search-submit]")
    await expect(hits).to_have_count(1)
    assert "agent_id=ann" in page.url  # the search is kept in the address bar
    await page.screenshot(path=str(artifacts / "search.png"), animations="disabled")
    await hits.first.locator("[data-testid=hit-line]").click()
    await page.wait_for_url("**/calls/ann-1?t=30")
    current = page.locator("#review-transcript .line[aria-current=true]")
    await expect(current).to_contain_text("speak to your manager", timeout=WAIT_MS)
    await until(page, "document.getElementById('audio').currentTime", 29.0)  # the recording is there too
    await expect(page.locator(".topnav a[href='/queue']")).to_be_visible()
    no_errors(page)


async def test_scorecard_plots_and_the_calls_behind_a_point(coaching_site: Server, browser: Browser,
                                                           artifacts: Path) -> None:
    page = await signed_in(browser, coaching_site, "/scorecard?agent=ann&period=day", coaching_site.token("supervisor"))
    chart = page.locator("[data-testid=metric-chart][data-metric=interruptions_per_10min]")
    await expect(chart.locator("[data-testid=point]")).to_have_count(3, timeout=WAIT_MS)
    assert await chart.locator(".median-dot").count() == 3  # the team's median beside each point
    await expect(page.locator("#card-title")).to_contain_text("ann")
    await page.screenshot(path=str(artifacts / "scorecard.png"), animations="disabled", full_page=True)
    first = chart.locator("[data-testid=point]").first  # the oldest day: ann-2
    await first.click()
    calls = page.locator("[data-testid=point-calls]")
    await expect(calls).to_be_visible()
    await expect(calls.locator("[data-testid=point-call]")).to_have_count(1)
    await expect(calls).to_contain_text("score 20")  # the call's facts, from a search over the period
    await calls.locator("[data-testid=point-call]").click()
    await page.wait_for_url("**/calls/ann-2")
    await expect(page.locator("#call-title")).to_contain_text("ann-2", timeout=WAIT_MS)

    team = await signed_in(browser, coaching_site, "/scorecard?team=north", coaching_site.token("supervisor"))
    await expect(team.locator("#legend")).to_contain_text("bob", timeout=WAIT_MS)
    await expect(team.locator("#team-agents tbody tr")).to_have_count(2)
    ratio = team.locator("[data-testid=metric-chart][data-metric=talk_listen_ratio] [data-testid=point]")
    assert await ratio.count() == 4
    await team.screenshot(path=str(artifacts / "scorecard-team.png"), animations="disabled", full_page=True)
    no_errors(page, team)


async def test_queue_state_change(coaching_site: Server, browser: Browser, artifacts: Path) -> None:
    page = await signed_in(browser, coaching_site, "/queue", coaching_site.token("supervisor"))
    rows = page.locator("[data-testid=queue-row]")
    await expect(rows).to_have_count(3, timeout=WAIT_MS)
    await expect(page.locator("[data-count=new]")).to_have_text("3")
    await page.screenshot(path=str(artifacts / "queue.png"), animations="disabled")
    bob = page.locator("[data-testid=queue-row][data-call-id=bob-1]")
    await bob.locator("[data-testid=review-state]").select_option("reviewed")
    await expect(rows).to_have_count(2)
    await expect(page.locator("[data-count=reviewed]")).to_have_text("1")
    await page.locator("#tabs button[data-state=reviewed]").click()
    await expect(rows).to_have_count(1)
    await rows.first.locator("[data-testid=review-state]").select_option("coached")
    await expect(rows).to_have_count(0)
    await page.locator("#tabs button[data-state=all]").click()
    await expect(bob).to_have_attribute("data-review", "coached")
    no_errors(page)


async def test_coaching_note_at_a_moment_and_the_agents_acknowledgement(coaching_site: Server, browser: Browser,
                                                                       artifacts: Path) -> None:
    sup = await signed_in(browser, coaching_site, "/calls/ann-1?t=30", coaching_site.token("supervisor"))
    await expect(sup.locator("#note-moment")).to_have_text("0:30", timeout=WAIT_MS)
    await sup.fill("#note-text", "Offer the callback before they ask for a manager.")
    await sup.click("[data-testid=save-note]")
    note = sup.locator("[data-testid=note]")
    await expect(note).to_have_count(1)
    await expect(note.locator("[data-testid=note-moment]")).to_have_text("at 0:30")

    agent = await signed_in(browser, coaching_site, "/notes", coaching_site.token("agent", "ann"))
    mine = agent.locator("[data-testid=coaching-note]")
    await expect(mine).to_have_count(1, timeout=WAIT_MS)
    await expect(mine.locator("a")).to_have_attribute("href", "/calls/ann-1?t=30")
    await expect(agent.locator(".topnav a[href='/queue']")).to_be_hidden()  # not an agent's page
    await mine.locator("[data-testid=acknowledge]").click()
    await expect(mine.locator("[data-testid=acknowledged]")).to_be_visible()
    await agent.screenshot(path=str(artifacts / "notes-agent.png"), animations="disabled")
    await agent.select_option("#n-ack", "false")
    await agent.locator("#notes-form button[type=submit]").click()
    await expect(mine).to_have_count(0)

    await sup.goto(f"{coaching_site.http}/notes")
    await expect(sup.locator("[data-testid=coaching-note] [data-testid=acknowledged]")).to_be_visible(timeout=WAIT_MS)
    no_errors(sup, agent)


async def test_the_review_page_shows_and_changes_the_review_state(coaching_site: Server, browser: Browser,
                                                                  artifacts: Path) -> None:
    page = await signed_in(browser, coaching_site, "/calls/ann-3", coaching_site.token("supervisor"))
    state = page.locator("[data-testid=call-review]")
    await expect(state).to_have_value("new", timeout=WAIT_MS)
    await expect(state).to_be_enabled()
    await state.select_option("coached")
    await expect(page.locator("#review-status")).to_have_text("Coached.")
    await expect(page.locator("#review-box")).to_have_attribute("data-review", "coached")
    await page.screenshot(path=str(artifacts / "review-state.png"), animations="disabled")
    page.set_default_timeout(WAIT_MS)
    await page.goto(f"{coaching_site.http}/queue")  # the queue agrees: ann-3 has left the new tab
    await expect(page.locator("[data-testid=queue-row]")).to_have_count(2)  # ann-1 and bob-1 are still new
    await page.locator("#tabs button[data-state=coached]").click()
    await expect(page.locator("[data-testid=queue-row][data-call-id=ann-3]")).to_be_visible()

    agent = await signed_in(browser, coaching_site, "/calls/ann-3", coaching_site.token("agent", "ann"))
    await expect(agent.locator("[data-testid=call-review]")).to_have_value("coached", timeout=WAIT_MS)
    await expect(agent.locator("[data-testid=call-review]")).to_be_disabled()  # an agent sees it, no more
    no_errors(page, agent)


async def test_file_an_incident_and_export_it(coaching_site: Server, browser: Browser, artifacts: Path) -> None:
    page = await signed_in(browser, coaching_site, "/calls/bob-1?t=20", coaching_site.token("supervisor"))
    await page.locator("[data-testid=incident-open]").click()
    await page.fill("#incident-category", "abuse")
    await page.select_option("#incident-severity", "high")
    await page.fill("#incident-what", "The customer swore at the agent, twice.")
    await page.fill("#incident-outcome", "Call ended politely by the agent.")
    await page.fill("#incident-follow-up", "=cmd| flag the account")
    await page.click("[data-testid=file-incident]")
    await expect(page.locator("[data-testid=incident]")).to_contain_text("swore", timeout=WAIT_MS)
    await page.screenshot(path=str(artifacts / "review-incident.png"), animations="disabled", full_page=True)

    await page.goto(f"{coaching_site.http}/incidents")
    rows = page.locator("[data-testid=incident-row]")
    await expect(rows).to_have_count(1, timeout=WAIT_MS)
    await expect(rows.first).to_contain_text("bob-1 at 0:20")
    async with page.expect_download() as info:
        await page.click("[data-testid=export-csv]")
    download = await info.value
    saved = artifacts / "incidents.csv"
    await download.save_as(saved)
    exported = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert len(exported) == 1 and exported[0]["call_id"] == "bob-1" and exported[0]["severity"] == "high"
    assert exported[0]["follow_up"].startswith("'=")  # no formula runs in a spreadsheet
    await page.emulate_media(media="print")
    await expect(page.locator("#incidents-form")).to_be_hidden()
    await expect(page.locator("#print-head")).to_be_visible()
    await expect(rows.first).to_be_visible()
    await page.pdf(path=str(artifacts / "incidents.pdf"))
    no_errors(page)


async def test_an_agent_sees_only_their_own(coaching_site: Server, browser: Browser) -> None:
    ann = coaching_site.token("agent", "ann")
    async with httpx.AsyncClient(base_url=coaching_site.http, headers=coaching_site.bearer("supervisor")) as client:
        for call_id, t, text in (("ann-1", 40.0, "Good apology here."), ("bob-1", 20.0, "bob's own coaching")):
            r = await client.post("/v1/notes", json={"call_id": call_id, "t": t, "text": text})
            assert r.status_code == 201
    notes = await signed_in(browser, coaching_site, "/notes?agent_id=bob", ann)
    await expect(notes.locator("[data-testid=coaching-note]")).to_have_count(1, timeout=WAIT_MS)
    await expect(notes.locator("[data-testid=coaching-note]")).to_contain_text("Good apology")

    # The review page opens at #t= too, and the agent acknowledges the note there.
    own = await signed_in(browser, coaching_site, "/calls/ann-1#t=40", ann)
    await expect(own.locator("#review-transcript .line[aria-current=true]")).to_contain_text("I am sorry",
                                                                                        timeout=WAIT_MS)
    await own.locator("[data-testid=note] [data-testid=acknowledge]").click()
    await expect(own.locator("[data-testid=note] [data-testid=acknowledged]")).to_be_visible()
    await expect(own.locator("#incidents-panel")).to_be_hidden()

    page = await signed_in(browser, coaching_site, "/search?agent_id=bob", ann)
    hits = page.locator("[data-testid=hit]")
    await expect(hits).to_have_count(3, timeout=WAIT_MS)  # ann's, whatever the address asked for
    shown = sorted([await h.get_attribute("data-call-id") or "" for h in await hits.all()])
    assert shown == ["ann-1", "ann-2", "ann-3"]
    await expect(page.locator("#f-agent")).to_be_hidden()
    await page.fill("#q", "bill")
    await page.click("[data-testid=search-submit]")
    await expect(page.locator("#hits-empty")).to_be_visible()
    assert "secret-bob-words" not in await page.content()

    card = await signed_in(browser, coaching_site, "/scorecard?agent=bob&team=north", ann)
    await expect(card.locator("#card-title")).to_contain_text("Scorecard of ann", timeout=WAIT_MS)
    await expect(card.locator("#legend")).not_to_contain_text("bob")

    review = await signed_in(browser, coaching_site, "/calls/bob-1", ann)
    await expect(review.locator("#banner")).to_contain_text("no call bob-1", timeout=WAIT_MS)
    assert "secret-bob-words" not in await review.content()

    queue = await signed_in(browser, coaching_site, "/queue", ann)
    await expect(queue.locator("#signin-error")).to_contain_text("agent token")
    incidents = await signed_in(browser, coaching_site, "/incidents", ann)
    await expect(incidents.locator("#signin-error")).to_contain_text("agent token")
    assert "bob's own coaching" not in await notes.content()
    no_errors(notes, own, page, card, review)
