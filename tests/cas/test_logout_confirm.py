"""CAS sign-out asks first: a GET of ``/cas/logout`` (what any page can make a browser
send, a top-level link carrying the Lax session cookie) shows the "sign out?" page in
the user's language and ends nothing; only the page's own POST, with its CSRF token
from the gateway's origin, ends the session (and single logout), then keeps the
``service=`` / ``url=`` redirect rules. In process and with Chromium from another site."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import (  # noqa: F401 - browser: one Chromium per module
    browser,
    browser_gateway,
    sign_in,
)
from tests.cas.conftest import EXACT, SERVICE, register_cas
from tests.oauth2.helpers import audit_events, csrf_of, login
from tests.oauth2.live import free_port, serving


def _signed_in(client: TestClient) -> bool:
    r = client.get("/cas/login", params={"service": SERVICE}, follow_redirects=False)
    return "ticket=" in r.headers.get("location", "")


def _hidden(html: str, name: str) -> str | None:
    import re

    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    return None if m is None else m.group(1).replace("&amp;", "&")


def test_a_get_asks_and_ends_nothing(client: TestClient, idp: Services) -> None:
    login(client)
    before = len(audit_events(idp, "logout"))
    r = client.get("/cas/logout", params={"service": EXACT}, follow_redirects=False)
    assert r.status_code == 200 and "location" not in r.headers
    assert "确认退出登录？" in r.text and 'action="/cas/logout"' in r.text
    assert _hidden(r.text, "service") == EXACT  # carried to the confirmation
    assert _signed_in(client) and len(audit_events(idp, "logout")) == before
    r = client.get("/cas/logout", params={"url": SERVICE + "bye", "lang": "en"})
    assert "Sign out?" in r.text and _hidden(r.text, "url") == SERVICE + "bye"
    assert _signed_in(client)


def test_a_post_without_the_token_or_from_another_site_asks_again(
        client: TestClient, idp: Services) -> None:
    login(client)
    page = client.get("/cas/logout")
    token = csrf_of(page.text)
    for data, headers in (
            ({}, {}),  # no token: a form posted from anywhere
            ({"csrf_token": "forged"}, {}),
            ({"csrf_token": token}, {"Origin": "http://evil.example",
                                     "Sec-Fetch-Site": "cross-site"})):
        r = client.post("/cas/logout", data={"service": EXACT, **data}, headers=headers,
                        follow_redirects=False)
        assert r.status_code == 200 and "确认退出登录？" in r.text
        assert _signed_in(client)
    assert not [e for e in audit_events(idp, "logout") if e["reason"] == "cas logout"]


def test_the_confirmation_ends_the_session_and_keeps_the_redirect_rules(
        client: TestClient, idp: Services) -> None:
    login(client)
    page = client.get("/cas/logout", params={"service": EXACT})
    r = client.post("/cas/logout", data={"csrf_token": csrf_of(page.text),
                                         "service": _hidden(page.text, "service")},
                    headers={"Origin": "http://127.0.0.1:8080",
                             "Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == EXACT
    assert not _signed_in(client)
    assert [e["reason"] for e in audit_events(idp, "logout")][-1] == "cas logout"
    # a service no system registered: signed out, never redirected (audited)
    login(client)
    page = client.get("/cas/logout", params={"service": "https://evil.example/"})
    r = client.post("/cas/logout", data={"csrf_token": csrf_of(page.text),
                                         "service": "https://evil.example/"},
                    follow_redirects=False)
    assert r.status_code == 200 and "location" not in r.headers and "您已安全退出" in r.text
    assert not _signed_in(client)
    assert audit_events(idp, "cas_logout")[-1]["outcome"] == "failure"
    # no session: nothing to confirm, a registered service is still where it goes
    r = client.get("/cas/logout", params={"url": SERVICE + "bye"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SERVICE + "bye"


# -- Chromium: another site sends the browser to the sign-out endpoints ------------------

@pytest.fixture
def gateway(settings: Settings) -> Iterator[tuple[str, Services]]:
    with browser_gateway(settings) as (issuer, services):
        register_cas(services)
        yield issuer, services


@pytest.mark.slow
def test_another_site_cannot_sign_the_browser_out(
        browser: Any, gateway: tuple[str, Services]) -> None:  # noqa: F811
    issuer, services = gateway
    port = free_port()

    async def lure(request: Any) -> HTMLResponse:  # a page on another site (localhost)
        target = request.query_params["to"]
        return HTMLResponse(f"<p>news</p><script>location.href = {target!r};</script>")

    context = browser.new_context(locale="zh-CN")
    try:
        with serving(Starlette(routes=[Route("/", lure)]), port, lifespan="off"):
            page = context.new_page()
            page.goto(f"{issuer}/portal/login")
            sign_in(page, "li.si")
            page.wait_for_url(f"{issuer}/portal")
            for endpoint in ("/cas/logout", "/oauth2/logout"):
                page.goto(f"http://localhost:{port}/?to={issuer}{endpoint}")
                page.wait_for_url(f"{issuer}{endpoint}")
                assert page.locator("#title").inner_text() == "确认退出登录？"
                page.goto(f"{issuer}/portal")
                assert page.url == f"{issuer}/portal", f"{endpoint} from another site signed out"
            assert not audit_events(services, "logout")
            # the user's own confirmation does sign out
            page.goto(f"{issuer}/cas/logout")
            page.click("#logout")
            assert page.locator("#title").inner_text() == "您已安全退出"
            page.goto(f"{issuer}/portal")
            assert "/portal/login" in page.url
    finally:
        context.close()
    assert [e["reason"] for e in audit_events(services, "logout")] == ["cas logout"]
