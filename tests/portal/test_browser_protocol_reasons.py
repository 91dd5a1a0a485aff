"""The audit console's CAS, SAML and 委托 reasons in Chromium (walk of 2026-12-05,
fourth): a service ticket nobody issued presented at the real CAS validation endpoint,
a SAML request that is not base64 at the real ``/saml/sso``, and a portal session
that chose a delegation which is not its own opening a system through the proxy are
recorded as the gateway writes them (English); the auditor's Chinese page reads each
(the protocol's codes kept as code), the stored text the row's hover, and the English
page shows the stored text alone. Before, all three stood in English on the Chinese
page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.proxy.acting import ACT_COOKIE, choice
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, session_page
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.wiring import parts

pytestmark = pytest.mark.slow

NOT_A_DELEGATION = 999


@pytest.fixture
def gateway(settings: Settings, fast_hashes: None  # noqa: F811
            ) -> Iterator[tuple[str, Services]]:
    with browser_gateway(settings) as world:
        yield world


def _refusals(issuer: str, services: Services) -> None:
    """Three refusals through the gateway's real endpoints, as a service, an SP and a
    person's browser would make them."""
    with httpx.Client(base_url=issuer, timeout=10) as http:
        r = http.get("/cas/p3/serviceValidate", params={
            "ticket": "ST-nobody-issued-this", "service": "http://127.0.0.1:9103/cas/x"})
        assert r.status_code == 200 and "INVALID_TICKET" in r.text
        r = http.get("/saml/sso", params={"SAMLRequest": "not base64 at all!"})
        assert r.status_code == 400
        value, row = parts(services).provider.store.create_session(
            "li.si", "active", amr="pwd", absolute_seconds=3600)
        r = http.get("/s/vehicles/api/vehicles", headers={"Cookie": (
            f"{SESSION_COOKIE}={value}; "
            f"{ACT_COOKIE}={choice(services.keys, row.sid, NOT_A_DELEGATION)}")})
        assert r.status_code == 403


def _auditor(issuer: str, services: Services, browser: Any) -> Any:
    services.org.change_password("auditor", "Audit-Desk-Lamp-Window-2026")
    return session_page(browser, issuer, services, "auditor", amr="pwd otp", locale="zh-CN")


EXPECTED = [  # event type, outcome, the Chinese reading, the stored text
    ("cas_validate", "failure", "INVALID_TICKET：未知票据", "INVALID_TICKET: unknown ticket"),
    ("saml_login", "failure", "报文被拒绝：报文不是 Base64 编码",
     "Refused: the message is not base64"),
    ("proxy_request", "deny", f"第 {NOT_A_DELEGATION} 号委托不是给 li.si 的",
     f"delegation {NOT_A_DELEGATION} is not one to li.si"),
]


def test_the_auditor_reads_cas_saml_and_delegation_refusals_in_chinese(
        gateway: tuple[str, Services], browser: Any) -> None:
    issuer, services = gateway
    _refusals(issuer, services)
    page = _auditor(issuer, services, browser)
    for event_type, outcome, chinese, stored in EXPECTED:
        page.goto(f"{issuer}/portal/audit?event_type={event_type}&outcome={outcome}&lang=zh")
        reading = page.locator("#records tbody tr td.reason span.reading").first
        assert reading.count() == 1, f"{event_type}: no Chinese reading of {stored!r}"
        assert reading.inner_text() == chinese
        assert reading.get_attribute("title") == "记录原文：" + stored
        check(page.content(), "zh", f"audit search ({event_type})")

        page.locator("#records tbody tr a.record-link").first.click()
        page.wait_for_url(f"{issuer}/portal/audit/records/*")
        assert page.locator("#r-reason-reading").inner_text() == chinese
        assert page.locator("#r-reason-stored code").inner_text() == stored
        check(page.content(), "zh", f"audit record ({event_type})")

        page.goto(f"{issuer}/portal/audit?event_type={event_type}&outcome={outcome}&lang=en")
        assert page.locator("#records tbody tr td.reason span.reading").count() == 0
        assert page.locator("#records tbody tr td.reason code").first.inner_text() == stored
        check(page.content(), "en", f"audit search ({event_type}, en)")
    page.context.close()


def test_every_chinese_template_names_the_same_values_and_keeps_english_as_code() -> None:
    """A Chinese reading shows only the English template's values (it may leave one
    out: a policy line's text), and a protocol's own word only as code (`IsPassive`),
    so that the Chinese page holds no English of ours."""
    from gateway.web.portal.reason_i18n import REASONS

    field = re.compile(r"\{([a-z_]+)\}")
    for en, zh in REASONS:
        assert set(field.findall(zh)) <= set(field.findall(en)), en
        prose = re.sub(r"`[^`]*`|\{[a-z_]+\}", " ", zh)
        assert not re.search(r"[A-Za-z]", prose), (en, zh)


def test_the_cas_refusal_of_an_unknown_service_speaks_chinese(
        gateway: tuple[str, Services], browser: Any) -> None:
    """The page said "该 service 地址未在任何系统登记": the parameter's English name in
    the Chinese sentence."""
    issuer, _ = gateway
    page = browser.new_context(locale="zh-CN").new_page()
    response = page.goto(f"{issuer}/cas/login?service=http://unknown.example/&lang=zh")
    assert response is not None and response.status == 400
    detail = page.locator("#detail").inner_text()
    assert detail.startswith("该服务地址未在任何系统登记")
    assert not set(re.findall(r"[A-Za-z]+", detail)) - {"CAS"}
    page.context.close()
