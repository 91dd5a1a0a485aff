"""Getting round the sign-in lock, through the portal.

tests/portal/test_lockout.py has the per-address delay, a parallel burst from one
address, the lock of an account after five paced failures, and the lock of a name
with no account in other spellings; tests/portal/test_login.py a right guess in flight
when the others lock the account; tests/gateway/test_org.py concurrent failures
counted in the model. Here: an existing account's name in every spelling a person's
keyboard or input method gives (case, surrounding white space, full-width and other
compatibility forms) counts against that one account and meets its lock; a burst of
guesses from as many addresses as guesses, all at once, cannot outrun the lock;
forwarding headers from an untrusted peer do not give it a new address."""

from __future__ import annotations

import re
import threading

from starlette.testclient import TestClient

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.hostile.conftest import IdpWorld
from tests.oauth2.helpers import DEMO_PASSWORD, audit_events, csrf_of, login

WRONG = "wrong-password-123"
LOCKED = "账号已锁定"


def error_of(html: str) -> str:
    m = re.search(r'<p class="error" role="alert" id="error">(.*?)</p>', html)
    return m.group(1) if m else ""


def spellings(name: str) -> list[str]:
    """``name`` as people type it: case, white space an input method leaves around it,
    full-width forms (a Chinese IME in full-width mode), the script ℓ."""
    full = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in name)
    return [name.upper(), f" {name} ", f"\t{name.title()}\u3000", full, full.upper(),
            name.replace("l", "\u2113"), f"\u00a0{name}"]


def test_every_spelling_of_an_account_counts_against_it_and_meets_its_lock(
        idp_world: IdpWorld) -> None:
    services = idp_world.services
    variants = spellings("li.si")
    # a right password in any spelling is the account's own sign-in
    r = login(idp_world.fresh("198.51.100.1"), username=variants[3], password=DEMO_PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    # five wrong guesses, each in another spelling from another address: one account
    for i, variant in enumerate(variants[:5]):
        r = login(idp_world.fresh(f"198.51.100.{10 + i}"), username=variant, password=WRONG)
        assert r.status_code == 200, variant
    user = services.org.get_user("li.si")
    assert user.failed_logins == 5 and user.locked_until is not None
    # locked: the right password, in any spelling, from anywhere
    for i, variant in enumerate(["li.si", *variants]):
        browser = idp_world.fresh(f"198.51.100.{30 + i}")
        r = login(browser, username=variant, password=DEMO_PASSWORD)
        assert r.status_code == 200 and error_of(r.text).startswith(LOCKED), variant
        assert SESSION_COOKIE not in r.cookies
    lockouts = [e["actor_user"] for e in audit_events(services, "login_lockout")]
    assert lockouts.count("li.si") == 1
    failures = [e for e in audit_events(services, "login") if e["outcome"] == "failure"]
    assert {e["actor_user"] for e in failures} == {"li.si"}  # one name, as it was meant
    services.org.unlock_user("li.si")


def test_a_burst_from_as_many_addresses_cannot_outrun_the_lock(idp_world: IdpWorld) -> None:
    """Twenty wrong guesses from twenty addresses, released at once (no address meets a
    delay), then the right password from a twenty-first: every guess is answered, the
    account is locked, every failure that was checked was counted, the right password
    does not get in."""
    services = idp_world.services
    threshold = services.settings.lockout_threshold
    pages = {}
    for i in range(20):
        browser = idp_world.fresh(f"192.0.2.{i + 1}")
        pages[i] = (browser, csrf_of(browser.get("/portal/login").text))
    answers: list[tuple[int, str, bool]] = []
    start = threading.Barrier(20)

    def guess(browser: TestClient, token: str) -> None:
        start.wait()
        r = browser.post("/portal/login", data={
            "csrf_token": token, "username": "wang.wu", "password": WRONG, "next": "/portal"},
            follow_redirects=False)
        answers.append((r.status_code, error_of(r.text), SESSION_COOKIE in r.cookies))

    threads = [threading.Thread(target=guess, args=pages[i]) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(answers) == 20
    assert all(status == 200 and not signed_in for status, _, signed_in in answers)
    user = services.org.get_user("wang.wu")
    assert user.locked_until is not None and user.failed_logins >= threshold
    # each guess was either checked and counted, or refused as locked: none lost
    wrong = [e for e in audit_events(services, "login")
             if e["actor_user"] == "wang.wu" and e["reason"] == "wrong password"]
    refused = [e for e in audit_events(services, "login")
               if e["actor_user"] == "wang.wu" and e["reason"] == "account locked"]
    assert len(wrong) == user.failed_logins and len(wrong) + len(refused) == 20
    r = login(idp_world.fresh("192.0.2.100"), username="wang.wu", password=DEMO_PASSWORD)
    assert error_of(r.text).startswith(LOCKED) and SESSION_COOKIE not in r.cookies
    services.org.unlock_user("wang.wu")


def test_forwarding_headers_from_an_untrusted_peer_are_no_new_address(
        idp_world: IdpWorld) -> None:
    """No trusted proxies are configured: a client naming another address in every
    header a proxy could set still waits out the delay of its own."""
    browser = idp_world.fresh("203.0.113.77")
    statuses = []
    for i in range(4):
        fake = f"10.0.{i}.{i + 1}"
        page = browser.get("/portal/login")
        r = browser.post("/portal/login", headers={
            "X-Forwarded-For": fake, "X-Real-IP": fake, "Forwarded": f"for={fake}",
            "True-Client-IP": fake, "X-Client-IP": fake, "CF-Connecting-IP": fake},
            data={"csrf_token": csrf_of(page.text), "username": f"nobody{i}",
                  "password": WRONG, "next": "/portal"}, follow_redirects=False)
        statuses.append(r.status_code)
    assert statuses == [200, 200, 429, 429]
    sources = {e["source_ip"] for e in audit_events(idp_world.services, "login")
               if (e["actor_user"] or "").startswith("nobody")}
    assert sources == {"203.0.113.77"}
