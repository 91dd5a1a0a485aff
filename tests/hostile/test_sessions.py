"""Session fixation: a session identifier the attacker chose, or holds, planted in the
victim's browser before the victim signs in.

tests/portal/test_login.py has the cookie renewed when one signs in again; tests/portal
its timeouts and sign-outs. Here: a value the attacker made up never becomes a session;
the attacker's own session (full, or half-way through the sign-in) planted before the
victim signs in is ended, not taken over, and the victim gets a new one; every step of
the sign-in (password change, authenticator) issues a new identifier; the identifier is
read from the cookie only; and a second session cookie tossed by a sibling site (same
site, so the browser sends both) makes the request signed in as neither."""

from __future__ import annotations

import pyotp
import pytest
from starlette.testclient import TestClient

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import DEMO_PASSWORD, csrf_of, login


def whoami(world: IdpWorld, cookie_header: str | None = None,
           client: TestClient | None = None) -> str | None:
    """Whose full session the request is (from the account page), or None."""
    client = client or world.fresh()
    headers = {"Cookie": cookie_header} if cookie_header is not None else {}
    r = client.get("/portal/account", headers=headers, follow_redirects=False)
    if r.status_code != 200:
        return None
    for username in ("li.si", "zhang.san", "wang.wu", "sysadmin"):
        if f"<code>{username}</code>" in r.text:
            return username
    return "someone"




def test_a_made_up_identifier_never_becomes_a_session(idp_world: IdpWorld) -> None:
    browser = idp_world.fresh()
    chosen = "attacker-chosen-" + "a" * 40
    browser.cookies.set(SESSION_COOKIE, chosen)
    r = login(browser, username="li.si")
    assert r.status_code == 303
    issued = r.cookies.get(SESSION_COOKIE)
    assert issued and issued != chosen
    assert whoami(idp_world, f"{SESSION_COOKIE}={chosen}") is None
    assert whoami(idp_world, f"{SESSION_COOKIE}={issued}") == "li.si"


@pytest.mark.parametrize("stage", ["active", "change", "mfa"])
def test_the_attackers_own_session_planted_is_ended_not_taken_over(idp_world: IdpWorld,
                                                                   stage: str) -> None:
    planted = idp_world.session_cookie("wang.wu", stage)
    browser = idp_world.fresh()
    browser.cookies.set(SESSION_COOKIE, planted)
    r = login(browser, username="li.si")
    issued = r.cookies.get(SESSION_COOKIE)
    assert issued and issued != planted
    assert whoami(idp_world, f"{SESSION_COOKIE}={issued}") == "li.si"
    # what the attacker kept is worth nothing now: not li.si's, and not even theirs
    assert whoami(idp_world, f"{SESSION_COOKIE}={planted}") is None
    row = idp_world.built.provider.store.find_session(planted)
    assert row is not None and row.username == "wang.wu" and row.revoked_at is not None


def test_every_step_of_the_sign_in_issues_a_new_identifier(idp_world: IdpWorld) -> None:
    """An identifier learnt at one step (a forced password change, the authenticator's
    enrolment) is dead once the browser has gone on: knowing it early is worth nothing."""
    org = idp_world.services.org
    org.reset_password("sysadmin", "Admin-Passw0rd-2026!step")
    org.reset_totp("sysadmin")
    idp_world.clock.advance(31)
    browser = idp_world.fresh()
    r = login(browser, username="sysadmin", password="Admin-Passw0rd-2026!step")
    at_change = r.cookies[SESSION_COOKIE]
    page = browser.get("/portal/login/change")
    r = browser.post("/portal/login/change", data={
        "csrf_token": csrf_of(page.text), "new_password": "Brand-New-Passw0rd-step!",
        "confirm_password": "Brand-New-Passw0rd-step!", "next": "/portal"},
        follow_redirects=False)
    at_enrol = r.cookies[SESSION_COOKIE]
    assert at_enrol != at_change
    stale = idp_world.fresh()
    stale.cookies.set(SESSION_COOKIE, at_change)
    assert stale.get("/portal/login/enrol", follow_redirects=False).status_code == 303
    page = browser.get("/portal/login/enrol")
    secret = page.text.split('<code id="secret">')[1].split("<")[0]
    r = browser.post("/portal/login/enrol", data={
        "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).at(idp_world.clock()),
        "next": "/portal"}, follow_redirects=False)
    active = r.cookies[SESSION_COOKIE]
    assert active not in (at_change, at_enrol)
    for old in (at_change, at_enrol):
        assert whoami(idp_world, f"{SESSION_COOKIE}={old}") is None
    assert whoami(idp_world, f"{SESSION_COOKIE}={active}") == "sysadmin"


def test_the_identifier_is_taken_from_the_cookie_only(idp_world: IdpWorld) -> None:
    cookie = idp_world.session_cookie("li.si")
    client = idp_world.fresh()
    for r in (client.get("/portal/account", params={SESSION_COOKIE: cookie},
                         follow_redirects=False),
              client.get("/portal/account", headers={"Authorization": f"Bearer {cookie}"},
                         follow_redirects=False),
              client.get("/portal/account", headers={"X-Session": cookie},
                         follow_redirects=False)):
        assert r.status_code == 303


def test_the_session_cookie_cannot_be_read_or_sent_cross_site(idp_world: IdpWorld) -> None:
    r = login(idp_world.fresh(), username="li.si")
    set_cookie = next(v for v in r.headers.get_list("set-cookie")
                      if v.startswith(f"{SESSION_COOKIE}="))
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attributes, set_cookie
    assert "samesite=lax" in set_cookie.lower() and "domain" not in attributes


def test_a_tossed_second_session_cookie_signs_in_as_neither(idp_world: IdpWorld) -> None:
    """A sibling subdomain can set ``gg_session`` for the parent domain; the browser
    then sends both, in an order the attacker can arrange. Taking either one would let
    the attacker choose the session the victim works in."""
    victim = idp_world.session_cookie("li.si")
    attacker = idp_world.session_cookie("wang.wu")
    assert whoami(idp_world, f"{SESSION_COOKIE}={victim}") == "li.si"
    for header in (f"{SESSION_COOKIE}={victim}; {SESSION_COOKIE}={attacker}",
                   f"{SESSION_COOKIE}={attacker}; theme=x; {SESSION_COOKIE}={victim}",
                   f"{SESSION_COOKIE}={victim}; {SESSION_COOKIE}={victim}"):
        assert whoami(idp_world, header) is None, header
    # nor through the proxy, the API or the sign-in (which must not end the victim's)
    client = idp_world.fresh()
    both = f"{SESSION_COOKIE}={attacker}; {SESSION_COOKIE}={victim}"
    r = client.get("/api/v1/account", headers={"Cookie": both})
    assert r.status_code == 401
    one = client.get("/s/offices/api/rooms", headers={"Cookie": f"{SESSION_COOKIE}={victim}"})
    assert one.status_code != 401  # signed in (the demo's upstream is not running here)
    r = client.get("/s/offices/api/rooms", headers={"Cookie": both})
    assert r.status_code == 401
    page = client.get("/portal/login")
    r = client.post("/portal/login", headers={"Cookie": f"{both}; gg_csrf={csrf_of(page.text)}"},
                    data={"csrf_token": csrf_of(page.text), "username": "li.si",
                          "password": DEMO_PASSWORD, "next": "/portal"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert whoami(idp_world, f"{SESSION_COOKIE}={r.cookies[SESSION_COOKIE]}") == "li.si"
