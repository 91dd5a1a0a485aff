"""A refusal a person can act on, said so (walk of 2026-12-05, fourth): li.si, acting
for zhang.san under the demo's delegation (公务用车管理平台 only), opens her own
办公用房管理系统 from the portal's home page. The proxy refuses it (a delegation
that does not name the system fails closed, docs/delegation.md "Acting"), and the page
said only "您没有访问该地址的权限" with no word of the delegation: she had no way to
know that stopping acting opens it. The page now says why and links to the stop
button; after stopping, the system opens, from its real upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.cli.delegation_cmd import demo_delegations
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, demo_system, session_page
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.wiring import apply_state, parts

pytestmark = pytest.mark.slow


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, Services]]:
    """The gateway, the demo's offices system behind it on a free port, and the demo's
    delegation: li.si may act for zhang.san on vehicles."""
    with browser_gateway(settings) as (issuer, services), demo_system("offices") as offices:
        apply_state(services, {"systems": [{
            "code": "offices", "name": "办公用房管理系统", "department": "jgswj",
            "upstream": offices}]})
        demo_delegations(parts(services), [{
            "from": "zhang.san", "to": "li.si", "systems": ["vehicles"], "days": 14,
            "approver": "zhou.ling", "reason": "出差两周"}])
        yield issuer, services


@pytest.mark.parametrize(("lang", "says", "stop"), [
    ("zh", "不包括这个系统", "查看委托或停止代理"),
    ("en", "it does not cover it", "See the delegation, or stop acting"),
])
def test_a_system_the_delegation_does_not_cover_says_so_and_the_way_on(
        world: tuple[str, Services], browser: Any, lang: str, says: str, stop: str) -> None:
    issuer, services = world
    page = session_page(browser, issuer, services, "li.si",
                        locale="zh-CN" if lang == "zh" else "en-US")
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
    page.context.close()


def test_other_refusals_say_nothing_of_delegations(world: tuple[str, Services],
                                                    browser: Any) -> None:
    """wang.wu (another department, acting for nobody) refused at 公务用车管理平台: the
    plain refusal, without the delegation's sentence."""
    issuer, services = world
    page = session_page(browser, issuer, services, "wang.wu", locale="zh-CN")
    response = page.goto(f"{issuer}/s/offices/")
    assert response is not None and response.status == 403
    assert page.locator("#detail").inner_text() == "您没有访问该地址的权限。"
    assert page.locator("#not-delegated").count() == 0
    page.context.close()
