"""The session and CSRF cookies of a gateway served over https are ``__Host-`` cookies
(Secure, ``Path=/``, no ``Domain``), which no sibling subdomain and no forged plain-http
answer can set; a plain ``gg_session`` planted in the browser (cookie tossing, or one
left from before the upgrade) is no session. Chromium against a gateway served over TLS
on 127.0.0.1 (a trustme certificate), as a browser with default settings sees it."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import DEMO_PASSWORD, close_services, make_services
from tests.oauth2.live import free_port
from tests.served import QuickServer
from tests.wiring import parts

pytestmark = pytest.mark.slow


@pytest.fixture
def https_gateway(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Services]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "gw.pem", tmp_path / "gw.key"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    services = make_services(dataclasses.replace(settings, issuer=issuer, port=port))
    config = uvicorn.Config(create_app(parts(services)), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False,
                            ssl_certfile=str(cert_file), ssl_keyfile=str(key_file))
    server = QuickServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "gateway did not start"
        time.sleep(0.02)
    try:
        yield issuer, services
    finally:
        server.should_exit = True
        thread.join(10)
        close_services(services)


def _sign_in(page: Any, issuer: str, username: str) -> None:
    page.goto(f"{issuer}/portal/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"{issuer}/portal")


def _go_callback(page: Any, url: str) -> None:
    """Follow ``url`` to the client's callback, where nothing listens."""
    try:
        page.goto(url)
    except Exception as exc:  # playwright's Error: connection refused
        assert "ERR_CONNECTION_REFUSED" in str(exc)


def _session_cookie(context: Any) -> dict[str, Any]:
    return next(c for c in context.cookies() if c["name"].endswith("gg_session"))


def test_https_session_is_a_host_cookie_and_a_plain_one_is_no_session(
        browser: Any, https_gateway: tuple[str, Services]) -> None:
    issuer, _ = https_gateway
    # the attacker's own session, which a sibling subdomain would toss to the victim
    attacker = browser.new_context(ignore_https_errors=True, locale="zh-CN")
    try:
        _sign_in(attacker.new_page(), issuer, "wang.wu")
        tossed = _session_cookie(attacker)["value"]
    finally:
        attacker.close()

    victim = browser.new_context(ignore_https_errors=True, locale="zh-CN")
    try:
        page = victim.new_page()
        page.goto(f"{issuer}/portal/login")
        csrf = next(c for c in victim.cookies() if c["name"].endswith("gg_csrf"))
        assert csrf["name"] == "__Host-gg_csrf" and csrf["secure"] and csrf["path"] == "/"
        # a plain gg_session, as a sibling subdomain (Domain=parent) or a forged http
        # answer could set it: the gateway must not take it for a session
        victim.add_cookies([{"name": "gg_session", "value": tossed, "domain": "127.0.0.1",
                             "path": "/", "httpOnly": True, "sameSite": "Lax"}])
        page.goto(f"{issuer}/portal")
        assert "/portal/login" in page.url, "a plain gg_session cookie signed the browser in"
        page.goto(f"{issuer}/portal/account")
        assert "王五" not in page.content()

        _sign_in(page, issuer, "li.si")
        names = {c["name"] for c in victim.cookies()}
        assert "gg_session" not in names  # the plain one left over is deleted at sign-in
        cookie = _session_cookie(victim)
        assert cookie["name"] == "__Host-gg_session"
        assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/" and cookie["domain"] == "127.0.0.1"  # host-only
        assert page.locator("#launcher").count() == 1

        # sign out: the __Host- cookie is deleted (only a Secure Set-Cookie deletes it)
        page.click("#logout")
        assert page.locator("#title").inner_text() == "您已安全退出"
        assert not any(c["name"].endswith("gg_session") for c in victim.cookies())
        page.goto(f"{issuer}/portal")
        assert "/portal/login" in page.url
    finally:
        victim.close()


def test_https_cas_and_oidc_read_the_host_cookie_only(
        browser: Any, https_gateway: tuple[str, Services]) -> None:
    """CAS, the authorization endpoint, the API and forward-auth go by the same name: a
    browser signed in has its session there, a plain gg_session holding a live session
    token does not."""
    issuer, _ = https_gateway
    context = browser.new_context(ignore_https_errors=True, locale="zh-CN")
    try:
        page = context.new_page()
        _sign_in(page, issuer, "li.si")
        token = _session_cookie(context)["value"]
        authorize = (f"{issuer}/oauth2/authorize?response_type=code&client_id=office-web"
                     "&redirect_uri=http%3A%2F%2F127.0.0.1%3A9102%2Fcallback&scope=openid"
                     "&state=s1&prompt=none&code_challenge="
                     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
        seen: list[str] = []
        page.on("request", lambda r: seen.append(r.url) if ":9102/" in r.url else None)
        _go_callback(page, authorize)  # nobody listens at the client's callback
        assert seen and "code=" in seen[-1]
        verify = {"X-Original-URI": "/s/offices/api/rooms", "X-Original-Method": "GET"}
        assert context.request.get(f"{issuer}/api/v1/account").status == 200
        assert context.request.get(f"{issuer}/auth/verify", headers=verify).status != 401
        context.clear_cookies()
        context.add_cookies([{"name": "gg_session", "value": token, "domain": "127.0.0.1",
                              "path": "/", "httpOnly": True, "sameSite": "Lax"}])
        _go_callback(page, authorize)
        assert "error=login_required" in seen[-1]
        # the API and forward-auth (nginx auth_request) read the same name
        assert context.request.get(f"{issuer}/api/v1/account").status == 401
        assert context.request.get(f"{issuer}/auth/verify", headers=verify).status == 401
        page = context.new_page()
        page.goto(f"{issuer}/cas/login?service=http%3A%2F%2F127.0.0.1%3A9103%2Fcas%2Fcallback")
        assert "/portal/login" in page.url  # no ticket: signed out
    finally:
        context.close()
