"""A refusal a person can act on, said so (walk of 2026-12-05, fourth): li.si, acting
for zhang.san under the demo's delegation (公务用车管理平台 only), opens her own
办公用房管理系统 from the portal's home page. The proxy refuses it (a delegation
that does not name the system fails closed, docs/delegation.md "Acting"), and the page
said only "您没有访问该地址的权限" with no word of the delegation: she had no way to
know that stopping acting opens it. The page now says why and links to the stop
button; after stopping, the system opens, from its real upstream."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from gateway.cli.delegation_cmd import demo_delegations
from gateway.demo.apps import create_upstream
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import CHROMIUM
from tests.oauth2.live import free_port, live_gateway
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.served import QuickServer
from tests.wiring import apply_state, parts

pytestmark = pytest.mark.slow


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, Services]]:
    """The gateway, the demo's offices system behind it on a free port, and the demo's
    delegation: li.si may act for zhang.san on vehicles."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    port = free_port()
    server = QuickServer(uvicorn.Config(create_upstream("offices"), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        with live_gateway(dataclasses.replace(settings)) as (issuer, services):
            apply_state(services, {"systems": [{
                "code": "offices", "name": "办公用房管理系统", "department": "jgswj",
                "upstream": f"http://127.0.0.1:{port}"}]})
            demo_delegations(parts(services), [{
                "from": "zhang.san", "to": "li.si", "systems": ["vehicles"], "days": 14,
                "approver": "zhou.ling", "reason": "出差两周"}])
            yield issuer, services
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize(("lang", "says", "stop"), [
    ("zh", "不包括这个系统", "查看委托或停止代理"),
    ("en", "it does not cover it", "See the delegation, or stop acting"),
])
def test_a_system_the_delegation_does_not_cover_says_so_and_the_way_on(
        world: tuple[str, Services], browser: Any, lang: str, says: str, stop: str) -> None:
    issuer, services = world
    token, _ = parts(services).provider.store.create_session(
        "li.si", "active", amr="pwd", absolute_seconds=3600)
    context = browser.new_context(locale="zh-CN" if lang == "zh" else "en-US")
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": issuer}])
    page = context.new_page()
    page.goto(f"{issuer}/portal/delegations?lang={lang}")
    page.locator("#acting-for form button").first.click()  # act for zhang.san
    page.wait_for_url(f"{issuer}/portal*")

    # her own system is no longer on the home page while she acts (it lists what the
    # delegation opens); a bookmark of it still leads there
    assert page.locator("#launcher a[href^='/s/offices/']").count() == 0
    with page.expect_navigation() as nav:
        page.goto(f"{issuer}/s/offices/?lang={lang}")
    response = nav.value
    assert response is not None and response.status == 403
    explained = page.locator("#not-delegated")
    assert explained.count() == 1, "the refusal does not say it is the delegation's"
    assert says in explained.inner_text()
    check(page.content(), lang, "refused while acting")

    explained.get_by_role("link", name=stop).click()
    page.wait_for_url(f"{issuer}/portal/delegations*")
    page.locator("#stop-acting").click()
    page.wait_for_load_state()
    with page.expect_navigation() as nav:
        page.goto(f"{issuer}/s/offices/?lang={lang}")
    response = nav.value
    assert response is not None and response.status == 200
    assert page.locator("table").count() == 1  # the system's own page, through the gateway
    context.close()


def test_other_refusals_say_nothing_of_delegations(world: tuple[str, Services],
                                                    browser: Any) -> None:
    """wang.wu (another department, acting for nobody) refused at 公务用车管理平台: the
    plain refusal, without the delegation's sentence."""
    issuer, services = world
    token, _ = parts(services).provider.store.create_session(
        "wang.wu", "active", amr="pwd", absolute_seconds=3600)
    context = browser.new_context(locale="zh-CN")
    context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": issuer}])
    page = context.new_page()
    response = page.goto(f"{issuer}/s/offices/")
    assert response is not None and response.status == 403
    assert page.locator("#detail").inner_text() == "您没有访问该地址的权限。"
    assert page.locator("#not-delegated").count() == 0
    context.close()
