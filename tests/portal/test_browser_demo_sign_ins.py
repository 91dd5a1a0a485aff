"""A demo system's signed-in page leads on (walk of 2026-12-05, fourth): zhao.min
opened 资产管理系统 from the portal's home page (CAS, one click) and landed on
"已通过 CAS 统一身份认证登录：赵敏（zhao.min，czt）" with no link at all: neither the
system's records nor the way back to the portal. In Chromium against a real gateway
and the demo's assets system on its own socket, in both languages."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from gateway.demo.apps import create_upstream
from gateway.demo.cas import CasClient
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import CHROMIUM
from tests.oauth2.live import free_port, live_gateway
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.served import QuickServer
from tests.wiring import apply_state, parts

pytestmark = pytest.mark.slow


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, str, Services]]:
    """The gateway, and the demo's assets system signing in by CAS on a free port."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    port = free_port()
    system = f"http://127.0.0.1:{port}"
    with live_gateway(dataclasses.replace(settings)) as (issuer, services):
        app = create_upstream("assets", cas=CasClient(issuer, f"{system}/cas/callback"))
        server = QuickServer(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            apply_state(services, {"systems": [{
                "code": "assets", "name": "资产管理系统", "department": "czt",
                "upstream": system,
                "cas_services": [f"{system}/cas/callback", f"{system}/cas/*"]}]})
            yield issuer, system, services
        finally:
            server.should_exit = True
            thread.join(10)


@pytest.mark.parametrize(("lang", "records", "portal"), [
    ("zh", "查看本系统的数据", "返回统一身份认证门户"),
    ("en", "See this system's records", "Back to the govgate portal"),
])
def test_the_cas_signed_in_page_leads_to_the_records_and_back_to_the_portal(
        world: tuple[str, str, Services], browser: Any, lang: str, records: str,
        portal: str) -> None:
    issuer, system, services = world
    token, _ = parts(services).provider.store.create_session(
        "zhao.min", "active", amr="pwd", absolute_seconds=3600)
    context = browser.new_context()
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": issuer}])
    page = context.new_page()
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
    context.close()
