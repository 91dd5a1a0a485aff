"""Security keys in Chromium against a real gateway, with Chromium's virtual
authenticator (DevTools protocol: ``WebAuthn.addVirtualAuthenticator``, CTAP2,
internal, resident keys, user verification): register a key on the account page,
sign out, sign in with the password and the key, sign out, then sign in with the
passkey alone. The gateway's issuer is http://localhost:PORT: WebAuthn allows no IP
address as the RP ID."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.browser import sign_in
from tests.conftest import PG_URL
from tests.oauth2.helpers import audit_events
from tests.oauth2.live import live_gateway
from tests.portal.test_browser_accessibility import Axe

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    bool(PG_URL), reason="the browser and its authenticator do not depend on the database: "
    "the walk runs on SQLite; the ceremonies' data paths run on both in test_ceremonies")]


@pytest.fixture
def gateway(settings: Settings) -> Iterator[tuple[str, Services]]:
    with live_gateway(settings, host="localhost") as world:
        yield world


def sign_out(page: Any) -> None:
    page.goto(page.url.split("/portal")[0] + "/portal")
    page.click("#logout")
    page.wait_for_selector("#title, h1")


def test_register_then_sign_in_with_key_and_passkey(gateway: tuple[str, Services],
                                                    browser: Any, tmp_path: Path) -> None:
    issuer, services = gateway
    axe = Axe("en", tmp_path / "axe.json")  # the new pages: no serious violation
    context = browser.new_context(locale="en-GB")
    context.add_cookies([{"name": "gg_lang", "value": "en", "url": issuer}])
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})

    page.goto(f"{issuer}/portal")
    sign_in(page, "zhang.san")
    page.wait_for_url(f"{issuer}/portal")
    page.goto(f"{issuer}/portal/account")
    page.fill("#passkey-name", "laptop")
    page.click("#passkey-register")
    page.wait_for_url(re.compile(r".*/portal/account\?done=passkey_added.*"))
    assert page.locator("#passkey-table").inner_text().count("laptop") == 1
    axe(page, "account page with a key")
    creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": added["authenticatorId"]})
    assert len(creds["credentials"]) == 1 and creds["credentials"][0]["isResidentCredential"]

    sign_out(page)
    page.goto(f"{issuer}/portal")
    sign_in(page, "zhang.san")
    page.wait_for_url(re.compile(r".*/portal/login/webauthn.*"))
    axe(page, "the key step")
    page.click("#webauthn-verify")
    page.wait_for_url(f"{issuer}/portal")
    assert page.locator("#logout").is_visible()

    sign_out(page)
    page.goto(f"{issuer}/portal/login")
    page.click("#passkey-login")
    page.wait_for_url(f"{issuer}/portal")
    assert page.locator("#logout").is_visible()
    kinds = [(e["event_type"], e["outcome"]) for e in audit_events(services)
             if e["event_type"].startswith("webauthn_")]
    assert kinds == [("webauthn_register", "success"), ("webauthn_verify", "success"),
                     ("webauthn_login", "success")]
    context.close()
