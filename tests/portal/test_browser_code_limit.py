"""The codes' lock and the owner's notice in Chromium against a real gateway: wrong
codes in a row lock the codes (the sign-in page says so, in Chinese), the right code is
then refused too, an administrator's unlock lets the owner in, and the home page tells
the owner what happened until they acknowledge it (docs/webauthn.md, "Wrong codes in a
row"; docs/sso.md, "Security events")."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from gateway.idp import totp
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import sign_in
from tests.gateway.test_cli import here
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events
from tests.oauth2.live import live_gateway
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow
LIMIT = 3  # below the account lock's 5: the codes' lock comes first


@pytest.fixture
def gateway(settings: Settings, fast_hashes: None  # noqa: F811
            ) -> Iterator[tuple[str, Services]]:
    with live_gateway(dataclasses.replace(settings, mfa_failure_limit=LIMIT)) as world:
        yield world


def to_code_step(page: Any, issuer: str, username: str) -> None:
    page.goto(f"{issuer}/portal")
    sign_in(page, username)
    page.wait_for_url(re.compile(r".*/portal/login/totp.*"))


def send(page: Any, code: str) -> None:
    page.fill("#code", code)
    page.click("#submit")
    page.wait_for_load_state()


def test_the_codes_lock_and_the_owners_notice(gateway: tuple[str, Services],
                                             browser: Any) -> None:
    issuer, services = gateway
    secret = pyotp.random_base32()
    services.org.add_user("gao.lan", "高岚", "jgswj", ["staff"], DEMO_PASSWORD,
                          must_change=False)
    totp.store(services, services.org.get_user("gao.lan"), secret)
    good = {pyotp.TOTP(secret).at(time.time() + 30 * d) for d in range(-2, 4)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in good)

    page = browser.new_context(locale="zh-CN").new_page()
    to_code_step(page, issuer, "gao.lan")
    for _ in range(LIMIT - 1):
        send(page, wrong)
        assert page.locator("#error").inner_text() == "动态口令错误或已使用。"
    send(page, wrong)
    error = page.locator("#error").inner_text()
    assert error.startswith("连续输错动态口令或恢复码的次数过多") and "系统管理员解锁" in error
    assert page.locator("#username").is_visible()  # back at the sign-in: the session ended

    # the right code, on a new sign-in: said up front, and refused unchecked
    to_code_step(page, issuer, "gao.lan")
    assert page.locator("#error").inner_text().startswith("连续输错动态口令")
    send(page, pyotp.TOTP(secret).now())
    assert page.locator("#username").is_visible()
    assert page.url.rstrip("/").endswith("/portal/login/totp")  # no home page
    assert [e["actor_user"] for e in audit_events(services, "mfa_lockout")] == ["gao.lan"]

    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url}
    assert here(env, "user", "unlock", "gao.lan").returncode == 0
    to_code_step(page, issuer, "gao.lan")
    send(page, pyotp.TOTP(secret).at(time.time() + 30))  # the next step: not a replay
    page.wait_for_url(f"{issuer}/portal")
    notice = page.locator("#security-notice")
    assert notice.is_visible()
    text = notice.inner_text()
    assert "动态口令和恢复码因连续输错被锁定" in text and "解锁了账号" in text
    assert "管理员 os:" in text
    page.click("#security-seen")
    page.wait_for_url(f"{issuer}/portal")
    assert page.locator("#security-notice").count() == 0
    page.goto(f"{issuer}/portal/account#security")
    kinds = page.locator("#security-table tr[data-kind]").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")
    assert kinds[:2] == ["unlocked", "codes_locked"]
