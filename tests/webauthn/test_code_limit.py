"""The second factor's own bound on guessing (NIST SP 800-63B 5.2.2), through the real
sign-in pages over HTTP: wrong TOTP and recovery codes in a row lock the codes until an
administrator unlocks, whatever the account lock's window did meanwhile; two gateway
instances on one database count the same failures and refuse each other's spent codes
(docs/webauthn.md, "Wrong codes in a row"; docs/seams.md, fourth session)."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pyotp
import pytest
from starlette.testclient import TestClient

from audit import AuditLog
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.idp import totp
from gateway.idp.recovery_codes import RecoveryCodes
from gateway.services import Services, open_services
from gateway.settings import Settings
from tests.conftest import settings_of_its_own
from tests.gateway.test_cli import here
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    audit_events,
    close_services,
    csrf_of,
    frozen_now,
    login,
    make_services,
)
from tests.wiring import parts

BASE_URL = "http://localhost:8080"
LIMIT = 7  # above the account lock's 5, so the lock's window has to pass in between
ADDRESSES = itertools.count(1)
NAMES = itertools.count(1)
LOCKED_ZH = "连续输错动态口令或恢复码的次数过多"
LOCKED_EN = "Too many wrong codes in a row"


@dataclasses.dataclass
class World:
    settings: Settings
    clock: FrozenClock
    a: Services  # the first gateway instance (with the demo's state)
    b: Services  # a second one on the same database
    app_a: Any
    app_b: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = frozen_now()
    with settings_of_its_own(tmp_path_factory) as plain:
        settings = dataclasses.replace(plain, issuer=BASE_URL, mfa_failure_limit=LIMIT)
        a = make_services(settings, clock=clock)
        b = open_services(settings, clock=clock)
        b.audit = AuditLog(b.engine, keys=b.keys, writer_id="idp-test-b",
                           clock=lambda: clock().timestamp())
        app_a, app_b = create_app(parts(a)), create_app(parts(b))
        try:
            with TestClient(app_a, base_url=BASE_URL), TestClient(app_b, base_url=BASE_URL):
                yield World(settings, clock, a, b, app_a, app_b)
        finally:
            close_services(b)
            close_services(a)


def browser(app: Any, lang: str | None = None) -> TestClient:
    """A browser of its own: its cookies and its address (a guesser with many)."""
    n = next(ADDRESSES)
    client = TestClient(app, base_url=BASE_URL, client=(f"198.19.{n // 250}.{n % 250 + 1}",
                                                        5000))
    if lang:
        client.cookies.set("gg_lang", lang)
    return client


def person(world: World) -> tuple[str, str]:
    username = f"coder.{next(NAMES)}"
    secret = pyotp.random_base32()
    world.a.org.add_user(username, username, "jgswj", ["staff"], DEMO_PASSWORD,
                         must_change=False)
    totp.store(world.a, world.a.org.get_user(username), secret)
    return username, secret


def code_now(world: World, secret: str) -> str:
    return pyotp.TOTP(secret).at(world.clock())


def wrong(world: World, secret: str) -> str:
    """A code no window of ``secret`` accepts around the clock's now."""
    now = world.clock()
    good = {pyotp.TOTP(secret).at(now + timedelta(seconds=30 * d)) for d in range(-2, 3)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in good)


def at_totp_step(client: TestClient, username: str) -> tuple[str, str]:
    """Signed in with the password, at the TOTP step: (its CSRF token, the page)."""
    r = login(client, username)
    assert r.headers["location"].startswith("/portal/login/totp"), r.headers
    page = client.get(r.headers["location"]).text
    return csrf_of(page), page


def send_code(client: TestClient, csrf: str, code: str) -> Any:
    return client.post("/portal/login/totp", data={"csrf_token": csrf, "code": code,
                                                   "next": "/portal"}, follow_redirects=False)


def send_recovery(client: TestClient, csrf: str, code: str) -> Any:
    return client.post("/portal/login/recovery", data={
        "csrf_token": csrf, "recovery_code": code, "next": "/portal"}, follow_redirects=False)


def error_of(html: str) -> str:
    m = re.search(r'role="alert"[^>]*>(.*?)</', html, re.S)
    return m.group(1).strip() if m else ""


def inside(client: TestClient) -> bool:
    return client.get("/portal", follow_redirects=False).status_code == 200


def wait_out_the_lock(world: World) -> None:
    """The account lock's window passes (and the address delays with it)."""
    world.clock.advance(world.settings.lockout_window_seconds + 61)


def guess(world: World, username: str, secret: str, times: int, *,
          app: Any = None) -> Any:
    """``times`` wrong codes, signing in again with the password whenever the session
    ended, waiting out each account lock: the patient guesser with the password."""
    last = None
    client, csrf = None, ""
    for _ in range(times):
        if client is None:
            client = browser(app or world.app_a)
            csrf, _ = at_totp_step(client, username)
        last = send_code(client, csrf, wrong(world, secret))
        if last.status_code != 200 or "/portal/login\"" in last.text or 'name="username"' in \
                last.text:
            client = None  # the session ended (the account lock, or the codes' lock)
            if "账号已锁定" in last.text:
                wait_out_the_lock(world)
    return last


def test_wrong_codes_in_a_row_lock_the_codes_past_the_account_lock(world: World) -> None:
    """Before, the account lock (5 in 15 minutes, then a fresh count) was the only bound:
    after it ran out the next codes were checked again, for ever. Now the LIMIT-th wrong
    code in a row locks the codes: the sign-in page says so, the session ends, one
    ``mfa_lockout`` record; after the account lock's window the right code and a
    recovery code are still refused unchecked (the recovery code not spent)."""
    username, secret = person(world)
    user = world.a.org.get_user(username)
    recovery = RecoveryCodes(world.a.engine, world.a.keys, world.a.clock).replace(user.id)
    last = guess(world, username, secret, LIMIT)
    assert last.status_code == 403 and error_of(last.text).startswith(LOCKED_ZH)
    locks = [e for e in audit_events(world.a, "mfa_lockout") if e["actor_user"] == username]
    assert len(locks) == 1 and locks[0]["outcome"] == "deny"
    assert locks[0]["reason"].startswith(f"codes locked: {LIMIT} wrong codes in a row")

    wait_out_the_lock(world)  # the account lock is over; the codes' is not
    client = browser(world.app_a)
    csrf, page = at_totp_step(client, username)
    assert error_of(page).startswith(LOCKED_ZH)  # said before a code is typed
    r = send_code(client, csrf, code_now(world, secret))
    assert r.status_code == 403 and error_of(r.text).startswith(LOCKED_ZH)
    assert not inside(client)
    client = browser(world.app_a)
    csrf, _ = at_totp_step(client, username)
    r = send_recovery(client, csrf, recovery[0])
    assert r.status_code == 403 and not inside(client)
    assert RecoveryCodes(world.a.engine, world.a.keys, world.a.clock).remaining(user.id) == 10
    refused = [e for e in audit_events(world.a, "mfa_verify") + audit_events(
        world.a, "mfa_recovery") if e["actor_user"] == username
        and e["reason"].startswith("codes locked")]
    assert len(refused) == 2
    # English, from the page's language
    client = browser(world.app_a, "en")
    csrf, page = at_totp_step(client, username)
    assert error_of(page).startswith(LOCKED_EN)


def test_recovery_codes_count_with_the_totp_codes(world: World) -> None:
    """Wrong recovery codes are guesses too: LIMIT of them, mixed with TOTP codes, lock."""
    username, secret = person(world)
    guess(world, username, secret, LIMIT - 1)
    wait_out_the_lock(world)
    client = browser(world.app_a)
    csrf, _ = at_totp_step(client, username)
    r = send_recovery(client, csrf, "aaaaa-bbbbb")
    assert r.status_code == 403 and error_of(r.text).startswith(LOCKED_ZH)


def test_a_right_code_starts_the_count_again(world: World) -> None:
    """The limit is of failures in a row: the owner's own sign-in forgives them."""
    username, secret = person(world)
    guess(world, username, secret, LIMIT - 1)
    wait_out_the_lock(world)
    client = browser(world.app_a)
    csrf, _ = at_totp_step(client, username)
    r = send_code(client, csrf, code_now(world, secret))
    assert r.status_code == 303 and inside(client)
    world.clock.advance(60)  # the next step, not a replay of the code
    last = guess(world, username, secret, LIMIT - 1)
    assert last.status_code == 200 and not error_of(last.text).startswith(LOCKED_ZH)


def test_an_administrators_unlock_lifts_the_codes_lock(world: World) -> None:
    """``govgate user unlock`` (as the console's unlock) lifts it; so does a reset of the
    authenticator (nothing left to guess). Audited as before (``user_unlocked``)."""
    username, secret = person(world)
    guess(world, username, secret, LIMIT)
    env = {"GOVGATE_HOME": str(world.settings.home),
           "GOVGATE_DATABASE_URL": world.settings.database_url}
    done = here(env, "user", "unlock", username)
    assert done.returncode == 0, done.stderr
    client = browser(world.app_a)
    csrf, page = at_totp_step(client, username)
    assert not error_of(page)
    r = send_code(client, csrf, code_now(world, secret))
    assert r.status_code == 303 and inside(client)

    other, other_secret = person(world)
    guess(world, other, other_secret, LIMIT)
    assert here(env, "user", "reset-totp", other).returncode == 0
    totp.store(world.a, world.a.org.get_user(other), other_secret)  # enrolled again
    client = browser(world.app_a)
    csrf, page = at_totp_step(client, other)
    r = send_code(client, csrf, code_now(world, other_secret))
    assert r.status_code == 303 and inside(client)


def test_two_instances_share_the_count_and_the_spent_codes(world: World) -> None:
    """Guesses spread over two gateway instances on one database meet one limit, and a
    code accepted by one is refused by the other (RFC 6238 5.2: accepted once)."""
    username, secret = person(world)
    guess(world, username, secret, LIMIT - 1, app=world.app_a)
    wait_out_the_lock(world)
    last = guess(world, username, secret, 1, app=world.app_b)
    assert last.status_code == 403 and error_of(last.text).startswith(LOCKED_ZH)

    owner, owner_secret = person(world)
    first = browser(world.app_a)
    csrf, _ = at_totp_step(first, owner)
    code = code_now(world, owner_secret)
    assert send_code(first, csrf, code).status_code == 303 and inside(first)
    seen = browser(world.app_b)  # the code seen over the shoulder, sent to the other
    csrf, _ = at_totp_step(seen, owner)
    r = send_code(seen, csrf, code)
    assert r.status_code == 200 and not inside(seen)
    assert "错误或已使用" in error_of(r.text)


def test_the_account_page_counts_wrong_codes_as_proof(world: World) -> None:
    """A session's owner proving with a code on the account page meets the same limit
    (a stolen session cannot guess the authenticator's codes there either); the
    password remains a proof."""
    username, secret = person(world)
    guess(world, username, secret, LIMIT - 1)
    wait_out_the_lock(world)
    client = browser(world.app_a)
    csrf, _ = at_totp_step(client, username)
    assert send_code(client, csrf, code_now(world, secret)).status_code == 303
    guess(world, username, secret, LIMIT - 1)  # the count starts again after the sign-in
    # the account page's proof: one more wrong code locks the codes (its own count)
    page = client.get("/portal/account")
    r = client.post("/portal/account/recovery-codes", data={
        "csrf_token": csrf_of(page.text), "code": wrong(world, secret)},
        follow_redirects=False)
    assert r.status_code in (200, 400)
    locks = [e for e in audit_events(world.a, "mfa_lockout") if e["actor_user"] == username]
    assert len(locks) == 1


def test_codes_sent_at_once_on_many_sessions_meet_the_limit(world: World) -> None:
    """Sessions prepared at the code step, then a code on each at the same moment: each
    attempt is counted before its code is checked, so only the ones the limit leaves
    are checked (the rest are refused unchecked: "codes locked"), whatever the order.
    Counted after the check, every attempt read the count before the others' failures
    were written and was checked."""
    from concurrent.futures import ThreadPoolExecutor

    username, secret = person(world)
    guess(world, username, secret, LIMIT - 3)  # three left
    wait_out_the_lock(world)
    prepared = []
    for _ in range(8):
        client = browser(world.app_a if len(prepared) % 2 else world.app_b)
        csrf, _ = at_totp_step(client, username)
        prepared.append((client, csrf))
    code = wrong(world, secret)
    with ThreadPoolExecutor(len(prepared)) as pool:
        answers = list(pool.map(lambda p: send_code(p[0], p[1], code), prepared))
    checked = [e for e in audit_events(world.a, "mfa_verify")
               if e["actor_user"] == username and e["reason"] == "wrong or reused code"]
    refused = [e for e in audit_events(world.a, "mfa_verify")
               if e["actor_user"] == username and e["reason"].startswith("codes locked")]
    assert len(checked) == LIMIT and len(refused) == 8 - 3
    assert sorted(a.status_code for a in answers) == [200, 200] + [403] * 6


def test_the_administrators_console_shows_the_codes_lock_and_unlocks_it(world: World) -> None:
    """The system administrator's user list offered 解锁 only to an account whose lock
    was on: one whose codes were locked showed 正常 and no way to lift it there."""
    from gateway.idp.oauth2.provider import SESSION_COOKIE

    username, secret = person(world)
    guess(world, username, secret, LIMIT)
    wait_out_the_lock(world)
    if world.a.org.get_user("sysadmin").must_change:  # the first password, changed
        world.a.org.change_password("sysadmin", "Quiet-River-Lantern-2026")
    token, _ = parts(world.a).provider.store.create_session(
        "sysadmin", "active", amr="pwd otp", absolute_seconds=3600)
    admin = browser(world.app_a)
    admin.cookies.set(SESSION_COOKIE, token)
    page = admin.get("/portal/admin/users", params={"q": username})
    assert page.status_code == 200, page.text[:300]
    row = re.search(rf'<tr data-user="{re.escape(username)}">(.*?)</tr>', page.text, re.S)
    assert row and "验证码已锁定" in row.group(1) and 'data-action="unlock"' in row.group(1)
    r = admin.post(f"/portal/admin/users/{username}/unlock",
                   data={"csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code in (200, 303), r.text[:300]
    client = browser(world.app_a)
    csrf, page_text = at_totp_step(client, username)
    assert not error_of(page_text)
    assert send_code(client, csrf, code_now(world, secret)).status_code == 303
    assert inside(client)
