"""Interoperability with pysaml2's Saml2Client, a real SP on 127.0.0.1, against a live
gateway: SP-initiated single sign-on through the HTTP-Redirect and HTTP-POST bindings
with a real portal sign-in; the SP verifies the signed response and reads the
attributes; single logout both ways."""

from __future__ import annotations

import base64
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
from tests.wiring import apply_state

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
        # told through the browser, so no back-channel failure beside the success
        # (failed before: "no SOAP SingleLogoutService in the SP's metadata")
        assert not [e for e in audit_events(world.services, "saml_logout_slo")
                    if e["system"] == "frontdesk" and e["outcome"] != "success"]


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


def _posted_form(page: str) -> tuple[str, dict[str, str]]:
    """pysaml2's HTTP-POST binding page: its form's action and fields."""
    action = re.search(r'<form[^>]*action="([^"]+)"', page)
    assert action, page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return unescape(action.group(1)), {k: unescape(v) for k, v in fields.items()}


def _confirmed(browser: httpx.Client, gateway: str, path: str, params: dict[str, str]
               ) -> httpx.Response:
    """A sign-out that asks "sign out?" first (``/cas/logout``, ``/oauth2/logout``
    without an ID token): the page's form, submitted."""
    page = browser.get(f"{gateway}{path}", params=params)
    assert page.status_code == 200 and 'id="logout"' in page.text, page.text[:300]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return browser.post(f"{gateway}{path}", data={k: unescape(v) for k, v in fields.items()})


def test_every_sign_out_with_a_browser_tells_the_front_channel_sps(
        world: World, tmp_path: Path) -> None:
    """``/cas/logout``, ``/oauth2/logout`` and another SP's LogoutRequest end the portal
    session too: the SP with only an HTTP-Redirect SingleLogoutService is told through
    the browser before the sign-out's own destination (the CAS service, the
    post-logout URI, the asking SP's LogoutResponse), and answers by HTTP-POST (failed
    before: straight to the destination, the SP audited "no SOAP SingleLogoutService";
    a posted LogoutResponse got the error page)."""
    metadata = httpx.get(f"{world.gateway}/saml/metadata", timeout=10).text
    sp = TestSp(tmp_path, idp_metadata=metadata, name="front-post", soap=False,
                answers_by_post=True)
    with serving(sp) as front:
        apply_state(world.services, {"systems": [{
            "code": "frontpost", "name": "前台登记系统", "department": "jgswj",
            "upstream": front.base, "cas_services": [f"{front.base}/cas/*"],
            "saml_sp": {"metadata": front.metadata()}}]})
        front_world = World(world.gateway, world.services, front)
        soap = len(world.sp.soap_logouts)

        def both(browser: httpx.Client) -> str:
            r = browser.get(f"{world.sp.base}/login")
            name_id = to_sp(browser, world, browser.get(r.headers["location"]))["name_id"]
            r = browser.get(f"{front.base}/login")
            to_sp(browser, front_world, browser.get(r.headers["location"]))
            return str(name_id)

        def round_front(browser: httpx.Client, out: httpx.Response) -> httpx.Response:
            assert out.status_code == 303 and out.headers["location"].startswith(
                f"{front.base}/slo?SAMLRequest="), out.text[:300]
            page = browser.get(out.headers["location"])
            assert page.status_code == 200, page.text
            action, fields = _posted_form(page.text)
            assert action == f"{world.gateway}/saml/slo" and "SAMLResponse" in fields
            return browser.post(action, data=fields)

        with httpx.Client(timeout=10) as browser:
            # CAS: the front-channel SP, then the service
            back = both(browser)
            done = round_front(browser, _confirmed(browser, world.gateway, "/cas/logout", {
                "service": f"{front.base}/cas/bye"}))
            assert done.status_code == 303, done.text[:300]
            assert done.headers["location"] == f"{front.base}/cas/bye"
            assert browser.get(f"{world.gateway}/portal").status_code == 303
            assert wait_for(lambda: world.sp.soap_logouts[soap:] == [back])

            # RP-initiated: the front-channel SP, then the post-logout URI with its state
            both(browser)
            out = _confirmed(browser, world.gateway, "/oauth2/logout", {
                "client_id": "office-web", "post_logout_redirect_uri": "http://127.0.0.1:9102/",
                "state": "s1"})
            # a posted LogoutResponse altered after its signing continues nothing
            page = browser.get(out.headers["location"])
            action, fields = _posted_form(page.text)
            xml = base64.b64decode(fields["SAMLResponse"]).decode()
            forged = {**fields, "SAMLResponse": base64.b64encode(xml.replace(
                "Success", "Requester", 1).encode()).decode()}
            assert browser.post(action, data=forged).status_code == 400
            done = browser.post(action, data=fields)
            assert done.status_code == 303
            assert done.headers["location"] == "http://127.0.0.1:9102/?state=s1"

            # another SP's LogoutRequest: the front-channel SP, then its LogoutResponse
            name_id = both(browser)
            responses = len(world.sp.logout_responses)
            r = browser.get(f"{world.sp.base}/logout", params={"name_id": name_id})
            done = round_front(browser, browser.get(r.headers["location"]))
            assert done.status_code == 303 and done.headers["location"].startswith(
                f"{world.sp.base}/slo?SAMLResponse="), done.text[:300]
            assert browser.get(done.headers["location"]).status_code == 200
            assert world.sp.logout_responses[responses:] == [True]
        assert len(front.front_logouts) == 3  # told once in each chain
        outcomes = [(e["outcome"], e["reason"]) for e in audit_events(
            world.services, "saml_logout_slo") if e["system"] == "frontpost"]
        assert [o for o, _ in outcomes].count("success") == 3, outcomes
        assert all(o == "success" for o, _ in outcomes), outcomes
