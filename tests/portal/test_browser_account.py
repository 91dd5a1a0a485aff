"""The account page in Chromium against a real gateway (issue #22 item 5, issue #15
item 2): a signed-in user enrols an authenticator and keeps the recovery codes,
changes the password without signing in again, a second browser (another address,
through the agency's reverse proxy) signs in with a recovery code, the first sees it
among its sessions and recent sign-ins, then signs out everywhere, which signs the
second out too.

Each page is photographed at desktop width and at 390 px under the test's output
folder (``tmp_path/screenshots``), as the newcomer's walk does."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import sign_in
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events
from tests.oauth2.live import live_gateway
from tests.portal.test_browser_newcomer import (  # noqa: F401 - fixtures
    DESKTOP,
    PHONE,
    Shots,
    shots,
)
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow
NEW_PASSWORD = "Quiet-River-Lantern-2026"
#: the second browser's address, as the reverse proxy in front of the gateway reports it
STRANGER = "203.0.113.7"


@pytest.fixture
def gateway(settings: Settings, fast_hashes: None  # noqa: F811
            ) -> Iterator[tuple[str, Services]]:
    """A gateway behind a reverse proxy on this machine (it trusts 127.0.0.1's
    X-Forwarded-For), so each browser can come from its own address."""
    with live_gateway(dataclasses.replace(settings, trusted_proxies=("127.0.0.1",))) as world:
        yield world


def new_page(browser: Any, address: str | None = None) -> Any:
    headers = {"X-Forwarded-For": address} if address else {}
    context = browser.new_context(locale="zh-CN", viewport=DESKTOP, extra_http_headers=headers)
    return context.new_page()


def enrol(page: Any, shoot: Callable[[], None] = lambda: None,
          at: float | None = None) -> tuple[str, list[str]]:
    """On an enrolment page: the app's first code, then the recovery codes (``shoot``
    photographs them) kept; (secret, codes)."""
    secret = page.locator("#secret").inner_text()
    page.fill("#code", pyotp.TOTP(secret).at(at or time.time()))
    page.click("#submit")
    page.wait_for_selector("#codes")
    codes = [c.strip() for c in page.locator("#codes code").all_inner_texts()]
    shoot()
    page.check("#saved")
    page.click("#continue")
    return secret, codes


def test_account_page_flows(gateway: tuple[str, Services], browser: Any,
                            shots: Shots) -> None:  # noqa: F811
    issuer, services = gateway
    me = new_page(browser)
    me.goto(f"{issuer}/portal")
    sign_in(me, "zhang.san")
    me.wait_for_url(f"{issuer}/portal")
    me.click("#account-link")  # from the header of every page
    me.wait_for_url(f"{issuer}/portal/account")
    assert me.locator("h1").inner_text() == "我的账号"
    shots(me, "account-zh")

    # an authenticator, and its recovery codes shown once
    me.click("#enrol-link")
    _, codes = enrol(me, lambda: shots(me, "recovery-codes-zh"))
    assert len(codes) == 10
    me.wait_for_url(f"{issuer}/portal/account")
    assert me.locator("#codes-left").inner_text() == "剩余 10 个未使用的恢复码。"

    # the password, signed in: the old change address leads here too
    me.goto(f"{issuer}/portal/login/change")
    me.wait_for_url(f"{issuer}/portal/account#password")
    me.fill("#current_password", DEMO_PASSWORD)
    me.fill("#new_password", NEW_PASSWORD)
    me.fill("#confirm_password", NEW_PASSWORD)
    me.click("#password-submit")
    me.wait_for_selector("#info")
    assert "密码已修改" in me.locator("#info").inner_text()
    shots(me, "password-changed-zh")

    # a second browser, elsewhere, has lost the device: a recovery code signs it in
    other = new_page(browser, STRANGER)
    other.goto(f"{issuer}/portal")
    sign_in(other, "zhang.san", NEW_PASSWORD)
    other.wait_for_url(re.compile(r".*/portal/login/totp.*"))
    other.click("#recovery summary")
    other.fill("#recovery_code", codes[0])
    shots(other, "totp-step-recovery-zh")
    other.click("#recovery-submit")
    other.wait_for_url(re.compile(r".*/portal/account\?done=recovery_used.*"))
    assert "还剩 9 个" in other.locator("#info").inner_text()
    assert other.locator("#totp-form").is_visible()  # the way to re-enrol, right there
    shots(other, "signed-in-with-a-recovery-code-zh")

    # the first browser sees the stranger's session and sign-in, address and time
    me.goto(f"{issuer}/portal/account")
    sessions = me.locator("#session-table tbody tr")
    assert sessions.count() == 2
    assert STRANGER in me.locator("#session-table").inner_text()
    first = me.locator("#sign-in-table tbody tr").first
    cells = first.locator("td").all_inner_texts()
    assert cells[1] == STRANGER and cells[2] == "恢复码" and cells[3] == "成功"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells[0])
    assert me.locator("#sign-in-table").inner_text().count(STRANGER) >= 2  # password too
    shots(me, "sessions-and-sign-ins-zh")
    me.set_viewport_size(PHONE)  # the tables scroll inside the card; the page does not
    assert me.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    me.set_viewport_size(DESKTOP)
    me.click("a.lang")
    assert me.locator("h1").inner_text() == "My account"
    assert "Recovery code" in me.locator("#sign-in-table").inner_text()
    shots(me, "account-en")

    # sign out everywhere: the other browser is out at its next request
    me.click("#everywhere")
    me.wait_for_selector("#title")
    assert me.locator("#title").inner_text() == "You are signed out everywhere"
    shots(me, "signed-out-everywhere-en")
    other.goto(f"{issuer}/portal/account")
    assert "/portal/login" in other.url
    me.goto(f"{issuer}/portal/account")
    assert "/portal/login" in me.url
    kinds = [(e["event_type"], e["outcome"], e["source_ip"]) for e in audit_events(services)]
    assert ("mfa_recovery", "success", STRANGER) in kinds
    assert ("password_changed", "success", "127.0.0.1") in kinds
    assert ("recovery_codes_issued", "success", "127.0.0.1") in kinds


def test_re_enrol_after_a_lost_device(gateway: tuple[str, Services], browser: Any,
                                     shots: Shots) -> None:  # noqa: F811
    """Signed in with a recovery code, the user sets up a new authenticator (the
    password is the proof) and the old one stops working."""
    issuer, services = gateway
    page = new_page(browser)
    page.goto(f"{issuer}/portal/account")
    sign_in(page, "li.si")
    page.wait_for_url(f"{issuer}/portal/account")
    page.click("#enrol-link")
    old, _ = enrol(page)
    page.wait_for_url(f"{issuer}/portal/account")

    page.fill("#totp-password", DEMO_PASSWORD)
    page.click("#totp-submit")
    page.wait_for_selector("#secret")
    shots(page, "re-enrol-zh")
    new, _ = enrol(page, at=time.time() + 30)  # this step's code is spent
    assert new != old
    page.wait_for_url(re.compile(r".*/portal/account\?done=totp.*"))
    assert "新的身份验证器已绑定" in page.locator("#info").inner_text()
    from gateway.idp import totp

    user = services.org.get_user("li.si")
    found = totp.load(services, user)
    assert found is not None and found.secret == new
