"""The demo's systems in the language the portal was chosen in (walk of 2026-12-05,
second): Chromium signs in at a real gateway with the English portal and opens, from
the launcher, a system through the proxy (``/s/``), a CAS system (the ticket
validated for the service URL that carries ``lang``) and an OpenID Connect system
(``ui_locales``, the state cookie); then again in Chinese, the default. No console
error on any page (the favicon) and no 404 of the browser's own asking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.demo.apps import create_upstream
from gateway.demo.cas import CasClient
from gateway.demo.sso import SsoClient
from gateway.services import Services
from gateway.settings import Settings
from tests.browser import browser_gateway, sign_in
from tests.oauth2.live import free_port, serving
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.wiring import apply_state

pytestmark = pytest.mark.slow
SECRET = "demo-test-secret-0123456789abcdef"


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[str, dict[str, str], Services]]:
    """The gateway and three demo systems of 财政厅 (zhao.min's department) on free
    ports: vehicles (proxied), offices (OpenID Connect), assets (CAS)."""
    ports = {code: free_port() for code in ("vehicles", "offices", "assets")}
    up = {code: f"http://127.0.0.1:{port}" for code, port in ports.items()}
    with browser_gateway(settings) as (issuer, services):
        apply_state(services, {
            "systems": [
                {"code": "vehicles", "name": "公务用车管理平台", "department": "czt",
                 "upstream": up["vehicles"]},
                {"code": "offices", "name": "办公用房管理系统", "department": "czt",
                 "upstream": up["offices"]},
                {"code": "assets", "name": "资产管理系统", "department": "czt",
                 "upstream": up["assets"],
                 "cas_services": [f"{up['assets']}/cas/callback", f"{up['assets']}/cas/*"],
                 "cas_attributes": ["name", "department"]}],
            "clients": [{"client_id": "office-web", "name": "办公用房管理系统",
                         "department": "czt",
                         "grant_types": ["authorization_code", "refresh_token"],
                         "secret": SECRET, "redirect_uris": [f"{up['offices']}/callback"]}]})
        apps = {
            "vehicles": create_upstream("vehicles"),
            "offices": create_upstream("offices", sso=SsoClient(
                issuer, "office-web", SECRET, f"{up['offices']}/callback")),
            "assets": create_upstream("assets", cas=CasClient(
                issuer, f"{up['assets']}/cas/callback")),
        }
        with serving(apps["vehicles"], ports["vehicles"], lifespan="off"), \
                serving(apps["offices"], ports["offices"], lifespan="off"), \
                serving(apps["assets"], ports["assets"], lifespan="off"):
            yield issuer, up, services


def test_the_portal_opens_each_demo_system_in_its_language(
        world: tuple[str, dict[str, str], Services], browser: Any) -> None:
    issuer, up, _ = world
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    troubles: list[str] = []
    page.on("console", lambda m: m.type == "error" and troubles.append(f"{page.url}: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and troubles.append(f"{r.status} {r.url}"))

    page.goto(f"{issuer}/portal/login?lang=en")
    sign_in(page, "zhao.min")
    page.wait_for_url(f"{issuer}/portal")
    assert page.locator("h2").first.inner_text() == "My systems"

    # through the proxy: the page, its header and its sign-in links in English
    page.click("a[data-system=vehicles]")
    page.wait_for_url(f"{issuer}/s/vehicles/?lang=en")
    assert page.locator("h1").inner_text() == "Official Vehicles"
    assert page.locator("th").first.inner_text() == "Plate number"
    check(page.content().split("<tbody>")[0], "en", "vehicles through the proxy")

    # OpenID Connect: the system's own sign-in, English to the end
    page.goto(f"{issuer}/s/offices/?lang=en")
    assert page.locator("#sso-login").inner_text() == "Sign in through govgate single sign-on"
    page.click("#sso-login")
    page.wait_for_url(f"{up['offices']}/callback?*")
    assert page.locator("#signed-in").inner_text() == (
        "Signed in through govgate single sign-on: 赵敏 (zhao.min)")
    assert page.locator("html").get_attribute("lang") == "en"

    # CAS from the launcher: the service URL keeps the language through the ticket
    page.goto(f"{issuer}/portal")
    href = page.locator("a[data-system=assets]").get_attribute("href") or ""
    assert "lang%3Den" in href, href
    page.click("a[data-system=assets]")
    page.wait_for_url(f"{up['assets']}/cas/callback?lang=en&ticket=*")
    assert page.locator("h1").inner_text() == "Assets"
    assert page.locator("#signed-in").inner_text() == (
        "Signed in through govgate by CAS: 赵敏 (zhao.min, czt)")

    # back in Chinese: the portal's switch, and every system follows
    page.goto(f"{issuer}/portal?lang=zh")
    page.click("a[data-system=vehicles]")
    page.wait_for_url(f"{issuer}/s/vehicles/")
    assert page.locator("h1").inner_text() == "公务用车管理平台"
    assert page.locator("th").first.inner_text() == "车牌号"
    check(page.content().split("<tbody>")[0], "zh", "vehicles in Chinese")
    page.click("#lang")  # the system's own switch
    assert page.locator("h1").inner_text() == "Official Vehicles"
    page.goto(f"{issuer}/portal")
    page.click("a[data-system=assets]")
    page.wait_for_url(f"{up['assets']}/cas/callback?ticket=*")
    assert page.locator("#signed-in").inner_text() == (
        "已通过 CAS 统一身份认证登录：赵敏（zhao.min，czt）")
    # the gateway's icon, which the proxied pages and the portal's pages get
    icon = page.request.get(f"{issuer}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert troubles == []
    context.close()
