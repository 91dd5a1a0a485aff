"""WebAuthn in the portal against a software authenticator (tests/webauthn/soft_key.py):
registration on the account page, the key as the second factor, two keys, a wrong
origin or RP ID, a replayed challenge, a sign count that goes back, a removed key,
passwordless sign-in, and admins who must use a key. Every result is audited."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway import tables as gateway_tables
from gateway.app import create_app
from gateway.cli.main import cli
from gateway.compliance.identification import admin_two_factor
from gateway.compliance.model import State
from gateway.errors import SettingsError
from gateway.idp import totp
from gateway.idp.oauth2.tables import sessions
from gateway.idp.passkeys.tables import webauthn_challenges, webauthn_credentials
from gateway.login_throttle import LoginThrottle
from gateway.services import Services
from gateway.settings import load_settings
from gateway.tables import login_throttle, users
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    audit_events,
    close_services,
    csrf_of,
    login,
    make_services,
)
from tests.schema import assert_mirrors
from tests.webauthn.soft_key import SoftKey
from tests.wiring import parts

BASE_URL = "http://localhost:8080"
RP_ID = "localhost"
ADMIN_PASSWORD = "Admin-Passw0rd-2026!"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """One gateway for the module (each test signs in as a user of its own), its issuer
    on localhost: the RP ID and origin default to the issuer's."""
    with settings_of_its_own(tmp_path_factory) as settings:
        made = make_services(dataclasses.replace(settings, issuer=BASE_URL))
        yield made
        close_services(made)


@pytest.fixture(scope="module")
def app(services: Services) -> Iterator[Any]:
    """The module's app, started once (its shutdown closes the audit log)."""
    made = create_app(parts(services))
    with TestClient(made, base_url=BASE_URL):
        yield made


ADDRESSES = itertools.count(1)


@pytest.fixture
def browser(app: Any) -> TestClient:
    """A browser of its own (its own cookies and address: the sign-in throttle's delay
    is per address) on the module's app."""
    n = next(ADDRESSES)
    return TestClient(app, base_url=BASE_URL, client=(f"198.51.{n // 250}.{n % 250 + 1}", 50000))


def post_json(client: TestClient, url: str, body: dict[str, Any]) -> Any:
    body = {"csrf_token": client.cookies.get("gg_csrf"), **body}
    return client.post(url, content=json.dumps(body),
                       headers={"content-type": "application/json"})


def register(client: TestClient, key: SoftKey, name: str = "office key", **kw: Any) -> Any:
    r = post_json(client, "/portal/account/passkeys/options", {"name": name})
    assert r.status_code == 200, r.text
    assert r.json()["options"]["rp"]["id"] == RP_ID
    return post_json(client, "/portal/account/passkeys",
                     {"credential": key.create(r.json()["options"], **kw)})


def second_factor(client: TestClient, key: SoftKey, **kw: Any) -> Any:
    r = post_json(client, "/portal/login/webauthn/options", {})
    assert r.status_code == 200, r.text
    return post_json(client, "/portal/login/webauthn",
                     {"credential": key.get(r.json()["options"], **kw), "next": "/portal"})


def use_ceremony(client: TestClient, token: str) -> None:
    """The browser holds ``token`` as its one ceremony cookie."""
    for cookie in [c for c in client.cookies.jar if c.name == "gg_webauthn"]:
        client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    client.cookies.set("gg_webauthn", token, domain="localhost.local", path="/portal")


def signed_in(client: TestClient, username: str) -> None:
    r = login(client, username)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.headers


def events(services: Services, kind: str, user: str) -> list[dict[str, Any]]:
    """The user's audit records of ``kind``, ``extra`` read."""
    return [{**e, "extra": json.loads(e["extra"]) if isinstance(e["extra"], str) else e["extra"]}
            for e in audit_events(services, kind) if e["actor_user"] == user]


def person(services: Services, username: str) -> None:
    """A staff member of this test's own."""
    services.org.add_user(username, username, "jgswj", ["staff"], DEMO_PASSWORD,
                          must_change=False)


def amr_of(services: Services, client: TestClient, username: str) -> str:
    with services.engine.connect() as conn:
        return str(conn.execute(sa.select(sessions.c.amr).where(
            sessions.c.username == username, sessions.c.revoked_at.is_(None))
            .order_by(sessions.c.created_at.desc())).scalars().first())


def test_register_then_sign_in_with_the_key(services: Services, browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    signed_in(browser, "zhang.san")
    page = browser.get("/portal/account")
    assert 'id="passkeys-none"' in page.text and "/portal/static/webauthn.js" in page.text
    r = register(browser, key)
    assert r.status_code == 200 and r.json()["redirect"].startswith("/portal/account?done=")
    page = browser.get(r.json()["redirect"])
    assert "office key" in page.text and 'id="passkey-table"' in page.text
    ok = events(services, "webauthn_register", "zhang.san")
    assert ok[-1]["outcome"] == "success" and ok[-1]["extra"]["key"] == "office key"

    browser.cookies.clear()
    r = login(browser, "zhang.san")
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login/webauthn")
    assert browser.get("/portal", follow_redirects=False).status_code == 303  # not yet in
    page = browser.get(r.headers["location"])
    assert 'id="webauthn-verify"' in page.text and 'id="use-totp"' not in page.text
    r = second_factor(browser, key)
    assert r.status_code == 200 and r.json() == {"redirect": "/portal"}
    assert browser.get("/portal", follow_redirects=False).status_code == 200
    assert amr_of(services, browser, "zhang.san") == "pwd hwk"
    assert events(services, "webauthn_verify", "zhang.san")[-1]["outcome"] == "success"
    recent = browser.get("/portal/account?lang=en").text
    assert "Security key" in recent  # among the recent sign-ins


def test_two_keys_either_signs_in(services: Services, browser: TestClient) -> None:
    first, second = SoftKey(RP_ID, BASE_URL), SoftKey(RP_ID, BASE_URL)
    signed_in(browser, "li.si")
    assert register(browser, first, "desk key").status_code == 200
    assert register(browser, second, "phone").status_code == 200
    for bad in ("", " ", "x" * 65, "a\x01b"):
        r = post_json(browser, "/portal/account/passkeys/options", {"name": bad})
        assert r.status_code == 400 and r.json()["error"] == "名称须为 1 到 64 个字符。"
    # the same authenticator twice is refused (it is in excludeCredentials too)
    r = post_json(browser, "/portal/account/passkeys/options", {"name": "again"})
    excluded = {c["id"] for c in r.json()["options"]["excludeCredentials"]}
    assert excluded == {first.id, second.id}
    for key in (second, first):
        browser.cookies.clear()
        login(browser, "li.si")
        options = post_json(browser, "/portal/login/webauthn/options", {}).json()["options"]
        assert {c["id"] for c in options["allowCredentials"]} == {first.id, second.id}
        assert second_factor(browser, key).status_code == 200
    names = [e["extra"]["key"] for e in events(services, "webauthn_verify", "li.si")]
    assert names == ["phone", "desk key"]


def test_wrong_origin_or_rp_id_is_refused(services: Services, browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    signed_in(browser, "zhao.min")
    for bad in ({"origin": "http://localhost.evil.example:8080"}, {"rp_id": "evil.example"}):
        r = register(browser, key, **bad)
        assert r.status_code == 400 and "error" in r.json()
    failures = events(services, "webauthn_register", "zhao.min")
    assert [e["outcome"] for e in failures] == ["failure", "failure"]
    assert "origin" in failures[0]["reason"] and "RP ID" in failures[1]["reason"]
    assert 'id="passkeys-none"' in browser.get("/portal/account").text  # nothing kept

    assert register(browser, key).status_code == 200
    browser.cookies.clear()
    login(browser, "zhao.min")
    for bad in ({"origin": "http://127.0.0.1:8080"}, {"rp_id": "127.0.0.1"}):
        r = second_factor(browser, key, **bad)
        assert r.status_code == 400
    assert browser.get("/portal", follow_redirects=False).status_code == 303
    assert [e["outcome"] for e in events(services, "webauthn_verify", "zhao.min")] == [
        "failure", "failure"]


def test_a_challenge_answers_once(services: Services, browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    signed_in(browser, "wang.wu")
    assert register(browser, key).status_code == 200
    browser.cookies.clear()
    login(browser, "wang.wu")
    r = post_json(browser, "/portal/login/webauthn/options", {})
    ceremony = browser.cookies.get("gg_webauthn")
    answer = {"credential": key.get(r.json()["options"]), "next": "/portal"}
    assert post_json(browser, "/portal/login/webauthn", answer).status_code == 200
    # the same answer under the same ceremony cookie, from a new sign-in at the key step
    browser.cookies.clear()
    login(browser, "wang.wu")
    use_ceremony(browser, ceremony or "")
    again = post_json(browser, "/portal/login/webauthn", answer)
    assert again.status_code == 400
    assert browser.get("/portal", follow_redirects=False).status_code == 303
    last = events(services, "webauthn_verify", "wang.wu")[-1]
    assert last["outcome"] == "failure" and "expired, used or never made" in last["reason"]
    # a challenge made for another session does not serve this one either
    other = TestClient(browser.app, base_url=BASE_URL)
    login(other, "wang.wu")
    theirs = post_json(other, "/portal/login/webauthn/options", {}).json()["options"]
    use_ceremony(browser, other.cookies.get("gg_webauthn") or "")
    r = post_json(browser, "/portal/login/webauthn",
                  {"credential": key.get(theirs), "next": "/portal"})
    assert r.status_code == 400
    assert browser.get("/portal", follow_redirects=False).status_code == 303


def test_a_sign_count_going_back_is_a_clone(services: Services, browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    signed_in(browser, "zhou.ling")
    assert register(browser, key).status_code == 200
    browser.cookies.clear()
    login(browser, "zhou.ling")
    assert second_factor(browser, key, count=7).status_code == 200
    browser.cookies.clear()
    login(browser, "zhou.ling")
    r = second_factor(browser, key, count=7)
    assert r.status_code == 400 and "复制" in r.json()["error"]  # may have been copied
    clone = events(services, "webauthn_clone", "zhou.ling")
    assert len(clone) == 1 and clone[0]["outcome"] == "deny"
    assert "sign count 7 not above the stored 7" in clone[0]["reason"]
    assert browser.get("/portal", follow_redirects=False).status_code == 303
    assert second_factor(browser, key, count=8).status_code == 200  # the genuine key goes on


def test_a_removed_key_no_longer_signs_in(services: Services, browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    person(services, "sun.qi")
    signed_in(browser, "sun.qi")
    assert register(browser, SoftKey(RP_ID, BASE_URL), "another").status_code == 200
    assert register(browser, key, "to remove").status_code == 200
    page = browser.get("/portal/account")
    key_ids = [part.split('"')[0] for part in page.text.split('data-key="')[1:]]
    for key_id in key_ids:
        wrong = browser.post("/portal/account/passkeys/remove", data={
            "csrf_token": browser.cookies.get("gg_csrf"), "key_id": key_id,
            "password": "not-it"})
        assert wrong.status_code == 400 and 'id="error-passkeys"' in wrong.text
        r = browser.post("/portal/account/passkeys/remove", data={
            "csrf_token": browser.cookies.get("gg_csrf"), "key_id": key_id,
            "password": DEMO_PASSWORD}, follow_redirects=False)
        assert r.status_code == 303 and "done=passkey_removed" in r.headers["location"]
    assert 'id="passkeys-none"' in browser.get("/portal/account").text
    assert events(services, "webauthn_remove", "sun.qi")[-1]["extra"]["key"] == "to remove"
    services.org.record_success("sun.qi")  # the wrong passwords above
    browser.cookies.clear()
    assert login(browser, "sun.qi").headers["location"] == "/portal"  # password alone now
    r = post_json(browser, "/portal/login/passkey/options", {})
    r = post_json(browser, "/portal/login/passkey", {"credential": key.get(r.json()["options"])})
    assert r.status_code == 400
    assert "unknown credential" in audit_events(services, "webauthn_login")[-1]["reason"]


def test_passwordless_sign_in(services: Services, browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    person(services, "zheng.ba")
    signed_in(browser, "zheng.ba")
    assert register(browser, key, "passkey").status_code == 200
    browser.cookies.clear()
    page = browser.get("/portal/login")
    assert 'id="passkey-login"' in page.text
    r = post_json(browser, "/portal/login/passkey/options", {})
    options = r.json()["options"]
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    # no user verification: refused
    r = post_json(browser, "/portal/login/passkey",
                  {"credential": key.get(options, verified=False), "next": "/portal/catalogue"})
    assert r.status_code == 400
    r = post_json(browser, "/portal/login/passkey/options", {})
    r = post_json(browser, "/portal/login/passkey",
                  {"credential": key.get(r.json()["options"]), "next": "/portal/catalogue"})
    assert r.status_code == 200 and r.json()["redirect"] == "/portal/catalogue"
    assert browser.get("/portal", follow_redirects=False).status_code == 200
    assert amr_of(services, browser, "zheng.ba") == "hwk mfa"
    done = [e["outcome"] for e in events(services, "webauthn_login", "zheng.ba")]
    assert done[-2:] == ["failure", "success"]
    # the operator may turn passwordless sign-in off
    was = services.settings
    services.settings = dataclasses.replace(was, webauthn_passwordless=False)
    try:
        browser.cookies.clear()
        assert 'id="passkey-login"' not in browser.get("/portal/login").text
        assert post_json(browser, "/portal/login/passkey/options", {}).status_code == 404
    finally:
        services.settings = was
    # another user's handle on this credential is refused
    key.user_handle = b"\x00" * 32
    browser.cookies.clear()
    browser.get("/portal/login")
    r = post_json(browser, "/portal/login/passkey/options", {})
    r = post_json(browser, "/portal/login/passkey", {"credential": key.get(r.json()["options"])})
    assert r.status_code == 400 and "user handle" in audit_events(
        services, "webauthn_login")[-1]["reason"]


def test_admins_must_use_a_key_when_the_operator_says_so(services: Services,
                                                         browser: TestClient) -> None:
    key = SoftKey(RP_ID, BASE_URL)
    with services.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == "secadmin")
                     .values(must_change=False))
    was = services.settings
    services.settings = dataclasses.replace(was, webauthn_required_for_admins=True)
    try:
        r = login(browser, "secadmin", ADMIN_PASSWORD)
        assert r.status_code == 303 and r.headers["location"].startswith(
            "/portal/login/passkey-enrol")
        assert browser.get("/portal", follow_redirects=False).status_code == 303
        assert 'id="passkey-register"' in browser.get(r.headers["location"]).text
        r = post_json(browser, "/portal/account/passkeys/options", {"name": "admin key"})
        r = post_json(browser, "/portal/account/passkeys",
                      {"credential": key.create(r.json()["options"]), "next": "/portal"})
        assert r.status_code == 200 and r.json()["redirect"] == "/portal"
        assert browser.get("/portal", follow_redirects=False).status_code == 200
        assert "required" in events(services, "webauthn_register", "secadmin")[-1]["reason"]
        # the compliance check counts the key as the admin's second factor
        verdict = admin_two_factor(State(services.settings, services.engine, services.keys,
                                         services.clock()))
        assert "1 of 3 active admins have an authenticator" in str(verdict)

        browser.cookies.clear()
        r = login(browser, "secadmin", ADMIN_PASSWORD)
        assert r.headers["location"].startswith("/portal/login/webauthn")
        # no TOTP instead for an admin under the setting
        fallback = browser.get("/portal/login/webauthn/totp", follow_redirects=False)
        assert fallback.headers["location"].startswith("/portal/login/webauthn")
        assert second_factor(browser, key).status_code == 200
        assert browser.get("/portal", follow_redirects=False).status_code == 200
    finally:
        services.settings = was
    # without the setting an admin with neither key nor TOTP enrols a TOTP, as before
    other = TestClient(browser.app, base_url=BASE_URL)
    r = login(other, "auditor", ADMIN_PASSWORD)
    assert r.headers["location"].startswith(("/portal/login/change", "/portal/login/enrol"))


def test_rp_id_is_a_host_name(tmp_path: Path) -> None:
    env = {"GOVGATE_HOME": str(tmp_path)}  # settings alone: no database
    with pytest.raises(SettingsError, match="webauthn_rp_id"):
        load_settings({**env, "GOVGATE_WEBAUTHN_RP_ID": "10.0.0.1"})
    with pytest.raises(SettingsError, match="webauthn_origin"):
        load_settings({**env, "GOVGATE_WEBAUTHN_ORIGIN": "gov.example.cn"})
    assert load_settings({**env, "GOVGATE_WEBAUTHN_RP_ID": "gov.example.cn"}
                         ).webauthn_rp_id == "gov.example.cn"


def test_a_gateway_reached_by_an_ip_address_offers_no_key(
        services: Services, browser: TestClient, tmp_path: Path) -> None:
    """Browsers make no credential for an IP address: on such a gateway (the demo's
    issuer is http://127.0.0.1:PORT) the portal says so instead of offering a button that
    can only fail, and requiring keys of the admins is refused at start."""
    person(services, "ip.user")
    signed_in(browser, "ip.user")
    was = services.settings
    try:
        services.settings = dataclasses.replace(was, issuer="http://127.0.0.1:8080")
        page = browser.get("/portal/account")
        # what the person can do; the settings are the admin's (walk of 2026-12-05, third)
        assert 'id="passkeys-unusable"' in page.text and "webauthn_rp_id" not in page.text
        assert "动态口令" in page.text
        assert 'id="passkey-register"' not in page.text
        login_page = TestClient(browser.app, base_url=BASE_URL).get("/portal/login").text
        assert 'id="passkey-login"' not in login_page
        services.settings = dataclasses.replace(was, issuer="http://127.0.0.1:8080",
                                                webauthn_rp_id="localhost")
        assert 'id="passkey-register"' in browser.get("/portal/account").text
    finally:
        services.settings = was
    assert 'id="passkey-register"' in browser.get("/portal/account").text
    assert 'id="passkey-login"' in TestClient(browser.app, base_url=BASE_URL).get(
        "/portal/login").text
    env = {"GOVGATE_HOME": str(tmp_path), "GOVGATE_ISSUER": "http://127.0.0.1:8080",
           "GOVGATE_WEBAUTHN_REQUIRED_FOR_ADMINS": "true"}
    with pytest.raises(SettingsError, match="webauthn_required_for_admins"):
        load_settings(env)
    assert load_settings({**env, "GOVGATE_WEBAUTHN_RP_ID": "gateway.example.cn"}
                         ).webauthn_required_for_admins


def test_the_operator_removes_a_lost_key(services: Services, browser: TestClient) -> None:
    """``govgate passkey list|remove``: the way back for a user whose key is lost."""
    person(services, "qian.jiu")
    signed_in(browser, "qian.jiu")
    assert register(browser, SoftKey(RP_ID, BASE_URL), "lost one").status_code == 200
    env = {"GOVGATE_HOME": str(services.settings.home),
           "GOVGATE_DATABASE_URL": services.settings.database_url, "LC_ALL": "C.UTF-8"}

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["passkey", *args], env=env)

    listed = run("list", "--user", "qian.jiu")
    assert listed.exit_code == 0 and "\tlost one\tusb\t" in listed.output
    assert run("remove", "--user", "qian.jiu").exit_code == 2  # --id or --all
    missing = run("remove", "--user", "qian.jiu", "--id", "999999")
    assert missing.exit_code == 1 and "has no key with id 999999" in missing.output
    done = run("remove", "--user", "qian.jiu", "--all")
    assert done.exit_code == 0 and "removed 1 key(s) of qian.jiu" in done.output
    change = [e for e in audit_events(services, "admin_change")
              if e["reason"] == "user_webauthn_removed"]
    assert len(change) == 1 and "qian.jiu" in str(change[0]["extra"])
    browser.cookies.clear()
    assert login(browser, "qian.jiu").headers["location"] == "/portal"


@pytest.mark.parametrize("credential", [None, [], "x", {"id": 1}, {"id": "AA", "response": 5},
                                        {"response": {"clientDataJSON": "!!"}}])
def test_garbage_is_refused_not_a_500(services: Services, browser: TestClient,
                                      credential: Any) -> None:
    browser.get("/portal/login")
    r = post_json(browser, "/portal/login/passkey/options", {})
    r = post_json(browser, "/portal/login/passkey", {"credential": credential})
    assert r.status_code == 400 and r.json()["error"]
    assert post_json(browser, "/portal/login/passkey", {"credential": credential}
                     ).status_code == 400  # no challenge left either


def test_the_migration_mirrors_the_tables(services: Services) -> None:
    """0021_webauthn as tables.py has them (with the rest of the gateway's metadata,
    which they join)."""
    assert {webauthn_credentials.name, webauthn_challenges.name} <= set(
        gateway_tables.metadata.tables)
    assert_mirrors(services.engine, gateway_tables.metadata)


def test_totp_stays_the_fallback(services: Services, browser: TestClient) -> None:
    """Someone with a key and TOTP (not an admin under the setting) may use a code."""
    person(services, "wu.shi")
    signed_in(browser, "wu.shi")
    assert register(browser, SoftKey(RP_ID, BASE_URL)).status_code == 200
    secret = pyotp.random_base32()
    totp.store(services, services.org.get_user("wu.shi"), secret)
    browser.cookies.clear()
    step = login(browser, "wu.shi").headers["location"]
    assert step.startswith("/portal/login/webauthn")
    assert 'id="use-totp"' in browser.get(step).text
    r = browser.get("/portal/login/webauthn/totp?next=/portal", follow_redirects=False)
    assert r.headers["location"].startswith("/portal/login/totp")
    page = browser.get(r.headers["location"])
    r = browser.post("/portal/login/totp", data={
        "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).now(), "next": "/portal"},
        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    assert amr_of(services, browser, "wu.shi") == "pwd otp"
    assert events(services, "webauthn_fallback", "wu.shi")[-1]["outcome"] == "success"


def test_passwordless_is_behind_the_sign_in_throttle(services: Services, app: Any) -> None:
    """The options and the assertion answer 429 while the address is within the delay
    its failures earned (the password step's throttle and settings); a failed
    assertion adds to that delay; one address holds at most the lockout threshold's
    number of unanswered challenges."""
    stranger = TestClient(app, base_url=BASE_URL, client=("203.0.113.7", 50000))
    stranger.get("/portal/login")
    throttle = LoginThrottle.from_settings(services.settings, services.engine, services.clock)

    def failures() -> int:
        with services.engine.connect() as conn:
            return int(conn.execute(sa.select(login_throttle.c.failures).where(
                login_throttle.c.key == "addr:203.0.113.7")).scalar() or 0)

    r = post_json(stranger, "/portal/login/passkey/options", {})
    r = post_json(stranger, "/portal/login/passkey", {"credential": {"id": "AA"}})
    assert r.status_code == 400
    assert failures() == 1
    for _ in range(4):  # the delay after five failures: 8 s
        throttle.failed("203.0.113.7")
    for path in ("/portal/login/passkey/options", "/portal/login/passkey"):
        r = post_json(stranger, path, {"credential": {"id": "AA"}})
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 8
        assert r.json()["error"].startswith("登录尝试过于频繁")
    refused = audit_events(services, "webauthn_login")[-1]
    assert refused["outcome"] == "failure" and "within its delay" in refused["reason"]
    assert failures() == 5  # a refused attempt checks nothing and counts nothing

    # challenges asked for and never answered: a few per address, not a table full
    asker = TestClient(app, base_url=BASE_URL, client=("203.0.113.8", 50000))
    asker.get("/portal/login")
    answers = [post_json(asker, "/portal/login/passkey/options", {}).status_code
               for _ in range(services.settings.lockout_threshold + 2)]
    assert answers == [200] * services.settings.lockout_threshold + [429, 429]
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webauthn_challenges).where(
            webauthn_challenges.c.name == "addr:203.0.113.8")).scalar() == \
            services.settings.lockout_threshold
    assert "passkey challenges" in audit_events(services, "webauthn_login")[-1]["reason"]


def test_failed_key_assertions_count_toward_the_lockout(services: Services,
                                                        browser: TestClient) -> None:
    """As wrong TOTP codes do: each failed assertion of the second factor counts; the
    threshold-th locks the account (audited) and ends the session. A failed passwordless
    assertion of a known credential counts toward its owner."""
    key = SoftKey(RP_ID, BASE_URL)
    person(services, "kong.jiu")
    signed_in(browser, "kong.jiu")
    assert register(browser, key).status_code == 200
    browser.cookies.clear()
    login(browser, "kong.jiu")
    # asking again replaces the session's challenge (its one ceremony cookie): one row
    for _ in range(3):
        assert post_json(browser, "/portal/login/webauthn/options", {}).status_code == 200
    user_id = services.org.get_user("kong.jiu").id
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webauthn_challenges)
                            .where(webauthn_challenges.c.user_id == user_id)).scalar() == 1
    threshold = services.settings.lockout_threshold
    for n in range(1, threshold + 1):
        r = second_factor(browser, key, origin="http://localhost.evil.example:8080")
        assert services.org.get_user("kong.jiu").failed_logins == n
        if n < threshold:
            assert r.status_code == 400
    assert r.status_code == 403 and r.json()["error"].startswith("账号已锁定")
    assert services.org.get_user("kong.jiu").locked_until is not None
    lock = events(services, "login_lockout", "kong.jiu")
    assert lock[-1]["outcome"] == "deny" and "key assertions" in lock[-1]["reason"]
    assert len([e for e in events(services, "webauthn_verify", "kong.jiu")
                if e["outcome"] == "failure"]) == threshold
    assert browser.get("/portal", follow_redirects=False).status_code == 303  # ended
    assert post_json(browser, "/portal/login/webauthn/options", {}).status_code == 401

    # passwordless: the credential is known, its assertion refused (no user verification)
    with services.engine.begin() as conn:
        conn.execute(sa.update(users).where(users.c.username == "kong.jiu")
                     .values(failed_logins=0, first_failed_at=None, locked_until=None))
    browser.cookies.clear()
    browser.get("/portal/login")
    r = post_json(browser, "/portal/login/passkey/options", {})
    r = post_json(browser, "/portal/login/passkey",
                  {"credential": key.get(r.json()["options"], verified=False)})
    assert r.status_code == 400
    assert services.org.get_user("kong.jiu").failed_logins == 1
    assert events(services, "webauthn_login", "kong.jiu")[-1]["outcome"] == "failure"


def test_a_key_is_registered_only_soon_after_signing_in(services: Services,
                                                        browser: TestClient) -> None:
    """A session cookie taken from an unattended browser adds no passkey: registration
    needs a sign-in of the last five minutes."""
    person(services, "wei.shi")
    signed_in(browser, "wei.shi")
    with services.engine.begin() as conn:
        conn.execute(sa.update(sessions).where(sessions.c.username == "wei.shi").values(
            authenticated_at=services.clock() - timedelta(seconds=301)))
    r = post_json(browser, "/portal/account/passkeys/options", {"name": "thief's key"})
    assert r.status_code == 403 and r.json()["error"].startswith("登录已超过 5 分钟")
    failed = events(services, "webauthn_register", "wei.shi")[-1]
    assert failed["outcome"] == "failure" and "within 300 s" in failed["reason"]
    browser.cookies.clear()
    signed_in(browser, "wei.shi")
    assert register(browser, SoftKey(RP_ID, BASE_URL)).status_code == 200
