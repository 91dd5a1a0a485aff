"""A demo system's signed-in page leads on (walk of 2026-12-05, fourth): zhao.min
opened 资产管理系统 from the portal's home page (CAS, one click) and landed on
"已通过 CAS 统一身份认证登录：赵敏（zhao.min，czt）" with no link at all: neither the
system's records nor the way back to the portal. In Chromium against a real gateway
and the demo's assets system on its own socket, in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.demo.apps import create_upstream
from gateway.demo.cas import CasClient
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, session_page
from tests.oauth2.live import free_port, serving
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.wiring import apply_state

pytestmark = pytest.mark.slow


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, str, Services]]:
    """The gateway, and the demo's assets system signing in by CAS on a free port."""
    port = free_port()  # the system's own address goes into its CAS client
    system = f"http://127.0.0.1:{port}"
    with browser_gateway(settings) as (issuer, services), serving(create_upstream(
            "assets", cas=CasClient(issuer, f"{system}/cas/callback")), port, lifespan="off"):
        apply_state(services, {"systems": [{
            "code": "assets", "name": "资产管理系统", "department": "czt",
            "upstream": system,
            "cas_services": [f"{system}/cas/callback", f"{system}/cas/*"]}]})
        yield issuer, system, services


@pytest.mark.parametrize(("lang", "records", "portal"), [
    ("zh", "查看本系统的数据", "返回统一身份认证门户"),
    ("en", "See this system's records", "Back to the govgate portal"),
])
def test_the_cas_signed_in_page_leads_to_the_records_and_back_to_the_portal(
        world: tuple[str, str, Services], browser: Any, lang: str, records: str,
        portal: str) -> None:
    issuer, system, services = world
    page = session_page(browser, issuer, services, "zhao.min")
    page.goto(f"{issuer}/portal?lang={lang}")
    page.locator("a[href^='/cas/login']").first.click()  # the launcher: one click
    page.wait_for_url(f"{system}/cas/callback*")
    assert "zhao.min" in page.locator("#signed-in").inner_text()

    assert page.locator("#records").count() == 1, "the signed-in page leads nowhere"
    assert page.locator("#records").inner_text() == records
    assert page.locator("#portal").inner_text() == portal
    back = page.locator("#portal").get_attribute("href")
    page.click("#records")
    page.wait_for_url(f"{system}/*")
    assert page.locator("table tbody tr").count() > 0  # the system's records
    assert page.locator("html").get_attribute("lang") == ("en" if lang == "en" else "zh-CN")
    page.goto(str(back))  # the callback's ticket is spent: its link, not the history
    page.wait_for_url(f"{issuer}/portal*")
    assert page.locator("html").get_attribute("lang") == ("en" if lang == "en" else "zh-CN")
    page.context.close()
