"""The attack of 2026-12-05 on the second factors, as a stranger over the real portal:
TOTP codes in other digits, the password step wiping the count of wrong codes, a
locked account's second factor still checked on another session, an administrator
removing the last second factor, a credential id PostgreSQL cannot hold
(docs/seams.md, "Attack of 2026-12-05 (second factors)")."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pyotp
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.cli.main import cli
from gateway.idp import totp
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.idp.oauth2.tables import sessions
from gateway.idp.passkeys.ceremonies import Ceremonies, RelyingParty
from gateway.idp.passkeys.store import PasskeyStore
from gateway.idp.passkeys.tables import webauthn_challenges
from gateway.idp.recovery_codes import RecoveryCodes
from gateway.services import Services
from gateway.tables import users
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    audit_events,
    close_services,
    csrf_of,
    login,
    make_services,
)
from tests.webauthn.soft_key import SoftKey
from tests.wiring import parts

BASE_URL = "http://localhost:8080"
RP_ID = "localhost"
ADDRESSES = itertools.count(1)
NAMES = itertools.count(1)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with settings_of_its_own(tmp_path_factory) as settings:
        made = make_services(dataclasses.replace(settings, issuer=BASE_URL))
        yield made
        close_services(made)


@pytest.fixture(scope="module")
def app(services: Services) -> Iterator[Any]:
    made = create_app(parts(services))
    with TestClient(made, base_url=BASE_URL):
        yield made


def browser(app: Any) -> TestClient:
    """A browser of its own: its cookies and its address."""
    n = next(ADDRESSES)
    return TestClient(app, base_url=BASE_URL, client=(f"198.18.{n // 250}.{n % 250 + 1}", 5000))


def person(services: Services, *, roles: tuple[str, ...] = ("staff",),
           secret: str | None = None) -> str:
    """A user of the test's own (with TOTP when ``secret`` is given)."""
    username = f"attack.{next(NAMES)}"
    services.org.add_user(username, username, "jgswj", list(roles), DEMO_PASSWORD,
                          must_change=False)
    if secret:
        totp.store(services, services.org.get_user(username), secret)
    return username


def post_json(client: TestClient, url: str, body: dict[str, Any]) -> Any:
    body = {"csrf_token": client.cookies.get("gg_csrf"), **body}
    return client.post(url, content=json.dumps(body),
                       headers={"content-type": "application/json"})


def at_totp_step(client: TestClient, username: str) -> str:
    """Signed in with the password, at the TOTP step; the step's CSRF token."""
    r = login(client, username)
    assert r.headers["location"].startswith("/portal/login/totp"), r.headers
    return csrf_of(client.get(r.headers["location"]).text)


def send_code(client: TestClient, csrf: str, code: str) -> Any:
    return client.post("/portal/login/totp", data={"csrf_token": csrf, "code": code,
                                                   "next": "/portal"}, follow_redirects=False)


def send_recovery(client: TestClient, csrf: str, code: str) -> Any:
    return client.post("/portal/login/recovery", data={
        "csrf_token": csrf, "recovery_code": code, "next": "/portal"}, follow_redirects=False)


def inside(client: TestClient) -> bool:
    return client.get("/portal", follow_redirects=False).status_code == 200


def failures(services: Services, username: str) -> int:
    return services.org.get_user(username).failed_logins


def wrong(secret: str) -> str:
    """A code no window of ``secret`` accepts in the next minute."""
    now = datetime.now(UTC)
    good = {pyotp.TOTP(secret).at(now + timedelta(seconds=30 * d)) for d in range(-1, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444", "555555",
                            "666666") if c not in good)


@pytest.mark.parametrize("code", ["١٢٣٤٥٦", "１２３４５６", "²²²²²²"])
def test_a_code_in_other_digits_is_a_wrong_code_not_a_500(services: Services, app: Any,
                                                           code: str) -> None:
    """str.isdigit() says yes to Arabic-Indic, full-width and superscript digits, and
    hmac.compare_digest raises TypeError on a non-ASCII str: it was a 500."""
    secret = pyotp.random_base32()
    username = person(services, secret=secret)
    client = browser(app)
    csrf = at_totp_step(client, username)
    r = send_code(client, csrf, code)
    assert r.status_code == 200 and 'role="alert"' in r.text
    assert failures(services, username) == 1
    assert audit_events(services, "mfa_verify")[-1]["reason"] == "wrong or reused code"


def test_the_password_does_not_wipe_the_count_of_wrong_codes(services: Services,
                                                            app: Any) -> None:
    """Whoever has the password signed in again after each few wrong codes, and the
    password's success set the account's failure count back to 0: the six digits could
    be tried without end. The count now goes back to 0 only when the sign-in is
    complete."""
    secret = pyotp.random_base32()
    username = person(services, secret=secret)
    threshold = services.settings.lockout_threshold
    client = browser(app)
    for _ in range(threshold - 1):
        csrf = at_totp_step(client, username)
        assert send_code(client, csrf, wrong(secret)).status_code == 200
    assert failures(services, username) == threshold - 1
    csrf = at_totp_step(client, username)  # the password again
    r = send_code(client, csrf, wrong(secret))
    assert "账号已锁定" in r.text
    assert services.org.get_user(username).locked_until is not None
    assert audit_events(services, "login_lockout")[-1]["actor_user"] == username
    # a complete sign-in still sets the count back
    with services.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == username).values(
            failed_logins=0, first_failed_at=None, locked_until=None))
    csrf = at_totp_step(client, username)
    send_code(client, csrf, wrong(secret))
    csrf = at_totp_step(client, username)
    assert send_code(client, csrf, pyotp.TOTP(secret).now()).status_code == 303
    assert failures(services, username) == 0
    # and a forced password change that completes it
    changer = person(services)
    services.org.require_password_change(changer, "test")
    assert login(client, changer, "wrong password 1").status_code == 200
    r = login(client, changer)
    assert r.headers["location"].startswith("/portal/login/change")
    assert failures(services, changer) == 1
    page = client.get(r.headers["location"])
    new = "蓝色 列车 穿过 十二座 桥"
    r = client.post("/portal/login/change", data={
        "csrf_token": csrf_of(page.text), "new_password": new, "confirm_password": new,
        "next": "/portal"}, follow_redirects=False)
    assert r.headers["location"] == "/portal" and failures(services, changer) == 0


def test_a_locked_account_passes_no_second_factor_on_another_session(
        services: Services, app: Any) -> None:
    """Sessions opened at the TOTP step before the lock kept guessing after it (only the
    session that locked was ended), and a right code lifted the lock: parallel sessions
    outran the lockout. A locked account's code, recovery code or key is now refused,
    its session ended, the refusal audited."""
    secret = pyotp.random_base32()
    username = person(services, secret=secret)
    user = services.org.get_user(username)
    codes = RecoveryCodes(services.engine, services.keys, services.clock).replace(user.id)
    waiting = [browser(app) for _ in range(3)]
    tokens = [at_totp_step(c, username) for c in waiting]
    locker = browser(app)
    for _ in range(services.settings.lockout_threshold):
        csrf = at_totp_step(locker, username)
        r = send_code(locker, csrf, wrong(secret))
    assert "账号已锁定" in r.text

    r = send_code(waiting[0], tokens[0], pyotp.TOTP(secret).now())
    assert r.status_code == 200 and "账号已锁定" in r.text and not inside(waiting[0])
    r = send_recovery(waiting[1], tokens[1], codes[0])
    assert r.status_code == 200 and "账号已锁定" in r.text and not inside(waiting[1])
    assert RecoveryCodes(services.engine, services.keys, services.clock).remaining(
        user.id) == 10  # the code is not spent on a locked account
    assert services.org.get_user(username).locked_until is not None  # not lifted
    refused = [e for e in audit_events(services, "mfa_verify") + audit_events(
        services, "mfa_recovery") if e["actor_user"] == username][-2:]
    assert all(e["outcome"] == "failure" and e["reason"] == "account locked"
               for e in refused)

    # the key step likewise: the key registered, then the account locked while a
    # session waits at the key step
    with services.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == username).values(
            failed_logins=0, first_failed_at=None, locked_until=None))
    key = with_key(services, username)
    client = waiting[2]
    client.cookies.clear()
    r = login(client, username)
    assert r.headers["location"].startswith("/portal/login/webauthn")
    options = post_json(client, "/portal/login/webauthn/options", {}).json()["options"]
    for _ in range(services.settings.lockout_threshold):
        services.org.record_failure(username, threshold=services.settings.lockout_threshold,
                                    window_seconds=services.settings.lockout_window_seconds)
    r = post_json(client, "/portal/login/webauthn", {"credential": key.get(options),
                                                      "next": "/portal"})
    assert r.status_code == 403 and r.json()["error"].startswith("账号已锁定")
    assert not inside(client)
    assert services.org.get_user(username).locked_until is not None
    last = [e for e in audit_events(services, "webauthn_verify")
            if e["actor_user"] == username][-1]
    assert last["outcome"] == "failure" and last["reason"] == "account locked"


def with_key(services: Services, username: str) -> SoftKey:
    """A key of the user's, registered as the account page would."""
    key = SoftKey(RP_ID, BASE_URL)
    assert PasskeyStore(services.engine, services.keys, services.clock).add(
        services.org.get_user(username).id, credential_id=key.id, public_key=key._cose(),
        sign_count=0, transports=[], name="desk key")
    return key


def signed_in_with(client: TestClient, username: str, key: SoftKey) -> None:
    """The password, then the key."""
    client.cookies.clear()
    r = login(client, username)
    assert r.headers["location"].startswith("/portal/login/webauthn")
    options = post_json(client, "/portal/login/webauthn/options", {}).json()["options"]
    assert post_json(client, "/portal/login/webauthn",
                     {"credential": key.get(options), "next": "/portal"}).status_code == 200
    assert inside(client)


def _admin_with_key(services: Services, app: Any, *, with_totp: bool) -> tuple[TestClient, str]:
    """A security administrator signed in with a key (and TOTP enrolled, if asked)."""
    secret = pyotp.random_base32() if with_totp else None
    username = person(services, roles=("secadmin",), secret=secret)
    client = browser(app)
    signed_in_with(client, username, with_key(services, username))
    return client, username


def _remove_key(services: Services, client: TestClient, username: str) -> Any:
    user = services.org.get_user(username)
    key_id = PasskeyStore(services.engine, services.keys, services.clock).of_user(user.id)[0].id
    page = client.get("/portal/account")
    return client.post("/portal/account/passkeys/remove", data={
        "csrf_token": csrf_of(page.text), "key_id": str(key_id), "password": DEMO_PASSWORD},
        follow_redirects=False)


def test_an_admin_keeps_a_second_factor(services: Services, app: Any) -> None:
    """An administrator (等保 L3: two factors) removed the one key they sign in with on
    the account page, and from then on the password alone led to enrolling a new
    factor. The last second factor of an admin is now kept (400, audited); with TOTP
    beside it the key goes."""
    client, username = _admin_with_key(services, app, with_totp=False)
    r = _remove_key(services, client, username)
    assert r.status_code == 400 and 'id="passkey-table"' in r.text
    assert "最后一个" in r.text
    user = services.org.get_user(username)
    assert PasskeyStore(services.engine, services.keys, services.clock).count(user.id) == 1
    refused = [e for e in audit_events(services, "webauthn_remove")
               if e["actor_user"] == username][-1]
    assert refused["outcome"] == "failure" and "last second factor" in refused["reason"]

    client, username = _admin_with_key(services, app, with_totp=True)
    r = _remove_key(services, client, username)
    assert r.status_code == 303 and "passkey_removed" in r.headers["location"]


def test_a_credential_id_with_a_nul_is_refused_not_a_500(services: Services,
                                                        app: Any) -> None:
    """PostgreSQL's text holds no NUL: looking such an id up raised a DataError."""
    client = browser(app)
    client.get("/portal/login")
    options = post_json(client, "/portal/login/passkey/options", {}).json()["options"]
    answer = SoftKey(RP_ID, BASE_URL).get(options)
    answer["id"] = "AA\x00"
    r = post_json(client, "/portal/login/passkey", {"credential": answer})
    assert r.status_code == 400 and r.json()["error"]
    assert "unknown credential" in audit_events(services, "webauthn_login")[-1]["reason"]


def test_a_first_authenticator_needs_a_fresh_sign_in(services: Services, app: Any) -> None:
    """The account page's "set up an authenticator" leads to the sign-in's enrolment,
    which an active session reached with no proof at all: a session cookie taken from
    an unattended browser added a TOTP (and recovery codes) that outlived it, where a
    passkey is refused. Now both need a sign-in of the last five minutes."""
    username = person(services)
    client = browser(app)
    r = login(client, username)
    assert r.headers["location"] == "/portal"
    with services.engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.username == username).values(
            authenticated_at=services.clock() - timedelta(seconds=301)))
    page = client.get("/portal/login/enrol?next=/portal/account")
    assert page.status_code == 403 and "超过 5 分钟" in page.text
    assert 'name="code"' not in page.text  # no secret, no QR code
    r = client.post("/portal/login/enrol", data={"csrf_token": client.cookies.get("gg_csrf"),
                                                 "code": "123456", "next": "/portal"},
                    follow_redirects=False)
    assert r.status_code == 403
    assert not services.org.get_user(username).has_totp
    refused = [e for e in audit_events(services, "mfa_enrol") if e["actor_user"] == username]
    assert refused and all(e["outcome"] == "failure" and "within 300 s" in e["reason"]
                           for e in refused)
    # a fresh sign-in sets one up
    client.cookies.clear()
    login(client, username)
    page = client.get("/portal/login/enrol?next=/portal/account")
    assert page.status_code == 200 and 'name="code"' in page.text


class RsaKey(SoftKey):
    """A software authenticator with an RSA key (COSE kty 3) of ``bits`` under ``alg``."""

    def __init__(self, bits: int, alg: int) -> None:
        super().__init__(RP_ID, BASE_URL)
        self.rsa = rsa.generate_private_key(65537, bits)
        self.alg = alg

    def _cose(self) -> bytes:
        n = self.rsa.public_key().public_numbers()
        return cbor2.dumps({1: 3, 3: self.alg, -1: n.n.to_bytes((n.n.bit_length() + 7) // 8,
                                                                "big"), -2: n.e.to_bytes(3, "big")})


def test_a_weak_or_unlisted_key_is_not_registered(services: Services, app: Any) -> None:
    """RS256 with a 1024-bit modulus was registered (py_webauthn checks the algorithm,
    not the key's size; 密评 and NIST SP 800-131A accept RSA from 2048 bits); an
    algorithm outside the accepted list (RS1, -65535) was and is refused."""
    username = person(services)
    client = browser(app)
    login(client, username)
    for key, why in ((RsaKey(1024, -257), "1024-bit RSA"), (RsaKey(1024, -65535), "alg")):
        r = post_json(client, "/portal/account/passkeys/options", {"name": "weak"})
        r = post_json(client, "/portal/account/passkeys",
                      {"credential": key.create(r.json()["options"])})
        assert r.status_code == 400 and r.json()["error"]
        last = [e for e in audit_events(services, "webauthn_register")
                if e["actor_user"] == username][-1]
        assert last["outcome"] == "failure" and why in last["reason"], last["reason"]
    user = services.org.get_user(username)
    assert PasskeyStore(services.engine, services.keys, services.clock).count(user.id) == 0


def test_removing_a_key_with_the_password_alone_needs_a_fresh_sign_in(
        services: Services, app: Any) -> None:
    """Whoever held a session and knew the password removed the key and, from then on,
    signed in with the password alone: removal asked for no second factor. With the
    password as the proof, the sign-in must now be of the last five minutes (a current
    TOTP code proves the second factor itself)."""
    username = person(services)
    key = with_key(services, username)
    user = services.org.get_user(username)
    store = PasskeyStore(services.engine, services.keys, services.clock)
    client = browser(app)
    signed_in_with(client, username, key)
    with services.engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.username == username).values(
            authenticated_at=services.clock() - timedelta(seconds=301)))
    r = _remove_key(services, client, username)
    assert r.status_code == 400 and "超过 5 分钟" in r.text
    assert store.count(user.id) == 1
    refused = [e for e in audit_events(services, "webauthn_remove")
               if e["actor_user"] == username][-1]
    assert refused["outcome"] == "failure" and "within 300 s" in refused["reason"]
    signed_in_with(client, username, key)
    assert _remove_key(services, client, username).status_code == 303
    assert store.count(user.id) == 0


def test_the_ceremony_checks_that_held(services: Services, app: Any,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Attacked and refused already (each refusal audited): an assertion without user
    presence; an expired challenge; a sub-domain's origin; the user handle of another
    real user; another user's credential registered again; a disabled user's passkey."""
    alice, bob = person(services), person(services)
    key = SoftKey(RP_ID, BASE_URL)
    client = browser(app)
    login(client, alice)
    r = post_json(client, "/portal/account/passkeys/options", {"name": "alice's"})
    assert post_json(client, "/portal/account/passkeys",
                     {"credential": key.create(r.json()["options"])}).status_code == 200
    thief = browser(app)
    login(thief, bob)  # the same authenticator's credential for a second user: refused
    r = post_json(thief, "/portal/account/passkeys/options", {"name": "stolen"})
    assert post_json(thief, "/portal/account/passkeys",
                     {"credential": key.create(r.json()["options"])}).status_code == 400
    assert "registered already" in audit_events(services, "webauthn_register")[-1]["reason"]

    def second_factor(**kw: Any) -> Any:
        client.cookies.clear()
        login(client, alice)
        options = post_json(client, "/portal/login/webauthn/options", {}).json()["options"]
        return post_json(client, "/portal/login/webauthn",
                         {"credential": key.get(options, **kw), "next": "/portal"})

    def refused(why: str) -> None:
        last = audit_events(services, "webauthn_verify")[-1]
        assert last["outcome"] == "failure" and why in last["reason"], last["reason"]
        assert not inside(client)

    with monkeypatch.context() as patch:
        patch.setattr("tests.webauthn.soft_key.UP", 0)
        assert second_factor().status_code == 400
    refused("User was not present")
    assert second_factor(origin="http://sub.localhost:8080").status_code == 400
    refused("origin")
    client.cookies.clear()
    login(client, alice)
    options = post_json(client, "/portal/login/webauthn/options", {}).json()["options"]
    with services.engine.begin() as conn:
        conn.execute(sa.update(webauthn_challenges).values(
            expires_at=services.clock() - timedelta(seconds=1)))
    r = post_json(client, "/portal/login/webauthn", {"credential": key.get(options)})
    assert r.status_code == 400
    refused("expired, used or never made")

    # passwordless: bob's user handle on alice's credential; alice disabled
    def passwordless() -> Any:
        stranger = browser(app)
        stranger.get("/portal/login")
        options = post_json(stranger, "/portal/login/passkey/options", {}).json()["options"]
        return post_json(stranger, "/portal/login/passkey", {"credential": key.get(options)})

    ceremonies = Ceremonies(RelyingParty("localhost", BASE_URL), PasskeyStore(
        services.engine, services.keys, services.clock), services.keys)
    key.user_handle = ceremonies.user_handle(services.org.get_user(bob))
    assert passwordless().status_code == 400
    assert "user handle" in audit_events(services, "webauthn_login")[-1]["reason"]
    key.user_handle = ceremonies.user_handle(services.org.get_user(alice))
    services.org.record_success(alice)
    with services.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == alice).values(
            status="disabled"))
    r = passwordless()
    assert r.status_code == 400 and SESSION_COOKIE not in r.headers.get("set-cookie", "")
    last = audit_events(services, "webauthn_login")[-1]
    assert last["outcome"] == "failure" and last["reason"] == "user disabled"


def test_totp_windows_and_replay(services: Services, app: Any) -> None:
    """Held already: the next window's code signs in once (a replay on another session
    is refused), a code two windows old is refused, each counted and audited."""
    secret = pyotp.random_base32()
    username = person(services, secret=secret)
    now = datetime.now(UTC)
    ahead, stale = pyotp.TOTP(secret).at(now + timedelta(seconds=30)), \
        pyotp.TOTP(secret).at(now - timedelta(seconds=60))
    first, second = browser(app), browser(app)
    csrf = at_totp_step(first, username)
    assert send_code(first, csrf, ahead).status_code == 303 and inside(first)
    csrf = at_totp_step(second, username)
    assert send_code(second, csrf, ahead).status_code == 200 and not inside(second)
    if stale not in (ahead, pyotp.TOTP(secret).at(now)):  # a coincidence of 6 digits
        assert send_code(second, csrf, stale).status_code == 200 and not inside(second)
    assert failures(services, username) >= 1
    mine = [e for e in audit_events(services, "mfa_verify") if e["actor_user"] == username]
    assert [e["outcome"] for e in mine][:2] == ["success", "failure"]


def test_a_disabled_user_passes_no_second_factor(services: Services, app: Any) -> None:
    """Disabled while at the TOTP step: the code was checked, recorded as a success and
    cleared the failures before the sign-in stopped. Now refused as a lock is."""
    secret = pyotp.random_base32()
    username = person(services, secret=secret)
    client = browser(app)
    csrf = at_totp_step(client, username)
    with services.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == username).values(
            status="disabled"))
    r = send_code(client, csrf, pyotp.TOTP(secret).now())
    assert r.status_code in (200, 303) and not inside(client)
    mine = [e for e in audit_events(services, "mfa_verify") if e["actor_user"] == username]
    assert [(e["outcome"], e["reason"]) for e in mine] == [("failure", "user disabled")]


def test_a_confirmed_authenticator_set_up_is_not_replayed(services: Services,
                                                          app: Any) -> None:
    """The account page's pending set-up (its sealed cookie, 15 minutes) answered again
    after its confirmation: with a wrong code it showed the now active secret, with a
    right one it issued a new set of recovery codes. Once confirmed it is spent."""
    username = person(services)
    client = browser(app)
    login(client, username)
    csrf = csrf_of(client.get("/portal/account").text)
    r = client.post("/portal/account/totp", data={"csrf_token": csrf, "password": DEMO_PASSWORD})
    pending = client.cookies.get("gg_totp_pending") or ""
    found = re.search(r'<code id="secret">([A-Z2-7]+)</code>', r.text)
    assert found, r.text
    secret = pyotp.TOTP(found.group(1))
    r = client.post("/portal/account/totp/confirm", data={"csrf_token": csrf,
                                                          "code": secret.now()})
    assert r.status_code == 200 and services.org.get_user(username).has_totp
    issued = len(audit_events(services, "recovery_codes_issued"))
    client.cookies.set("gg_totp_pending", pending, domain="localhost.local",
                       path="/portal/account")
    r = client.post("/portal/account/totp/confirm", data={"csrf_token": csrf, "code": "000000"})
    assert r.status_code == 400 and secret.secret not in r.text
    client.cookies.set("gg_totp_pending", pending, domain="localhost.local",
                       path="/portal/account")
    r = client.post("/portal/account/totp/confirm", data={
        "csrf_token": csrf, "code": secret.at(datetime.now(UTC) + timedelta(seconds=30))})
    assert r.status_code == 400 and len(audit_events(services, "recovery_codes_issued")) == issued


def test_wrong_codes_confirming_an_authenticator_lock_as_elsewhere(services: Services,
                                                                   app: Any) -> None:
    """Wrong codes at the account page's set-up confirmation counted toward the lock but
    the lock had no ``login_lockout`` record and left the session on: as everywhere
    else now."""
    username = person(services)
    client = browser(app)
    login(client, username)
    csrf = csrf_of(client.get("/portal/account").text)
    client.post("/portal/account/totp", data={"csrf_token": csrf, "password": DEMO_PASSWORD})
    for _ in range(services.settings.lockout_threshold):
        r = client.post("/portal/account/totp/confirm", data={
            "csrf_token": csrf, "code": "000000"}, follow_redirects=False)
    assert services.org.get_user(username).locked_until is not None
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login")
    lock = [e for e in audit_events(services, "login_lockout") if e["actor_user"] == username]
    assert len(lock) == 1 and lock[0]["outcome"] == "deny"
    assert client.get("/portal/account", follow_redirects=False).status_code == 303


def lock(services: Services, username: str) -> None:
    """The account locked by failures elsewhere."""
    for _ in range(services.settings.lockout_threshold):
        services.org.record_failure(username, threshold=services.settings.lockout_threshold,
                                    window_seconds=services.settings.lockout_window_seconds)


def test_a_locked_account_enrols_no_factor_at_the_sign_in(services: Services,
                                                          app: Any) -> None:
    """An administrator's required enrolment (TOTP, or a key under
    webauthn_required_for_admins) reached before the lock went on after it and made
    the session active. Refused as at the other steps."""
    username = person(services, roles=("secadmin",))
    client = browser(app)
    r = login(client, username)
    assert r.headers["location"].startswith("/portal/login/enrol")
    page = client.get(r.headers["location"])
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page.text)
    assert secret, page.text
    lock(services, username)
    r = client.post("/portal/login/enrol", data={
        "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret.group(1)).now(),
        "next": "/portal"}, follow_redirects=False)
    assert "账号已锁定" in r.text and not inside(client)
    assert not services.org.get_user(username).has_totp
    last = [e for e in audit_events(services, "mfa_enrol") if e["actor_user"] == username][-1]
    assert last["outcome"] == "failure" and last["reason"] == "account locked"

    other = person(services, roles=("secadmin",))
    was = services.settings
    services.settings = dataclasses.replace(was, webauthn_required_for_admins=True)
    try:
        r = login(client, other)
        assert r.headers["location"].startswith("/portal/login/passkey-enrol")
        options = post_json(client, "/portal/account/passkeys/options", {"name": "k"})
        lock(services, other)
        r = post_json(client, "/portal/account/passkeys", {
            "credential": SoftKey(RP_ID, BASE_URL).create(options.json()["options"])})
    finally:
        services.settings = was
    assert r.status_code == 403 and r.json()["error"].startswith("账号已锁定")
    assert not inside(client)
    user = services.org.get_user(other)
    assert PasskeyStore(services.engine, services.keys, services.clock).count(user.id) == 0


def test_transports_that_are_no_list_are_not_kept(services: Services, app: Any) -> None:
    """``"transports": "usb"`` (a string, not a list) was kept letter by letter:
    "u,s,b". What is not a list of strings is no transport."""
    username = person(services)
    client = browser(app)
    login(client, username)
    r = post_json(client, "/portal/account/passkeys/options", {"name": "odd"})
    answer = SoftKey(RP_ID, BASE_URL).create(r.json()["options"])
    answer["response"]["transports"] = "usb"
    assert post_json(client, "/portal/account/passkeys", {"credential": answer}
                     ).status_code == 200
    user = services.org.get_user(username)
    [key] = PasskeyStore(services.engine, services.keys, services.clock).of_user(user.id)
    assert key.transports == ()


def test_a_key_id_past_the_column_is_no_such_key(services: Services, app: Any) -> None:
    """``key_id=99999999999999999999`` on the account page was a 500 (SQLite's
    OverflowError, PostgreSQL's integer out of range), and a traceback in
    ``govgate passkey remove --id``; it is no such key."""
    username = person(services)
    client = browser(app)
    login(client, username)
    page = client.get("/portal/account")
    r = client.post("/portal/account/passkeys/remove", data={
        "csrf_token": csrf_of(page.text), "key_id": "9" * 20, "password": DEMO_PASSWORD},
        follow_redirects=False)
    assert r.status_code == 404 and "没有这个密钥" in r.text
    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url, "LC_ALL": "C.UTF-8"}
    done = CliRunner().invoke(cli, ["passkey", "remove", "--user", username, "--id", "9" * 20],
                              env=env)
    assert done.exit_code == 1 and "has no key with id" in done.output
