"""The pages' own modules, exercised in the browser on made-up events: alert cards, summary, CSV export.

The modules are imported by the page itself (same origin, so the CSP allows it); nothing is stubbed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import browser_missing, signed_in
from tests.service.conftest import Server

missing = browser_missing()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing is not None, reason=missing or "")]

if missing is None:
    from playwright.async_api import Browser, Page


async def agent_page(browser: Browser, site: Server) -> Page:
    page = await signed_in(browser, site, "/agent", site.token("agent", "ann"))
    await page.wait_for_selector("#idle")
    return page


async def test_alert_cards_collapse_repeats_retract_cap_and_dismiss(site: Server, browser: Browser) -> None:
    page = await agent_page(browser, site)
    state: dict[str, Any] = await page.evaluate("""async () => {
        const { AlertCards } = await import("/static/js/alerts-view.js");
        const box = document.createElement("section");
        const list = document.createElement("ol"), empty = document.createElement("p"),
              more = document.createElement("p"), dismissAll = document.createElement("button");
        box.append(list, empty, more, dismissAll);
        document.body.append(box);
        const cards = new AlertCards({ list, empty, more, dismissAll });
        const alert = (id, rule, t) => ({ id, rule, t, severity: "warning", message: rule + " message", tip: "a tip" });
        const shown = () => [...list.children].filter((n) => !n.hidden).map((n) => n.dataset.rule);
        const out = {};
        cards.add(alert("a1", "interruption", 10));
        cards.add(alert("a2", "dead_air", 20));
        cards.add(alert("a3", "interruption", 40));
        out.afterRepeat = shown();
        out.badge = list.querySelector("[data-rule=interruption] [data-testid=alert-count]").textContent;
        cards.retract("a1");
        out.badgeHiddenAfterRetract = list.querySelector("[data-rule=interruption] [data-testid=alert-count]").hidden;
        for (const [i, rule] of ["r1", "r2", "r3", "r4", "r5"].entries()) cards.add(alert("b" + i, rule, 50 + i));
        out.visible = shown().length;
        out.more = more.textContent;
        list.querySelector("[data-rule=r5] button.dismiss").click();
        out.afterDismiss = shown();
        cards.retract("a3");
        out.afterLastRetract = [...list.children].map((n) => n.dataset.rule);
        dismissAll.click();
        out.emptyShown = !empty.hidden && list.children.length === 0;
        return out;
    }""")
    assert state["afterRepeat"] == ["interruption", "dead_air"]
    assert state["badge"] == "×2"
    assert state["badgeHiddenAfterRetract"] is True
    assert state["visible"] == 5 and state["more"] == "2 earlier tips hidden"
    assert state["afterDismiss"] == ["r4", "r3", "r2", "r1", "interruption"]
    assert "interruption" not in state["afterLastRetract"]
    assert state["emptyShown"] is True


async def test_summary_counts_what_a_reviewer_asks_for(site: Server, browser: Browser) -> None:
    page = await agent_page(browser, site)
    summary: dict[str, Any] = await page.evaluate("""async () => {
        const { summarize } = await import("/static/js/summary.js");
        const events = [
          { type: "speech_end", leg: "agent", start: 0, end: 30, t: 30 },
          { type: "speech_end", leg: "customer", start: 30, end: 40, t: 40 },
          { type: "interruption", by: "agent", of: "customer", start: 35, t: 36 },
          { type: "interruption", by: "agent", of: "customer", start: 50, t: 51 },
          { type: "backchannel", by: "agent", start: 50, t: 52, retracts: { by: "agent", start: 50 } },
          { type: "interruption", by: "customer", of: "agent", start: 60, t: 61 },
          { type: "raised_voice", leg: "customer", start: 70, t: 72 },
          { type: "raised_voice_end", leg: "customer", start: 70, end: 85, t: 90 },
          { type: "phrase", leg: "agent", category: "empathy", text: "I understand", start: 88, t: 89 },
          { type: "phrase", leg: "agent", category: "apology", text: "sorry", start: 91, t: 92 },
          { type: "dead_air", start: 95, duration: 5, t: 100 },
          { type: "alert", id: "x-1", rule: "interruption", severity: "warning", t: 36 },
          { type: "alert", id: "x-2", rule: "interruption", severity: "warning", t: 51 },
          { type: "alert_retracted", id: "x-2", t: 52 },
        ];
        const s = summarize(events, { duration: 120 });
        return { ...s, empathy: s.empathy.map((e) => e.text), alerts: s.alerts.map((a) => a.id) };
    }""")
    assert summary["talk"] == {"agent": 30, "customer": 10}
    assert summary["interruptionsByAgent"] == 1 and summary["interruptionsByCustomer"] == 1
    assert summary["firstEscalation"] == 70 and summary["customerRaisedSeconds"] == 15
    assert summary["empathy"] == ["I understand", "sorry"]
    assert summary["deadAir"] == 1 and summary["alerts"] == ["x-1"]


async def test_csv_quotes_and_defuses_formulas(site: Server, browser: Browser) -> None:
    page = await agent_page(browser, site)
    csv: str = await page.evaluate("""async () => {
        const { toCsv } = await import("/static/js/export.js");
        return toCsv([{ t: 1.5, text: 'she said "no", twice' }, { t: -2, text: "=HYPERLINK(1)" }], ["t", "text"]);
    }""")
    assert csv == 't,text\r\n1.5,"she said ""no"", twice"\r\n-2,\'=HYPERLINK(1)\r\n'
