"""Signing in, and what each page says when the server refuses: clear words, never a blank screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.core import auth
from tests.browser.conftest import PAGE_ERRORS, WAIT_MS, browser_missing, signed_in
from tests.service.conftest import Server

missing = browser_missing()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing is not None, reason=missing or "")]

if missing is None:
    from playwright.async_api import Browser, expect


async def test_keyboard_sign_in_and_out(site: Server, browser: Browser, artifacts: Path) -> None:
    page = await (await browser.new_context(viewport={"width": 1000, "height": 700})).new_page()
    await page.goto(f"{site.http}/supervisor")
    await expect(page.locator("#token")).to_be_focused()
    await page.keyboard.type("not a token")
    await page.keyboard.press("Enter")
    await expect(page.locator("#signin-error")).to_contain_text("does not look like a callwatch token")
    await page.screenshot(path=str(artifacts / "signin.png"), animations="disabled")
    await page.fill("#token", site.token("supervisor"))
    await page.keyboard.press("Enter")
    await expect(page.locator("#board-empty")).to_be_visible()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=WAIT_MS)
    await page.screenshot(path=str(artifacts / "supervisor-empty.png"), animations="disabled")
    await page.reload()  # the token survives a reload of the tab
    await expect(page.locator("#board-empty")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#token")).to_be_visible()


async def test_a_token_for_another_role_is_explained(site: Server, browser: Browser) -> None:
    page = await signed_in(browser, site, "/supervisor", site.token("agent", "ann"))
    await expect(page.locator("#signin-error")).to_contain_text("agent token")
    await expect(page.locator("#main")).to_be_hidden()
    page = await signed_in(browser, site, "/agent", site.token("ingest"))
    await expect(page.locator("#signin-error")).to_contain_text("ingest token")


async def test_a_token_the_server_refuses_shows_why(site: Server, browser: Browser) -> None:
    forged = auth.issue("some other secret", "supervisor")
    page = await signed_in(browser, site, "/supervisor", forged)
    await expect(page.locator("#banner")).to_contain_text("bad token signature", timeout=WAIT_MS)
    page = await signed_in(browser, site, "/agent", auth.issue("some other secret", "agent", "ann"))
    await expect(page.locator("#banner")).to_contain_text("refused", timeout=WAIT_MS)


async def test_review_of_a_call_that_is_not_yours(site: Server, browser: Browser) -> None:
    page = await signed_in(browser, site, "/calls/someone-elses-call", site.token("agent", "ann"))
    await expect(page.locator("#banner")).to_contain_text("no call someone-elses-call", timeout=WAIT_MS)
    assert not PAGE_ERRORS[page]


async def urls_requested(browser: Browser, site: Server, path: str, token: str) -> list[str]:
    context = await browser.new_context()
    page = await context.new_page()
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    await page.goto(f"{site.http}{path}")
    await page.fill("#token", token)
    await page.keyboard.press("Enter")
    await expect(page.locator("#signin")).to_be_hidden()
    await page.wait_for_load_state("networkidle")
    await context.close()
    return urls


async def test_everything_loads_from_callwatch_itself(site: Server, browser: Browser) -> None:
    own = (site.http, site.ws)
    for path, token in (("/agent", site.token("agent", "ann")), ("/supervisor", site.token("supervisor")),
                        ("/calls/x", site.token("supervisor"))):
        urls = await urls_requested(browser, site, path, token)
        assert urls and all(u.startswith(own) for u in urls), [u for u in urls if not u.startswith(own)]


async def test_a_link_with_the_token_signs_in_and_hides_it(site: Server, browser: Browser) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{site.http}/supervisor?token={site.token('supervisor')}")
    await expect(page.locator("#board-empty")).to_be_visible()
    assert page.url == f"{site.http}/supervisor"
