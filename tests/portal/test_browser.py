"""A real browser (Playwright + Debian chromium) against a real gateway: sign in as a
demo user through the portal, see the launcher, sign out."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events
from tests.oauth2.live import live_gateway

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(settings: Settings) -> Iterator[tuple[str, Services]]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    with live_gateway(settings) as g:
        yield g


def test_sign_in_see_launcher_sign_out(gateway: tuple[str, Services]) -> None:
    from playwright.sync_api import sync_playwright

    issuer, services = gateway
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(locale="zh-CN")
            page.goto(f"{issuer}/")
            assert "/portal/login" in page.url
            assert page.locator("h1").inner_text() == "登录"
            page.fill("#username", "li.si")
            page.fill("#password", "wrong-password-1")
            page.click("#submit")
            assert "用户名或密码错误" in page.locator("#error").inner_text()
            page.fill("#username", "li.si")
            page.fill("#password", DEMO_PASSWORD)
            page.click("#submit")
            page.wait_for_url(f"{issuer}/portal")
            launcher = page.locator("#launcher")
            assert "公务用车管理平台" in launcher.inner_text()
            assert "办公用房管理系统" in launcher.inner_text()
            cookie = next(c for c in page.context.cookies() if c["name"] == "gg_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
            page.click("#logout")
            assert page.locator("#title").inner_text() == "您已安全退出"
            page.goto(f"{issuer}/portal")
            assert "/portal/login" in page.url
        finally:
            browser.close()
    outcomes = [(e["event_type"], e["outcome"]) for e in audit_events(services)]
    assert ("login", "failure") in outcomes and ("login", "success") in outcomes
    assert ("logout", "success") in outcomes
