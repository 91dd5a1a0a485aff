"""Portal sign-in: lockout, forced change, TOTP enrolment and verification, CSRF,
session rotation and timeouts, sign-out with back-channel logout, languages."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pyotp
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.idp import totp
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.services import Services
from gateway.settings import Settings
from gateway.tables import users
from tests.oauth2.helpers import (
    DEMO_PASSWORD,
    audit_events,
    authorize,
    close_services,
    code_flow,
    csrf_of,
    frozen_now,
    login,
    make_services,
)
from tests.wiring import parts


@pytest.fixture
def frozen(settings: Settings) -> Iterator[tuple[Services, FrozenClock, TestClient]]:
    clock = frozen_now()
    services = make_services(settings, clock=clock)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, clock, c
    close_services(services)


def test_login_shows_the_launcher(client: TestClient, idp: Services) -> None:
    r = login(client)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    cookie = r.cookies.get(SESSION_COOKIE) or client.cookies.get(SESSION_COOKIE)
    set_cookie = r.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie.replace("Lax", "lax")
    assert cookie
    home = client.get("/portal")
    assert home.status_code == 200
    assert "公务用车管理平台" in home.text and "/s/vehicles/" in home.text
    assert "资产管理系统" not in home.text  # another department's system
    ok = audit_events(idp, "login")
    assert ok[-1]["outcome"] == "success" and ok[-1]["actor_user"] == "zhang.san"


def test_english_on_request(client: TestClient) -> None:
    assert "登录" in client.get("/portal/login").text
    r = client.get("/portal/login", params={"lang": "en"})
    assert "Sign in" in r.text
    assert "Sign in" in client.get("/portal/login").text  # remembered in a cookie
    client.cookies.clear()
    # an English-locale browser still gets the agency's language until the user switches
    r = client.get("/portal/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "登录" in r.text


def test_csrf_is_required(client: TestClient) -> None:
    client.get("/portal/login")
    r = client.post("/portal/login", data={"csrf_token": "forged", "username": "zhang.san",
                                           "password": DEMO_PASSWORD})
    assert r.status_code == 400 and SESSION_COOKIE not in r.cookies


@pytest.mark.parametrize("fetch", [
    {"Origin": "http://evil.127.0.0.1.nip.example:8080", "Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "http://127.0.0.1:9999"},
    {"Origin": "null"},
])
def test_a_tossed_csrf_cookie_from_a_sibling_site_is_not_enough(
        client: TestClient, fetch: dict[str, str]) -> None:
    """A sibling subdomain can set gg_csrf for the parent domain (cookie tossing) and
    post the value it chose; the browser still says where the post comes from."""
    client.cookies.set("gg_csrf", "chosen-by-the-attacker")
    r = client.post("/portal/login", headers=fetch, data={
        "csrf_token": "chosen-by-the-attacker", "username": "zhang.san",
        "password": DEMO_PASSWORD})
    assert r.status_code == 400 and SESSION_COOKIE not in r.cookies
    # the same post from the gateway's own page signs in
    r = client.post("/portal/login", headers={
        "Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}, data={
        "csrf_token": "chosen-by-the-attacker", "username": "zhang.san",
        "password": DEMO_PASSWORD}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal"


def test_lockout_with_remaining_time(frozen: tuple[Services, FrozenClock, TestClient]) -> None:
    idp, clock, client = frozen
    for _ in range(4):
        r = login(client, password="wrong-password-123")
        assert "用户名或密码错误" in r.text
        clock.advance(_pace(idp))  # past this address's delay: the account lock is the test
    r = login(client, password="wrong-password-123")
    assert "账号已锁定" in r.text and "15 分钟" in r.text
    clock.advance(_pace(idp))
    # even the right password is refused while locked, in any spelling of the name
    r = login(client)
    assert r.status_code == 200 and "账号已锁定" in r.text
    for name in ("Zhang.San", "ZHANG.SAN", " zhang.san ", "zhang.san\t",
                 "ｚｈａｎｇ．ｓａｎ", "Ｚｈａｎｇ.Ｓａｎ\u3000", "zhang.ſan"):
        r = login(client, username=name)
        assert r.status_code == 200 and SESSION_COOKIE not in r.cookies, name
        assert "账号已锁定" in r.text, name
    clock.advance(10 * 60)
    assert "5 分钟" in login(client).text
    assert audit_events(idp, "login_lockout")
    reasons = {e["reason"] for e in audit_events(idp, "login") if e["outcome"] == "failure"}
    assert {"wrong password", "account locked"} <= reasons
    clock.advance(6 * 60)
    assert login(client).status_code == 303


def _pace(idp: Services) -> float:
    """The delay the test client's address earned with its last failure."""
    from gateway.login_throttle import address_key
    from gateway.tables import login_throttle

    with idp.engine.connect() as conn:
        row = conn.execute(sa.select(login_throttle.c.failures).where(
            login_throttle.c.key == address_key("testclient"))).first()
    return parts(idp).throttle.delay(row.failures if row else 0)


def test_unknown_user_and_wrong_password_look_the_same(client: TestClient) -> None:
    a = login(client, username="nobody", password="x" * 12)
    b = login(client, password="x" * 12)
    assert "用户名或密码错误" in a.text and "用户名或密码错误" in b.text


def _follow_stage(client: TestClient, r: Any) -> Any:
    assert r.status_code == 303, r.text
    return client.get(r.headers["location"], follow_redirects=False)


def test_must_change_then_admin_totp_enrolment(client: TestClient, idp: Services) -> None:
    # sysadmin was created by `init` with must_change and an admin role
    r = login(client, username="sysadmin", password="Admin-Passw0rd-2026!")
    assert r.headers["location"].startswith("/portal/login/change")
    page = _follow_stage(client, r)
    # the session is not usable yet
    assert client.get("/portal", follow_redirects=False).status_code == 303
    bad = client.post("/portal/login/change", data={
        "csrf_token": csrf_of(page.text), "new_password": "short", "confirm_password": "short",
        "next": "/portal"})
    assert "密码太短" in bad.text
    same = client.post("/portal/login/change", data={
        "csrf_token": csrf_of(page.text), "new_password": "Admin-Passw0rd-2026!",
        "confirm_password": "Admin-Passw0rd-2026!", "next": "/portal"})
    assert "该密码近期用过" in same.text
    r = client.post("/portal/login/change", data={
        "csrf_token": csrf_of(page.text), "new_password": "Brand-New-Passw0rd!",
        "confirm_password": "Brand-New-Passw0rd!", "next": "/portal"}, follow_redirects=False)
    assert r.headers["location"].startswith("/portal/login/enrol")
    page = _follow_stage(client, r)
    assert "<svg" in page.text
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page.text).group(1)
    wrong = client.post("/portal/login/enrol", data={
        "csrf_token": csrf_of(page.text), "code": "000000", "next": "/portal"})
    assert "动态口令错误" in wrong.text
    r = client.post("/portal/login/enrol", data={
        "csrf_token": csrf_of(page.text), "code": pyotp.TOTP(secret).now(), "next": "/portal"},
        follow_redirects=False)
    # enrolled: the recovery codes are shown once, under the signed-in session
    assert r.status_code == 200 and len(re.findall(r"<li><code>\w{5}-\w{5}</code>", r.text)) == 10
    assert client.get("/portal").status_code == 200
    r = client.post("/portal/account/recovery-codes/saved", data={
        "csrf_token": csrf_of(r.text), "saved": "1", "next": "/portal"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/portal"
    assert idp.org.get_user("sysadmin").has_totp
    kinds = [(e["event_type"], e["outcome"]) for e in audit_events(idp)]
    assert ("mfa_enrol", "failure") in kinds and ("mfa_enrol", "success") in kinds
    assert ("password_changed", "success") in kinds

    # next sign-in asks for the code; a code is accepted once
    client.cookies.clear()
    r = login(client, username="sysadmin", password="Brand-New-Passw0rd!")
    assert r.headers["location"].startswith("/portal/login/totp")
    page = _follow_stage(client, r)
    # the enrolment code's step is spent; the next step's code is within the window
    code = pyotp.TOTP(secret).at(time.time() + 30)
    r = client.post("/portal/login/totp", data={"csrf_token": csrf_of(page.text), "code": code,
                                                "next": "/portal"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/portal"
    client.cookies.clear()
    r = login(client, username="sysadmin", password="Brand-New-Passw0rd!")
    page = _follow_stage(client, r)
    replay = client.post("/portal/login/totp", data={"csrf_token": csrf_of(page.text),
                                                     "code": code, "next": "/portal"})
    assert "动态口令错误" in replay.text


def test_session_id_rotates_at_login(client: TestClient, idp: Services) -> None:
    login(client)
    first = client.cookies.get(SESSION_COOKIE)
    login(client)
    second = client.cookies.get(SESSION_COOKIE)
    assert first and second and first != second
    # the old cookie no longer works
    fresh = TestClient(client.app, base_url="http://127.0.0.1:8080")
    fresh.cookies.set(SESSION_COOKIE, first)
    assert fresh.get("/portal", follow_redirects=False).status_code == 303


def test_idle_and_absolute_timeouts(frozen: tuple[Services, FrozenClock, TestClient]) -> None:
    idp, clock, client = frozen
    login(client)
    assert client.get("/portal").status_code == 200
    clock.advance(idp.settings.session_idle_timeout + 1)
    assert client.get("/portal", follow_redirects=False).status_code == 303
    login(client)
    for _ in range(idp.settings.session_absolute_timeout // 1500 + 1):
        clock.advance(1500)
        client.get("/portal", follow_redirects=False)
    assert client.get("/portal", follow_redirects=False).status_code == 303


def test_authorize_sends_to_login_then_back(client: TestClient) -> None:
    from tests.oauth2.helpers import pkce

    _, challenge = pkce()
    r = authorize(client, challenge=challenge)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?next=")
    next_url = parse_qs(r.headers["location"].split("?", 1)[1])["next"][0]
    r = login(client, next_url=next_url)
    assert r.headers["location"] == next_url
    r = client.get(next_url, follow_redirects=False)
    assert r.status_code == 302 and "code=" in r.headers["location"]


def test_prompt_none_without_session(client: TestClient) -> None:
    from tests.oauth2.helpers import pkce

    _, challenge = pkce()
    r = authorize(client, challenge=challenge, prompt="none")
    assert r.status_code == 302 and "error=login_required" in r.headers["location"]


def test_open_redirect_is_refused(client: TestClient) -> None:
    from urllib.parse import urlsplit

    r = login(client, next_url="//evil.example/x")
    assert r.headers["location"] == "/portal"
    # browsers drop tab/CR/LF inside a URL and read "\\" as "/"
    for next_url in ("/\\evil.example", "/\\/evil.example", "https://evil.example",
                     "\\\\evil.example", "/\t/evil.example", "/\r\n/evil.example",
                     "javascript:alert(1)", " //evil.example", "/%2F/evil.example"):
        client.cookies.clear()
        location = login(client, next_url=next_url).headers["location"]
        split = urlsplit(location)
        assert not split.scheme and not split.netloc, (next_url, location)
        assert not location.startswith("//") and "\\" not in location, (next_url, location)
        assert not any(c in location for c in "\t\r\n"), (next_url, location)


def test_logout_ends_session_everywhere(settings: Settings) -> None:
    received: list[dict[str, Any]] = []

    def rp(request: httpx.Request) -> httpx.Response:
        received.append(dict(parse_qs(request.content.decode())))
        return httpx.Response(200)

    services = make_services(settings, bcl_uri="http://127.0.0.1:9102/backchannel")
    parts(services, backchannel_transport=httpx.MockTransport(rp))
    # a relying party that verifies RS256 alone (id_token_signed_response_alg) gets its
    # logout token signed as its ID tokens are (Back-Channel Logout 1.0 section 2.4)
    from gateway.admin import clients as client_ops
    client_ops.update_client(parts(services), "office-web",
                             {"id_token_signed_response_alg": "RS256"})
    try:
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
            tokens = code_flow(client)
            at = tokens["access_token"]
            bearer = {"Authorization": f"Bearer {at}"}
            assert client.get("/oauth2/userinfo", headers=bearer).status_code == 200
            page = client.get("/portal")
            r = client.post("/portal/logout", data={"csrf_token": csrf_of(page.text)})
            assert r.status_code == 200 and "您已安全退出" in r.text
            provider = parts(services).provider
            client.portal.call(provider.notifier.drain)
            assert client.get("/portal", follow_redirects=False).status_code == 303
            # the access token of that session stops working at once
            parts(services).authenticator.deny.refresh(force=True)
            assert client.get("/oauth2/userinfo", headers=bearer).status_code == 401
            r = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                                   "refresh_token": tokens["refresh_token"]},
                            auth=("office-web", "demo-office-secret-0123456789abcdef"))
            assert r.json()["error"] == "invalid_grant"
        assert len(received) == 1
        logout_token = received[0]["logout_token"][0]
        claims = services.keys.verify_jwt("token_rs256", logout_token)
        assert claims["aud"] == "office-web" and claims["sid"]
        assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
        # Back-Channel Logout 1.0 section 2.4: no nonce (it must not pass for an ID
        # token), typ logout+jwt, and every claim an RP checks
        assert "nonce" not in claims
        assert {"iss", "iat", "exp", "jti", "sub"} <= set(claims)
        import base64
        import json
        header = json.loads(base64.urlsafe_b64decode(logout_token.split(".")[0] + "=="))
        assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
        kinds = {(e["event_type"], e["outcome"]) for e in audit_events(services)}
        assert ("logout", "success") in kinds and ("logout_backchannel", "success") in kinds
    finally:
        close_services(services)


def test_rp_initiated_logout(client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    r = client.get("/oauth2/logout", params={
        "id_token_hint": tokens["id_token"], "state": "s1",
        "post_logout_redirect_uri": "http://127.0.0.1:9102/"}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "http://127.0.0.1:9102/?state=s1"
    assert client.get("/portal", follow_redirects=False).status_code == 303
    r = client.get("/oauth2/logout", params={"post_logout_redirect_uri": "https://evil.example"},
                   follow_redirects=False)
    assert r.status_code == 200 and "location" not in r.headers


def test_a_guess_in_flight_when_the_account_locks_is_refused(
        frozen: tuple[Services, FrozenClock, TestClient], monkeypatch: pytest.MonkeyPatch,
        ) -> None:
    """Many guesses sent at once all pass the lock check before the first is hashed;
    one that turns out right must not sign in (nor lift the lock) once the others have
    locked the account meanwhile."""
    import gateway.web.portal.routes as routes

    idp, _clock, client = frozen
    settings = idp.settings
    real = routes.verify_password

    def meanwhile(stored: str | None, password: str) -> bool:
        for _ in range(settings.lockout_threshold):  # the parallel wrong guesses
            idp.org.record_failure("zhang.san", threshold=settings.lockout_threshold,
                                   window_seconds=settings.lockout_window_seconds)
        return bool(real(stored, password))

    monkeypatch.setattr(routes, "verify_password", meanwhile)
    r = login(client)
    assert r.status_code == 200 and "账号已锁定" in r.text
    assert SESSION_COOKIE not in r.cookies
    monkeypatch.setattr(routes, "verify_password", real)
    assert "账号已锁定" in login(client).text  # still locked


def test_rp_initiated_logout_without_a_hint_asks_first(client: TestClient, idp: Services,
                                                       ) -> None:
    """A link or redirect from any site to /oauth2/logout (the SameSite=Lax cookie goes
    along on a top-level GET) must not end the session by itself: without an
    id_token_hint of this session the user confirms (OIDC RP-Initiated Logout 1.0
    sections 2 and 6), with the form's CSRF token."""
    login(client)
    params = {"client_id": "office-web", "state": "s2",
              "post_logout_redirect_uri": "http://127.0.0.1:9102/"}
    r = client.get("/oauth2/logout", params=params, follow_redirects=False)
    assert r.status_code == 200 and "location" not in r.headers
    assert client.get("/portal", follow_redirects=False).status_code == 200  # still in
    assert not [e for e in audit_events(idp, "logout") if e["outcome"] == "success"]
    forged = client.post("/oauth2/logout", data={**params, "csrf_token": "forged"},
                         follow_redirects=False)
    assert forged.status_code == 200 and "location" not in forged.headers
    assert client.get("/portal", follow_redirects=False).status_code == 200
    r = client.post("/oauth2/logout", data={**params, "csrf_token": csrf_of(r.text)},
                    follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "http://127.0.0.1:9102/?state=s2"
    assert client.get("/portal", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(("password", "zh", "en"), [
    (" " * 12, "密码不得全为空白字符", "must not be only spaces"),
    ("123456789012", "密码太容易猜到", "too easy to guess"),
    ("Password1", "密码太短：至少 12 位", "too short: at least 12"),
    ("short1A!", "密码太短：至少 12 位", "too short: at least 12"),
    ("sysadmin2026!", "密码太容易猜到", "too easy to guess"),
])
def test_forced_change_refuses_weak_passwords_in_both_languages(
        client: TestClient, idp: Services, password: str, zh: str, en: str) -> None:
    """These four were accepted on the forced-change page before the rule asked for
    12 characters and checked the content."""
    r = login(client, username="sysadmin", password="Admin-Passw0rd-2026!")
    page = _follow_stage(client, r)
    form = {"csrf_token": csrf_of(page.text), "new_password": password,
            "confirm_password": password, "next": "/portal"}
    r = client.post("/portal/login/change", data=form, follow_redirects=False)
    assert r.status_code == 200 and zh in r.text
    r = client.post("/portal/login/change?lang=en", data=form, follow_redirects=False)
    assert r.status_code == 200 and en in r.text
    assert idp.org.get_user("sysadmin").must_change
    assert client.get("/portal", follow_redirects=False).status_code == 303


def test_a_password_set_before_the_rule_must_be_changed_at_sign_in(
        client: TestClient, idp: Services) -> None:
    """A weak password from before the rule (or written straight into the table)
    still signs in, and the next step is the forced change."""
    from gateway.passwords import hash_password
    from gateway.tables import users

    with idp.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "li.si").values(
            password_hash=hash_password("123456789012"), must_change=False))
    r = login(client, username="li.si", password="123456789012")
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login/change")
    assert idp.org.get_user("li.si").must_change
    assert client.get("/portal", follow_redirects=False).status_code == 303
    changes = [e["reason"] for e in audit_events(idp, "admin_change")]
    assert "user_password_change_required" in changes
    # a strong one is left alone
    client.cookies.clear()
    r = login(client)
    assert r.headers["location"] == "/portal" and not idp.org.get_user("zhang.san").must_change


def test_an_authenticator_secret_that_does_not_open_is_refused_and_audited(
        client: TestClient, idp: Services) -> None:
    """li.si's sealed TOTP secret copied onto zhang.san's row (an insider's swap, or a
    key lost): it does not open there. The sign-in is refused with a page that says
    what to do, audited, and not counted as zhang.san's wrong code (was a 500)."""
    zhang, li = idp.org.get_user("zhang.san"), idp.org.get_user("li.si")
    for user in (zhang, li):
        totp.store(idp, user, pyotp.random_base32())
    with idp.engine.begin() as conn:
        blob = conn.execute(sa.select(users.c.totp_secret).where(users.c.id == li.id)).scalar()
        conn.execute(users.update().where(users.c.id == zhang.id).values(totp_secret=blob))
    r = login(client)
    assert r.headers["location"].startswith("/portal/login/totp")
    page = _follow_stage(client, r)
    r = client.post("/portal/login/totp", data={"csrf_token": csrf_of(page.text),
                                                "code": "123456", "next": "/portal"})
    assert r.status_code == 403 and "请联系系统管理员重新绑定" in r.text
    failed = [e for e in audit_events(idp, "mfa_verify") if e["outcome"] == "failure"]
    assert failed and "does not open" in failed[-1]["reason"]
    assert idp.org.get_user("zhang.san").failed_logins == 0
