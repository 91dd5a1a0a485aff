"""A real browser (Playwright + Debian chromium) against a real gateway: sign in as a
demo user through the portal, see the launcher, sign out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, sign_in
from tests.oauth2.helpers import audit_events

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(settings: Settings) -> Iterator[tuple[str, Services]]:
    with browser_gateway(settings) as world:
        yield world


def test_sign_in_see_launcher_sign_out(gateway: tuple[str, Services], browser: Any) -> None:
    issuer, services = gateway
    page = browser.new_page(locale="zh-CN")
    try:
        page.goto(f"{issuer}/")
        assert "/portal/login" in page.url
        assert page.locator("h1").inner_text() == "登录"
        sign_in(page, "li.si", "wrong-password-1")
        assert "用户名或密码错误" in page.locator("#error").inner_text()
        sign_in(page, "li.si")
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
        page.context.close()
    outcomes = [(e["event_type"], e["outcome"]) for e in audit_events(services)]
    assert ("login", "failure") in outcomes and ("login", "success") in outcomes
    assert ("logout", "success") in outcomes
