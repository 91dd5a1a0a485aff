"""The audit console's reasons in Chromium (walk of 2026-12-05, third): a wrong
password typed at the real sign-in page is recorded as the gateway writes it
(``wrong password``); the auditor's Chinese page reads it (口令错误) with the stored
text as the row's hover, the record's page shows both, and the English page the
stored text alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, session_page, sign_in
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway(settings: Settings, fast_hashes: None  # noqa: F811
            ) -> Iterator[tuple[str, Services]]:
    with browser_gateway(settings) as world:
        yield world


def test_the_auditor_reads_a_sign_in_failure_in_chinese_and_its_stored_text(
        gateway: tuple[str, Services], browser: Any) -> None:
    issuer, services = gateway
    staff = browser.new_context(locale="zh-CN").new_page()
    staff.goto(f"{issuer}/portal/login")
    sign_in(staff, "li.si", "not-the-password-2026")
    assert "用户名或密码错误" in staff.locator("body").inner_text()
    staff.context.close()

    services.org.change_password("auditor", "Audit-Desk-Lamp-Window-2026")
    page = session_page(browser, issuer, services, "auditor", amr="pwd otp", locale="zh-CN")
    page.goto(f"{issuer}/portal/audit?event_type=login&outcome=failure&lang=zh")
    reading = page.locator("#records tbody tr td.reason span.reading").first
    assert reading.inner_text() == "口令错误"
    assert reading.get_attribute("title") == "记录原文：wrong password"
    check(page.content(), "zh", "audit search")

    page.locator("#records tbody tr a.record-link").first.click()
    page.wait_for_url(f"{issuer}/portal/audit/records/*")
    assert page.locator("#r-reason-reading").inner_text() == "口令错误"
    assert page.locator("#r-reason-stored code").inner_text() == "wrong password"
    check(page.content(), "zh", "audit record")

    page.click("a.lang")  # the page's own switch to English
    assert page.locator("#r-reason-reading").count() == 0
    assert page.locator("#r-reason code").inner_text() == "wrong password"
    check(page.content(), "en", "audit record (en)")
    page.context.close()
