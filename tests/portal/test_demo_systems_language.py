"""The demo systems' language and icon as plain requests (walk of 2026-12-05, second):
Chinese unless told ``lang=en``; the language carried through their own sign-in (the
OpenID Connect state cookie and ``ui_locales``, the CAS service URL); an icon at
``/favicon.ico`` on each and on the gateway; the gateway's sign-in page in the
language a relying party's ``ui_locales`` asks for."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from gateway.demo.apps import create_upstream
from gateway.demo.cas import CasClient
from gateway.demo.sso import STATE_COOKIE, SsoClient
from gateway.services import Services
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check, portal  # noqa: F401 - a fixture
from tests.wiring import apply_state

GW = "http://127.0.0.1:8080"
SYS = "http://127.0.0.1:9102"


@pytest.fixture(scope="module")
def systems() -> Iterator[dict[str, TestClient]]:
    apps = {"vehicles": create_upstream("vehicles"),
            "offices": create_upstream("offices", sso=SsoClient(
                GW, "office-web", "s" * 32, f"{SYS}/callback")),
            "assets": create_upstream("assets", cas=CasClient(GW, f"{SYS}/cas/callback"))}
    yield {code: TestClient(app, base_url=SYS) for code, app in apps.items()}


def test_each_system_speaks_chinese_unless_told_english(systems: dict[str, TestClient]
                                                         ) -> None:
    names = {"vehicles": ("公务用车管理平台", "Official Vehicles"),
             "offices": ("办公用房管理系统", "Office Space"), "assets": ("资产管理系统", "Assets")}
    for code, client in systems.items():
        for query, lang in (("", "zh"), ("?lang=fr", "zh"), ("?lang=zh", "zh"),
                            ("?lang=en", "en")):
            page = client.get("/" + query).text
            assert f"<h1>{names[code][lang == 'en']}</h1>" in page, (code, query)
            assert f"<html lang='{'en' if lang == 'en' else 'zh-CN'}'>" in page
            # the records are data; CAS is the protocol's name in Chinese too
            check(page.split("<tbody>")[0].replace("CAS", ""), lang, f"{code}{query}")
    assert "<th scope='col'>Plate number</th>" in systems["vehicles"].get("/?lang=en").text
    assert "<th scope='col'>车牌号</th>" in systems["vehicles"].get("/").text
    # signing in starts at the system's own address, in the page's language
    assert f"href='{SYS}/login?lang=en' id='sso-login'" in systems["offices"].get(
        "/?lang=en").text
    assert f"href='{SYS}/cas/login?lang=zh' id='cas-login'" in systems["assets"].get("/").text
    for client in systems.values():
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"


def test_the_language_rides_through_each_sign_in(systems: dict[str, TestClient]) -> None:
    r = systems["offices"].get("/login?lang=en", follow_redirects=False)
    asked = parse_qs(urlsplit(r.headers["location"]).query)
    assert asked["ui_locales"] == ["en"]
    assert r.cookies[STATE_COOKIE].endswith(".en")
    # a stale callback answers in the language the state cookie kept
    page = systems["offices"].get("/callback?code=x&state=other")
    assert page.status_code == 400 and "Sign-in failed: the request expired" in page.text
    assert parse_qs(urlsplit(systems["offices"].get(
        "/login", follow_redirects=False).headers["location"]).query)["ui_locales"] == ["zh-CN"]
    # CAS: the ticket is asked (and validated) for the service URL with the language
    r = systems["assets"].get("/cas/login?lang=en", follow_redirects=False)
    assert parse_qs(urlsplit(r.headers["location"]).query)["service"] == [
        f"{SYS}/cas/callback?lang=en"]
    r = systems["assets"].get("/cas/login", follow_redirects=False)
    assert parse_qs(urlsplit(r.headers["location"]).query)["service"] == [
        f"{SYS}/cas/callback"]


def test_the_gateway_serves_its_icon_and_honours_ui_locales(
        portal: tuple[Services, TestClient]) -> None:  # noqa: F811
    services, client = portal
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.content.startswith(b"<svg")
    assert 'rel="icon" href="/portal/static/favicon.svg"' in client.get("/portal/login").text
    assert client.get("/portal/static/favicon.svg").content == icon.content
    apply_state(services, {"clients": [{
        "client_id": "office-web", "name": "办公用房管理系统", "department": "jgswj",
        "grant_types": ["authorization_code"], "secret": "s" * 32,
        "redirect_uris": [f"{SYS}/callback"]}]})
    for locales, title in (("en-GB zh-CN", "Sign in"), ("fr zh-CN", "登录"), ("", "登录")):
        r = client.get("/oauth2/authorize", params={
            "response_type": "code", "client_id": "office-web", "scope": "openid",
            "redirect_uri": f"{SYS}/callback", "state": "s", "nonce": "n",
            "code_challenge": "c" * 43, "code_challenge_method": "S256",
            **({"ui_locales": locales} if locales else {})})
        assert r.status_code == 200 and r.url.path == "/portal/login", r.text[:300]
        assert f"<h1>{title}</h1>" in r.text, (locales, r.text[:400])
        client.cookies.clear()
