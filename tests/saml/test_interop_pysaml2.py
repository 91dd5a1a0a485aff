"""Interoperability with pysaml2's Saml2Client, a real SP on 127.0.0.1, against a live
gateway: SP-initiated single sign-on through the HTTP-Redirect and HTTP-POST bindings
with a real portal sign-in; the SP verifies the signed response and reads the
attributes; single logout both ways."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.oauth2.helpers import DEMO_PASSWORD, audit_events
from tests.saml.conftest import World, register
from tests.saml.sp import TestSp, serving, wait_for

pytestmark = [pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The action and fields of the page's one form (the HTTP-POST binding)."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert action, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return unescape(action.group(1)), {k: unescape(v) for k, v in fields.items()}


def sign_in(browser: httpx.Client, gateway: str, location: str) -> httpx.Response:
    """The portal's sign-in form at ``location``, submitted; the redirect it answers."""
    page = browser.get(urljoin(gateway, location))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    back = re.search(r'name="next" value="([^"]+)"', page.text)
    assert csrf and back, page.text
    r = browser.post(f"{gateway}/portal/login", data={
        "csrf_token": csrf.group(1), "next": unescape(back.group(1)),
        "username": "zhang.san", "password": DEMO_PASSWORD})
    assert r.status_code == 303, r.text
    return r


def to_sp(browser: httpx.Client, world: World, first: httpx.Response) -> dict[str, Any]:
    """Follow the gateway's redirects (signing in when asked) to the page that posts
    the response, post it to the SP's ACS as a browser would; the SP's answer."""
    r = first
    for _ in range(6):
        if r.status_code != 303:
            break
        location = r.headers["location"]
        if location.startswith("/portal/login"):
            r = sign_in(browser, world.gateway, location)
            continue
        r = browser.get(urljoin(world.gateway, location))
    assert r.status_code == 200 and 'id="saml-post"' in r.text, r.text
    assert r.headers["cache-control"] == "no-store"
    action, fields = form_of(r.text)
    assert action == f"{world.sp.base}/acs"
    answer = browser.post(action, data=fields)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_sso_redirect_then_post_binding(world: World) -> None:
    seen = len(audit_events(world.services))
    with httpx.Client(timeout=10) as browser:
        r = browser.get(f"{world.sp.base}/login?binding=redirect")
        assert r.status_code == 302 and r.headers["location"].startswith(
            f"{world.gateway}/saml/sso?SAMLRequest=")
        assert "Signature=" in r.headers["location"]
        first = to_sp(browser, world, browser.get(r.headers["location"]))
        assert first["attributes"] == {"name": ["张三"], "department": ["jgswj"],
                                       "region": ["gx"], "roles": ["data_steward", "staff"]}
        assert first["format"].endswith(":persistent") and first["relay_state"] == "/after-login"
        assert first["name_id"] != "zhang.san" and "zhang" not in first["name_id"]

        # the POST binding, single sign-on now: no second sign-in
        page = browser.get(f"{world.sp.base}/login?binding=post")
        action, fields = form_of(page.text)
        assert action == f"{world.gateway}/saml/sso" and "SAMLRequest" in fields
        r = browser.post(action, data=fields)
        assert r.status_code == 303 and r.headers["location"].startswith("/saml/sso/continue?")
        second = to_sp(browser, world, r)
        assert second["name_id"] == first["name_id"]  # persistent: stable for this SP
        assert second["session_index"] != first["session_index"]
    events = [e for e in audit_events(world.services)[seen:] if e["event_type"] == "saml_login"]
    assert [e["outcome"] for e in events] == ["success", "success"]
    assert {e["actor_user"] for e in events} == {"zhang.san"}
    assert {e["system"] for e in events} == {"archives"}


def test_single_logout_from_the_portal_and_from_the_sp(world: World) -> None:
    soap, responses = len(world.sp.soap_logouts), len(world.sp.logout_responses)
    with httpx.Client(timeout=10) as browser:
        r = browser.get(f"{world.sp.base}/login")
        login = to_sp(browser, world, browser.get(r.headers["location"]))
        # the portal's sign-out: the SP hears of it on the back channel (SOAP)
        page = browser.get(f"{world.gateway}/portal")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text
        out = browser.post(f"{world.gateway}/portal/logout", data={"csrf_token": csrf.group(1)})
        assert out.status_code in (200, 303)
        assert wait_for(lambda: world.sp.soap_logouts[soap:] == [login["name_id"]])
        assert wait_for(lambda: any(e["outcome"] == "success" for e in audit_events(
            world.services, "saml_logout_slo")))

        # sign in again; this time the SP starts the logout (signed, HTTP-Redirect)
        r = browser.get(f"{world.sp.base}/login")
        again = to_sp(browser, world, browser.get(r.headers["location"]))
        assert again["name_id"] == login["name_id"]
        r = browser.get(f"{world.sp.base}/logout", params={"name_id": again["name_id"]})
        assert r.status_code == 302 and r.headers["location"].startswith(
            f"{world.gateway}/saml/slo?SAMLRequest=")
        r = browser.get(r.headers["location"])
        assert r.status_code == 303 and r.headers["location"].startswith(
            f"{world.sp.base}/slo?SAMLResponse=")
        assert browser.get(r.headers["location"]).status_code == 200
        assert world.sp.logout_responses[responses:] == [True]  # signed, verified by the SP
        # the portal session is over: the next request to sign in asks for the password
        r = browser.get(f"{world.sp.base}/login")
        r = browser.get(r.headers["location"])
        r = browser.get(urljoin(world.gateway, r.headers["location"]))
        assert r.status_code == 303 and r.headers["location"].startswith("/portal/login")
    # the SP that asked is not told again on the back channel
    assert world.sp.soap_logouts[soap:] == [login["name_id"]]
    kinds = [(e["event_type"], e["outcome"]) for e in audit_events(world.services)]
    assert ("saml_logout", "success") in kinds


def test_an_sp_without_a_back_channel_is_told_through_the_browser(
        world: World, tmp_path: Path) -> None:
    """Front-channel single logout: at the portal's sign-out, an SP whose metadata has
    only an HTTP-Redirect SingleLogoutService gets a signed LogoutRequest through the
    browser, answers with its signed LogoutResponse, and the browser lands on the
    signed-out page; the SP with a SOAP endpoint hears of it on the back channel."""
    metadata = httpx.get(f"{world.gateway}/saml/metadata", timeout=10).text
    with serving(TestSp(tmp_path, idp_metadata=metadata, name="front", soap=False)) as front:
        register(world.services, front, code="frontdesk")
        soap = len(world.sp.soap_logouts)
        with httpx.Client(timeout=10) as browser:
            r = browser.get(f"{world.sp.base}/login")
            back = to_sp(browser, world, browser.get(r.headers["location"]))
            r = browser.get(f"{front.base}/login")
            told = to_sp(browser, World(world.gateway, world.services, front),
                         browser.get(r.headers["location"]))
            page = browser.get(f"{world.gateway}/portal")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf, page.text
            out = browser.post(f"{world.gateway}/portal/logout",
                               data={"csrf_token": csrf.group(1)})
            assert out.status_code == 303 and out.headers["location"].startswith(
                f"{front.base}/slo?SAMLRequest="), out.text[:300]
            assert "Signature=" in out.headers["location"]
            answer = browser.get(out.headers["location"])  # the SP verifies, answers
            assert answer.status_code == 302, answer.text
            assert answer.headers["location"].startswith(f"{world.gateway}/saml/slo?SAMLResponse=")
            # a RelayState not of this IdP's making continues nothing
            for relay in ("abc.def", "%E4%B8%AD.x"):
                forged = re.sub(r"RelayState=[^&]+", f"RelayState={relay}",
                                answer.headers["location"])
                assert browser.get(forged).status_code == 400
            done = browser.get(answer.headers["location"])
            assert done.status_code == 200 and "您已安全退出" in done.text
            assert browser.get(f"{world.gateway}/portal").headers["location"].startswith(
                "/portal/login")
        assert front.front_logouts == [told["name_id"]]
        assert wait_for(lambda: world.sp.soap_logouts[soap:] == [back["name_id"]])
        records = [e for e in audit_events(world.services, "saml_logout_slo")
                   if e["system"] == "frontdesk" and e["outcome"] == "success"]
        extra = records[0]["extra"] if records else {}
        extra = json.loads(extra) if isinstance(extra, str) else extra
        assert len(records) == 1 and extra["binding"] == "redirect", records
        assert extra["sp"] == front.entity_id


def test_the_portal_launcher_opens_the_sp_with_one_click(world: World) -> None:
    """The launcher's entry is the SP's own login start; the SP's AuthnRequest is then
    answered by the portal session: no second sign-in."""
    with httpx.Client(timeout=10) as browser:
        r = sign_in(browser, world.gateway, "/portal/login?next=/portal")
        home = browser.get(urljoin(world.gateway, r.headers["location"]))
        link = re.search(r'<a href="([^"]+)" data-system="archives">', home.text)
        assert link and unescape(link.group(1)) == f"{world.sp.base}/login", home.text
        r = browser.get(unescape(link.group(1)))  # the click
        r = browser.get(r.headers["location"])  # the SP's AuthnRequest, at the gateway
        assert r.headers["location"].startswith("/saml/sso/continue?")
        page = browser.get(urljoin(world.gateway, r.headers["location"]))
        assert 'id="saml-post"' in page.text  # straight to the SP: no sign-in form
        action, fields = form_of(page.text)
        assert browser.post(action, data=fields).json()["attributes"]["name"] == ["张三"]


def test_a_real_browser_signs_in_through_the_post_binding(world: World) -> None:
    """Chromium: the SP's page posts the AuthnRequest, the portal form signs in, and the
    gateway's page posts the response on by itself (its script allowed by the portal's
    Content-Security-Policy), to the SP, which names the user."""
    import os

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(locale="zh-CN")
            page.goto(f"{world.sp.base}/login?binding=post")
            page.wait_for_url(f"{world.gateway}/portal/login?*")
            page.fill("#username", "li.si")
            page.fill("#password", DEMO_PASSWORD)
            page.click("#submit")
            page.wait_for_url(f"{world.sp.base}/acs")
            answer = page.locator("body").inner_text()
            assert '"李四"' in answer or "李四" in answer, answer
        finally:
            browser.close()
