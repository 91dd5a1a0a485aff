"""One's own account while signed in (issue #22 item 5, issue #15 item 2), through the
page and through ``/api/v1/account``, in-process: the password changed without signing
in again (current password asked, the rule applied, the other sessions signed out),
recovery codes (hashed, single use, counted, regenerated), the authenticator
re-enrolled with a proof, sessions and grants (only one's own), sign out everywhere
(sessions, refresh tokens, access tokens), recent sign-ins from the audit log."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.idp import totp
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from gateway.tables import user_recovery_codes, users
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    EXTRA_CLIENTS,
    OFFICE,
    audit_events,
    close_services,
    code_flow,
    csrf_of,
    login,
    make_services,
    pkce,
)
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.portal.test_languages import check
from tests.wiring import parts

BASE = "http://127.0.0.1:8080"
NEW_PASSWORD = "Quiet-River-Lantern-2026"
APP_CB = "http://127.0.0.1:9300/cb"
ACCOUNT_APP = {"client_id": "account-app", "name": "办公用房管理系统", "department": "jgswj",
               "grant_types": ["authorization_code", "refresh_token"],
               "token_endpoint_auth_method": "none", "redirect_uris": [APP_CB],
               "scope": "openid profile account"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def idp(settings: Settings, fast_hashes: None) -> Iterator[Services]:  # noqa: F811
    services = make_services(settings, extra_clients=[*EXTRA_CLIENTS, ACCOUNT_APP])
    yield services
    close_services(services)


@pytest.fixture
def client(idp: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(idp)), base_url=BASE) as c:
        yield c


def other(client: TestClient) -> TestClient:
    """A second browser of the same app (its own cookies)."""
    return TestClient(client.app, base_url=BASE)


def signed_in(client: TestClient, username: str = "zhang.san") -> TestClient:
    r = login(client, username=username)
    assert r.status_code == 303 and r.headers["location"] == "/portal", r.text
    return client


def account_token(client: TestClient, scope: str = "openid account") -> dict[str, Any]:
    """Tokens of the signed-in user for the account-app client (public, PKCE)."""
    verifier, challenge = pkce()
    r = client.get("/oauth2/authorize", params={
        "response_type": "code", "client_id": "account-app", "redirect_uri": APP_CB,
        "scope": scope, "state": "s", "nonce": "n", "code_challenge": challenge,
        "code_challenge_method": "S256"}, follow_redirects=False)
    code = re.search(r"code=([^&]+)", r.headers["location"]).group(1)  # type: ignore[union-attr]
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": APP_CB,
        "code_verifier": verifier, "client_id": "account-app"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def enrol_totp(client: TestClient, password: str = DEMO_PASSWORD) -> tuple[str, list[str]]:
    """Through the API: a new authenticator, confirmed; (secret, recovery codes)."""
    r = client.post("/api/v1/account/totp", json={"password": password})
    assert r.status_code == 200, r.text
    secret, pending = r.json()["secret"], r.json()["pending"]
    r = client.post("/api/v1/account/totp/confirm",
                    json={"pending": pending, "code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.text
    return secret, list(r.json()["recovery_codes"])


# -- the password, signed in ---------------------------------------------------------------

def test_change_while_signed_in_goes_to_the_account_page(client: TestClient) -> None:
    """The forced-change page no longer sends a signed-in user to the sign-in page as if
    the session had expired."""
    r = client.get("/portal/login/change", follow_redirects=False)
    assert r.status_code == 303 and "expired=1" in r.headers["location"]  # no session
    signed_in(client)
    r = client.get("/portal/login/change", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal/account#password"
    page = client.get("/portal/account")
    assert page.status_code == 200 and 'id="password-form"' in page.text
    assert 'id="account-link"' in page.text  # the header links here on every page


def test_password_change_asks_the_current_one_applies_the_rule_and_signs_out_others(
        client: TestClient, idp: Services) -> None:
    signed_in(client)
    phone = signed_in(other(client))
    page = client.get("/portal/account").text
    csrf = csrf_of(page)

    def change(current: str, new: str, confirm: str | None = None, **extra: str) -> Any:
        return client.post("/portal/account/password", data={
            "csrf_token": csrf, "current_password": current, "new_password": new,
            "confirm_password": new if confirm is None else confirm, **extra},
            follow_redirects=False)

    r = change("not-my-password-1", NEW_PASSWORD, sign_out_others="1")
    assert r.status_code == 400 and "密码错误" in r.text
    check(r.text, "zh", "wrong current password")
    assert change(DEMO_PASSWORD, NEW_PASSWORD, "something else").status_code == 400
    r = change(DEMO_PASSWORD, "short")
    assert r.status_code == 400 and "密码太短" in r.text
    r = change(DEMO_PASSWORD, DEMO_PASSWORD)
    assert r.status_code == 400 and "该密码近期用过" in r.text
    assert phone.get("/portal", follow_redirects=False).status_code == 200

    r = change(DEMO_PASSWORD, NEW_PASSWORD, sign_out_others="1")
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/account?done=")
    assert "n=1" in r.headers["location"]
    assert client.get("/portal", follow_redirects=False).status_code == 200  # still in
    assert phone.get("/portal", follow_redirects=False).status_code == 303  # signed out
    info = client.get(r.headers["location"]).text
    assert "密码已修改；1 个其他会话已退出。" in info

    changed = [e for e in audit_events(idp, "password_changed") if e["outcome"] == "success"]
    assert changed[-1]["actor_user"] == "zhang.san"
    assert "account page" in changed[-1]["reason"]
    # the change of the organisation is the person's too, not the gateway's OS account's
    org_change = [e for e in audit_events(idp, "admin_change")
                  if e["reason"] == "user_password_changed"]
    assert org_change and org_change[-1]["actor_user"] == "zhang.san"
    reauth = audit_events(idp, "account_reauth")
    assert reauth and reauth[-1]["outcome"] == "failure"
    assert NEW_PASSWORD not in str(audit_events(idp))  # no secret in the audit log
    client.cookies.clear()
    assert login(client, password=NEW_PASSWORD).headers["location"] == "/portal"


def test_password_change_can_keep_the_other_sessions(client: TestClient) -> None:
    signed_in(client)
    phone = signed_in(other(client))
    r = client.post("/api/v1/account/password", json={
        "current_password": DEMO_PASSWORD, "new_password": NEW_PASSWORD,
        "sign_out_others": False})
    assert r.status_code == 200 and r.json() == {"changed": True, "other_sessions_ended": 0}
    assert phone.get("/portal", follow_redirects=False).status_code == 200


def test_wrong_proofs_lock_the_account_and_end_the_session(client: TestClient,
                                                          idp: Services) -> None:
    signed_in(client)
    for _ in range(idp.settings.lockout_threshold - 1):
        r = client.post("/api/v1/account/totp", json={"password": "guess-1234567"})
        assert r.status_code == 400
    r = client.post("/api/v1/account/totp", json={"password": "guess-1234567"})
    assert r.status_code == 400
    assert client.get("/api/v1/account").status_code == 401  # the session ended
    assert [e["outcome"] for e in audit_events(idp, "login_lockout")] == ["deny"]
    assert "账号已锁定" in login(client).text


# -- recovery codes ------------------------------------------------------------------------

def test_recovery_codes_are_hashed_single_use_counted_and_replaced(
        client: TestClient, idp: Services) -> None:
    signed_in(client)
    secret, codes = enrol_totp(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[0-9a-z]{5}-[0-9a-z]{5}", c) for c in codes)
    with idp.engine.connect() as conn:
        stored = [r.code_hash for r in conn.execute(sa.select(user_recovery_codes))]
    assert len(stored) == 10
    for code in codes:  # never in the clear, in any spelling
        assert not any(code.replace("-", "") in h or code in h for h in stored)
    assert client.get("/api/v1/account").json()["recovery_codes_left"] == 10

    def sign_in_with(code: str, browser: TestClient) -> Any:
        browser.cookies.clear()
        r = login(browser)
        assert r.headers["location"].startswith("/portal/login/totp")
        page = browser.get(r.headers["location"])
        return browser.post("/portal/login/recovery", data={
            "csrf_token": csrf_of(page.text), "recovery_code": code, "next": "/portal"},
            follow_redirects=False)

    lost = other(client)
    # typed as a person copies it: upper case, spaces instead of the dash
    r = sign_in_with(codes[0].upper().replace("-", " "), lost)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/portal/account?done=recovery_used&n=9")
    page = lost.get(r.headers["location"])
    assert "还剩 9 个" in page.text and 'id="totp-form"' in page.text
    check(page.text, "zh", "after a recovery code")
    used = audit_events(idp, "mfa_recovery")
    assert used[-1]["outcome"] == "success" and json.loads(used[-1]["extra"])["remaining"] == 9
    assert codes[0] not in str(audit_events(idp))

    r = sign_in_with(codes[0], lost)  # spent
    assert r.status_code == 200 and "恢复码错误或已使用" in r.text
    assert audit_events(idp, "mfa_recovery")[-1]["outcome"] == "failure"

    # a new set, with a current code as the proof: the old set stops working
    fresh = client.post("/api/v1/account/recovery-codes",
                        json={"code": pyotp.TOTP(secret).at(time.time() + 30)})
    assert fresh.status_code == 200, fresh.text
    assert sign_in_with(codes[1], lost).status_code == 200
    r = sign_in_with(fresh.json()["recovery_codes"][0], lost)
    assert r.status_code == 303 and "n=9" in r.headers["location"]
    issued = audit_events(idp, "recovery_codes_issued")
    assert [e["outcome"] for e in issued] == ["success", "success"]


def test_someone_elses_code_does_not_sign_in(client: TestClient) -> None:
    signed_in(client, "li.si")
    _, li_codes = enrol_totp(client)
    client.cookies.clear()
    signed_in(client)
    enrol_totp(client)
    client.cookies.clear()
    r = login(client)
    page = client.get(r.headers["location"])
    r = client.post("/portal/login/recovery", data={
        "csrf_token": csrf_of(page.text), "recovery_code": li_codes[0], "next": "/portal"},
        follow_redirects=False)
    assert r.status_code == 200 and "恢复码错误或已使用" in r.text


def test_re_enrolment_on_the_page_needs_a_proof_and_replaces_the_authenticator(
        client: TestClient, idp: Services) -> None:
    signed_in(client)
    old_secret, _ = enrol_totp(client)
    page = client.get("/portal/account")
    assert "剩余 10 个未使用的恢复码。" in page.text
    csrf = csrf_of(page.text)
    r = client.post("/portal/account/totp", data={"csrf_token": csrf})
    assert r.status_code == 400 and "请输入当前密码" in r.text
    r = client.post("/portal/account/totp", data={"csrf_token": csrf, "password": "nope-nope"})
    assert r.status_code == 400 and "密码错误" in r.text
    r = client.post("/portal/account/totp", data={"csrf_token": csrf, "password": DEMO_PASSWORD})
    assert r.status_code == 200 and "<svg" in r.text, r.text
    new_secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', r.text).group(1)  # type: ignore[union-attr]
    r = client.post("/portal/account/totp/confirm", data={"csrf_token": csrf, "code": "000000"})
    assert r.status_code == 400 and new_secret in r.text  # the same set-up, again
    # (the enrolment spent this step's code: each step signs in once per user)
    r = client.post("/portal/account/totp/confirm", data={
        "csrf_token": csrf, "code": pyotp.TOTP(new_secret).at(time.time() + 30)})
    assert r.status_code == 200, r.text
    assert len(re.findall(r"<li><code>\w{5}-\w{5}</code>", r.text)) == 10
    # the old authenticator no longer proves anything
    r = client.post("/api/v1/account/recovery-codes",
                    json={"code": pyotp.TOTP(old_secret).at(time.time() - 30)})
    assert r.status_code == 400
    enrolled = [e for e in audit_events(idp, "mfa_enrol") if e["outcome"] == "success"]
    assert len(enrolled) == 2 and "earlier one no longer works" in enrolled[-1]["reason"]


# -- sessions, grants, sign out everywhere ------------------------------------------------

def test_only_ones_own_sessions_are_seen_and_ended(client: TestClient) -> None:
    signed_in(client)
    li = signed_in(other(client), "li.si")
    mine = client.get("/api/v1/account/sessions").json()["sessions"]
    his = li.get("/api/v1/account/sessions").json()["sessions"]
    assert len(mine) == 1 and mine[0]["current"] and len(his) == 1
    assert mine[0]["sid"] != his[0]["sid"]
    assert his[0]["sid"] not in client.get("/portal/account").text
    r = client.post("/api/v1/account/sessions/revoke", json={"sid": his[0]["sid"]})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    page = client.get("/portal/account")
    r = client.post("/portal/account/sessions/end", data={
        "csrf_token": csrf_of(page.text), "sid": his[0]["sid"]})
    assert r.status_code == 404 and "您没有这个会话" in r.text
    assert li.get("/portal", follow_redirects=False).status_code == 200
    assert len(li.get("/api/v1/account/sign-ins").json()["sign_ins"]) == 1
    assert all(s["event"] == "login" for s in
               client.get("/api/v1/account/sign-ins").json()["sign_ins"])

    # one of my own sessions: ended, and refused from then on
    phone = signed_in(other(client))
    sids = {s["sid"] for s in client.get("/api/v1/account/sessions").json()["sessions"]}
    phone_sid = (sids - {mine[0]["sid"]}).pop()
    r = client.post("/portal/account/sessions/end", data={
        "csrf_token": csrf_of(page.text), "sid": phone_sid}, follow_redirects=False)
    assert r.status_code == 303
    assert phone.get("/api/v1/account").status_code == 401


def test_sign_out_everywhere_ends_sessions_refresh_and_access_tokens(
        client: TestClient, idp: Services) -> None:
    signed_in(client)
    tokens = account_token(client)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = client.get("/api/v1/account/sessions", headers=bearer)
    assert r.status_code == 200
    grants = r.json()["grants"]
    assert [g["client_id"] for g in grants] == ["account-app"]
    assert grants[0]["client_name"] == "办公用房管理系统"
    second = signed_in(other(client))

    # a form post from another site cannot do it (the API's media-type rule)
    r = client.post("/api/v1/account/sign-out-everywhere", data={"x": "1"})
    assert r.status_code == 415
    r = client.post("/api/v1/account/sign-out-everywhere",
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert client.get("/api/v1/account").status_code == 200

    r = second.post("/api/v1/account/sign-out-everywhere", headers=JSON)
    assert r.status_code == 200 and r.json() == {"sessions": 2, "families": 1}
    for browser in (client, second):
        assert browser.get("/api/v1/account").status_code == 401
        assert browser.get("/portal", follow_redirects=False).status_code == 303
    assert client.get("/api/v1/account", headers=bearer).status_code == 401
    r = client.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": "account-app"})
    assert r.status_code == 400
    ended = [e for e in audit_events(idp, "logout")
             if "everywhere" in (e["reason"] or "")]
    assert len(ended) == 1 and ended[0]["actor_user"] == "zhang.san"


def test_the_page_signs_out_everywhere(client: TestClient) -> None:
    signed_in(client)
    second = signed_in(other(client))
    page = client.get("/portal/account")
    r = client.post("/portal/account/sign-out-everywhere",
                    data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 200 and "已退出所有登录" in r.text
    check(r.text, "zh", "signed out everywhere")
    assert second.get("/portal", follow_redirects=False).status_code == 303
    r = client.post("/portal/account/sign-out-everywhere", data={"csrf_token": "forged"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login")


def test_tokens_without_the_account_scope_or_of_a_system_are_refused(
        client: TestClient) -> None:
    office = code_flow(client)  # office-web: openid profile, signs the user in only
    r = client.get("/api/v1/account", headers={
        "Authorization": f"Bearer {office['access_token']}"})
    assert r.status_code == 403 and 'scope="account"' in r.headers["www-authenticate"]
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                           "scope": "proxy"}, auth=OFFICE)
    if r.status_code == 200:
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert client.get("/api/v1/account", headers=headers).status_code == 403
    fresh = TestClient(client.app, base_url=BASE)
    assert fresh.get("/api/v1/account").status_code == 401
    assert fresh.get("/portal/account", follow_redirects=False).headers["location"] == \
        "/portal/login?next=%2Fportal%2Faccount"


def test_bad_api_input_is_a_clear_problem(client: TestClient) -> None:
    signed_in(client)
    for path, body, field in [
        ("/api/v1/account/password", {"current_password": 1}, "current_password"),
        ("/api/v1/account/password", {"current_password": DEMO_PASSWORD,
                                      "new_password": NEW_PASSWORD,
                                      "sign_out_others": "yes"}, "sign_out_others"),
        ("/api/v1/account/totp/confirm", {"pending": "forged", "code": "123456"}, "pending"),
        ("/api/v1/account/recovery-codes", {"password": DEMO_PASSWORD}, None),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        if field:
            assert r.json()["field"] == field, r.json()
    assert client.get("/api/v1/account/sign-ins?limit=0").status_code == 400
    assert client.get("/api/v1/account/sign-ins?limit=x").status_code == 400


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_account_page_in_one_language(client: TestClient, lang: str) -> None:
    signed_in(client)
    enrol_totp(client)
    account_token(client)
    page = client.get("/portal/account", params={"lang": lang})
    assert page.status_code == 200
    check(page.text, lang, "account page")
    for marker in ('id="password-form"', 'id="totp-form"', 'id="recovery-form"',
                   'id="session-table"', 'id="grant-table"', 'id="sign-in-table"',
                   'id="everywhere"'):
        assert marker in page.text, marker
    r = client.post("/portal/account/password", params={"lang": lang}, data={
        "csrf_token": csrf_of(page.text), "current_password": DEMO_PASSWORD,
        "new_password": "short", "confirm_password": "short"})
    check(r.text, lang, "account page with a problem")
    client.cookies.clear()
    r = login(client)
    totp_page = client.get(r.headers["location"], params={"lang": lang})
    assert 'id="recovery_code"' in totp_page.text
    check(totp_page.text, lang, "code step with the recovery form")
    assert SESSION_COOKIE in client.cookies


def test_a_proof_by_an_authenticator_that_does_not_open_is_refused(
        client: TestClient, idp: Services) -> None:
    """zhang.san's sealed TOTP secret replaced by li.si's (it does not open on his row):
    a proof by code is a readable 400 naming what to do, not a 500."""
    signed_in(client)
    enrol_totp(client)
    li = idp.org.get_user("li.si")
    totp.store(idp, li, pyotp.random_base32())
    with idp.engine.begin() as conn:
        blob = conn.execute(sa.select(users.c.totp_secret).where(users.c.id == li.id)).scalar()
        conn.execute(users.update().where(users.c.username == "zhang.san")
                     .values(totp_secret=blob))
    r = client.post("/api/v1/account/recovery-codes", json={"code": "123456"},
                    headers={"Accept-Language": "en"})
    assert r.status_code == 400 and "system administrator" in r.text, r.text
