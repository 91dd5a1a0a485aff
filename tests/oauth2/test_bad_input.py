"""Bad input: each gets the RFC's error code, nothing is issued, and it is audited."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import (
    FINANCE,
    OFFICE,
    OFFICE_CB,
    audit_events,
    authorize,
    close_services,
    code_flow,
    code_from,
    frozen_now,
    login,
    make_services,
    pkce,
)
from tests.wiring import apply_state, parts


def _exchange(client: TestClient, code: str, verifier: str, auth: Any = OFFICE) -> Any:
    return client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": OFFICE_CB,
        "code_verifier": verifier}, auth=auth)


def _no_token(r: Any) -> None:
    body = r.json()
    assert "access_token" not in body and "refresh_token" not in body and "id_token" not in body


def _denied(idp: Services, error: str) -> None:
    reasons = [e["reason"] or "" for e in audit_events(idp, "token_denied")]
    assert any(r.startswith(error) for r in reasons), reasons


def test_code_reuse_revokes_what_the_first_use_issued(client: TestClient, idp: Services) -> None:
    verifier, challenge = pkce()
    login(client)
    code = code_from(authorize(client, challenge=challenge))
    first = _exchange(client, code, verifier)
    assert first.status_code == 200
    again = _exchange(client, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    _no_token(again)
    _denied(idp, "invalid_grant")
    assert audit_events(idp, "token_code_reuse")
    rt = first.json()["refresh_token"]
    r = client.post("/oauth2/token", data={"grant_type": "refresh_token", "refresh_token": rt},
                    auth=OFFICE)
    assert r.json()["error"] == "invalid_grant"
    intro = client.post("/oauth2/introspect", data={"token": first.json()["access_token"]},
                        auth=FINANCE)
    assert intro.json() == {"active": False}


@pytest.fixture
def frozen(settings: Settings) -> Iterator[tuple[Services, FrozenClock, TestClient]]:
    clock = frozen_now()
    services = make_services(settings, clock=clock)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, clock, c
    close_services(services)


def test_expired_code(frozen: tuple[Services, FrozenClock, TestClient]) -> None:
    idp, clock, client = frozen
    verifier, challenge = pkce()
    login(client)
    code = code_from(authorize(client, challenge=challenge))
    clock.advance(61)
    r = _exchange(client, code, verifier)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)
    _denied(idp, "invalid_grant")


def test_expired_access_token_is_refused(frozen: tuple[Services, FrozenClock, TestClient],
                                         ) -> None:
    idp, clock, client = frozen
    tokens = code_flow(client)
    clock.advance(600 + 61)
    r = client.get("/oauth2/userinfo",
                   headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert r.status_code == 401
    assert any("expired" in (e["reason"] or "") for e in audit_events(idp, "userinfo"))


def test_a_refresh_token_ends_with_its_sessions_timeouts(
        frozen: tuple[Services, FrozenClock, TestClient]) -> None:
    """A refresh token is bound to its portal session and ends with it (docs/sso.md),
    its idle and absolute timeouts too: each rotation gave 8 hours more, so a relying
    party refreshing now and then kept a grant of a session that had timed out, for
    ever (RFC 9700 section 4.14.2). A refresh counts as the person's activity, as
    Keycloak counts it, up to the absolute timeout."""
    idp, clock, client = frozen
    settings = idp.settings
    tokens = code_flow(client)
    clock.advance(settings.session_idle_timeout + 1)  # nothing done for 30 minutes
    r = client.post("/oauth2/token", auth=OFFICE, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "idle timeout" in r.json()["error_description"]
    _no_token(r)

    client.cookies.clear()
    tokens = code_flow(client)  # a new sign-in, then a refresh within each idle timeout
    refresh_token, started = tokens["refresh_token"], idp.clock()
    while True:
        clock.advance(settings.session_idle_timeout - 60)
        if (idp.clock() - started).total_seconds() >= settings.session_absolute_timeout:
            break
        r = client.post("/oauth2/token", auth=OFFICE, data={
            "grant_type": "refresh_token", "refresh_token": refresh_token})
        assert r.status_code == 200, (idp.clock() - started, r.text)
        refresh_token = r.json()["refresh_token"]
    # past the absolute timeout: inactive at introspection, refused at the token endpoint
    intro = client.post("/oauth2/introspect", data={"token": refresh_token}, auth=FINANCE)
    assert intro.json() == {"active": False}
    r = client.post("/oauth2/token", auth=OFFICE, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "absolute timeout" in r.json()["error_description"]


def test_pkce_mismatch(client: TestClient, idp: Services) -> None:
    _, challenge = pkce()
    other, _ = pkce()
    login(client)
    code = code_from(authorize(client, challenge=challenge))
    r = _exchange(client, code, other)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)
    _denied(idp, "invalid_grant")


def test_plain_pkce_is_refused(client: TestClient) -> None:
    login(client)
    r = authorize(client, code_challenge="a" * 43, code_challenge_method="plain")
    assert r.status_code == 302 and "error=invalid_request" in r.headers["location"]
    assert "code=" not in r.headers["location"]


def test_wrong_client_secret(client: TestClient, idp: Services) -> None:
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                    auth=(FINANCE[0], "wrong-secret-wrong-secret-wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    _no_token(r)
    _denied(idp, "invalid_client")


def test_unregistered_grant(client: TestClient, idp: Services) -> None:
    r = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=OFFICE)
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    _no_token(r)
    r = client.post("/oauth2/token", data={"grant_type": "password", "username": "x",
                                           "password": "y"}, auth=FINANCE)
    assert r.json()["error"] == "unsupported_grant_type"
    _denied(idp, "unauthorized_client")


def test_scope_the_client_may_not_have(client: TestClient, idp: Services) -> None:
    """Refused, naming it (RFC 6749 section 5.2 ``invalid_scope``), not dropped: a token
    for less than asked would hide the mistake. At the authorization endpoint the error
    goes back to the validated redirect URI with the state (section 4.1.2.1)."""
    for scope in ("admin", "admin proxy", "proxy:ASSETS", "catalogue:write", "groups"):
        r = client.post("/oauth2/token", data={"grant_type": "client_credentials",
                                               "scope": scope}, auth=FINANCE)
        assert r.status_code == 400, (scope, r.text)
        assert r.json()["error"] == "invalid_scope"
        refused = scope.replace(" proxy", "") if scope != "proxy:ASSETS" else scope
        assert r.json()["error_description"] == \
            f"the client may not have the scope(s): {refused}"
        _no_token(r)
    denied = audit_events(idp, "token_denied")
    assert [(e["actor_client"], e["status"]) for e in denied] == [(FINANCE[0], 400)] * 5
    assert denied[0]["reason"] == "invalid_scope: the client may not have the scope(s): admin"
    # what the client may have is still granted: proxy:{system} under proxy, and the
    # standard OpenID Connect scopes for every client (documented; no refresh token); a
    # scope the gateway does not define beside them is dropped
    r = client.post("/oauth2/token", data={
        "grant_type": "client_credentials", "scope": "proxy:assets openid offline_access groups"},
        auth=FINANCE)
    assert r.status_code == 200 and r.json()["scope"] == "proxy:assets openid offline_access"
    assert "refresh_token" not in r.json()

    login(client)
    verifier, challenge = pkce()
    r = authorize(client, scope="openid admin", challenge=challenge, state="st-9")
    assert r.status_code == 302
    back = parse_qs(urlparse(r.headers["location"]).query)
    assert r.headers["location"].startswith(OFFICE_CB + "?")
    assert back["error"] == ["invalid_scope"] and back["state"] == ["st-9"]
    assert back["error_description"] == ["the client may not have the scope(s): admin"]
    assert "code" not in back
    refused_at = audit_events(idp, "authorize")[-1]
    assert (refused_at["outcome"], refused_at["actor_client"]) == ("failure", OFFICE[0])
    assert refused_at["reason"] == "invalid_scope: the client may not have the scope(s): admin"
    # the standard scopes alone: a code, and a token for them
    code = code_from(authorize(client, scope="openid profile offline_access",
                               challenge=challenge))
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": OFFICE_CB,
        "code_verifier": verifier}, auth=OFFICE)
    assert r.status_code == 200 and r.json()["scope"] == "openid profile offline_access"
    # a refresh asking for a scope the client may not have: refused, the token still good
    refresh = r.json()["refresh_token"]
    r = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                           "refresh_token": refresh, "scope": "admin"},
                    auth=OFFICE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"
    assert "admin" in r.json()["error_description"]
    r = client.post("/oauth2/token", data={"grant_type": "refresh_token",
                                           "refresh_token": refresh, "scope": "openid"},
                    auth=OFFICE)
    assert r.status_code == 200 and r.json()["scope"] == "openid"


def test_unregistered_redirect_uri_never_redirects(client: TestClient, idp: Services) -> None:
    login(client)
    r = authorize(client, redirect_uri="https://evil.example/cb")
    assert r.status_code == 400 and "location" not in r.headers
    assert "text/html" in r.headers["content-type"]
    r = authorize(client, client_id="no-such-client")
    assert r.status_code == 400 and "location" not in r.headers
    assert audit_events(idp, "authorize")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    sig = _b64(hmac.new(key, signing.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing}.{sig}"


def test_forged_tokens_are_refused(client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    claims = idp.keys.verify_jwt("token", tokens["access_token"])
    kid = json.loads(base64.urlsafe_b64decode(tokens["access_token"].split(".")[0] + "=="))["kid"]
    public = json.dumps(client.get("/.well-known/jwks.json").json()["keys"][0]).encode()
    forged = {
        "alg none": _forge({"alg": "none", "typ": "at+jwt", "kid": kid}, claims, None),
        "HS256 with public key": _forge({"alg": "HS256", "typ": "at+jwt", "kid": kid}, claims,
                                        public),
    }
    other = dict(claims, iss="https://other-issuer.example")
    forged["other issuer"] = idp.keys.sign_jwt("token", other, headers={"typ": "at+jwt"})
    forged["not at+jwt"] = idp.keys.sign_jwt("token", claims)  # an ID-token-typed JWT
    for name, token in forged.items():
        r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.json() == {"error": "invalid_token"}
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        intro = client.post("/oauth2/introspect", data={"token": token}, auth=FINANCE)
        assert intro.json() == {"active": False}, name
    denials = audit_events(idp, "userinfo")
    assert len(denials) == len(forged)
    assert any("issuer" in (d["reason"] or "") for d in denials)


def test_code_reuse_revokes_the_access_token_of_a_client_without_refresh(
        settings: Settings) -> None:
    """A client registered without the refresh_token grant gets no refresh token, so
    no refresh-token family records its access token: a replayed code must still
    revoke it (RFC 6749 section 4.1.2)."""
    intranet = {"client_id": "intranet", "name": "内网门户", "department": "jgswj",
                "grant_types": ["authorization_code"], "secret": "intranet-secret-0123456789abcd",
                "redirect_uris": [OFFICE_CB]}
    services = make_services(settings, extra_clients=[intranet])
    auth = ("intranet", intranet["secret"])
    try:
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
            verifier, challenge = pkce()
            login(client)
            code = code_from(authorize(client, client_id="intranet", challenge=challenge))
            first = _exchange(client, code, verifier, auth=auth)
            assert first.status_code == 200 and "refresh_token" not in first.json()
            bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
            assert client.get("/oauth2/userinfo", headers=bearer).status_code == 200
            again = _exchange(client, code, verifier, auth=auth)
            assert again.json()["error"] == "invalid_grant"
            intro = client.post("/oauth2/introspect",
                                data={"token": first.json()["access_token"]}, auth=FINANCE)
            assert intro.json() == {"active": False}
            assert client.get("/oauth2/userinfo", headers=bearer).status_code == 401
    finally:
        close_services(services)


def test_near_miss_redirect_uris_never_redirect_whatever_else_is_wrong(
        client: TestClient) -> None:
    """Exact matching only (RFC 9700 section 4.1.3), and no error of any kind is sent to
    a redirect URI that is not registered."""
    _, challenge = pkce()
    near = [OFFICE_CB + "/", OFFICE_CB + "x", OFFICE_CB + "?next=https://evil.example",
            OFFICE_CB + "/../../evil", OFFICE_CB.upper(), OFFICE_CB + "#frag",
            OFFICE_CB.replace("127.0.0.1", "127.0.0.1.evil.example"),
            "http://127.0.0.1:9102@evil.example/callback"]
    combos: list[dict[str, str]] = [
        {}, {"response_type": "token"}, {"prompt": "none"}, {"max_age": "x"},
        {"prompt": "none login"}, {"scope": "openid admin"},
        {"code_challenge_method": "plain"}]
    for uri in near:
        for extra in combos:  # no session: prompt=none would otherwise redirect at once
            r = authorize(client, redirect_uri=uri, challenge=challenge, **extra)
            assert "location" not in r.headers, (uri, extra, r.headers.get("location"))
            assert r.status_code == 400, (uri, extra)
    login(client)
    for uri in near[:3]:
        r = authorize(client, redirect_uri=uri, challenge=challenge)
        assert r.status_code == 400 and "location" not in r.headers, uri
    # a second redirect_uri parameter is refused, not redirected to
    r = client.get("/oauth2/authorize", params=[
        ("response_type", "code"), ("client_id", OFFICE[0]), ("redirect_uri", OFFICE_CB),
        ("redirect_uri", "https://evil.example/cb"), ("scope", "openid"),
        ("code_challenge", challenge), ("code_challenge_method", "S256")],
        follow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers


def test_pkce_cannot_be_downgraded_or_skipped(client: TestClient) -> None:
    """RFC 9700 section 4.8: a code issued with a challenge needs its verifier; office-web
    (``require_pkce``) gets no code without one. A verifier for a code issued without a
    challenge: ``tests/oauth2/test_advisories.py``, with a client that may omit PKCE."""
    _verifier, challenge = pkce()
    login(client)
    r = authorize(client)
    assert r.status_code == 302 and "error=invalid_request" in r.headers["location"]
    code = code_from(authorize(client, challenge=challenge))
    r = client.post("/oauth2/token", data={"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": OFFICE_CB}, auth=OFFICE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)


def test_a_code_or_refresh_token_is_bound_to_its_client_and_redirect_uri(
        client: TestClient) -> None:
    """Code injection: a code (or refresh token) of office-web is worthless to another
    client, and to office-web itself with another redirect_uri."""
    verifier, challenge = pkce()
    login(client)
    code = code_from(authorize(client, challenge=challenge))
    mobile = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
              "client_id": "mobile-app", "redirect_uri": "http://127.0.0.1:9200/cb"}
    r = client.post("/oauth2/token", data=mobile)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": OFFICE_CB + "/other"}, auth=OFFICE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)
    code = code_from(authorize(client, challenge=challenge))
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier},
        auth=OFFICE)  # redirect_uri was in the authorization request: required here
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)
    code = code_from(authorize(client, challenge=challenge))
    tokens = _exchange(client, code, verifier).json()
    r = client.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": "mobile-app"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _no_token(r)


# -- malformed HTTP Basic client credentials (RFC 6749 section 2.3.1) -----------------

#: Authorization values that are Basic but not a well-formed client_secret_basic
#: credential: bytes that are not UTF-8, not base64 at all, no colon, and form-encoding
#: that does not decode
BAD_BASIC = {
    "not UTF-8": "Basic //46/w==",
    "not base64": "Basic !!!not-base64!!!",
    "no colon": "Basic " + base64.b64encode(b"finance-system").decode(),
    "bad percent-encoding": "Basic " + base64.b64encode(b"finance%zzsystem:x%2").decode(),
    "percent-encoded non-UTF-8": "Basic " + base64.b64encode(b"finance-system:%ff%fe").decode(),
    "empty": "Basic ",
    "only a colon": "Basic " + base64.b64encode(b":").decode(),
}


@pytest.mark.parametrize("endpoint,data", [
    ("/oauth2/token", {"grant_type": "client_credentials"}),
    ("/oauth2/token", {"grant_type": "authorization_code", "code": "x",
                       "redirect_uri": OFFICE_CB}),
    ("/oauth2/introspect", {"token": "x"}),
    ("/oauth2/revoke", {"token": "x"}),
])
def test_malformed_basic_credentials_are_invalid_client(
        client: TestClient, idp: Services, endpoint: str, data: dict[str, str]) -> None:
    """Unauthenticated bytes in the Authorization header are a failed client
    authentication (RFC 6749 section 5.2: invalid_client, 401), never a 500, and the
    refusal is audited as a denied client authentication."""
    for name, header in BAD_BASIC.items():
        before = len(audit_events(idp, "client_authentication"))
        r = client.post(endpoint, data=data, headers={"Authorization": header})
        assert r.status_code == 401, (name, r.status_code, r.text)
        assert r.json()["error"] == "invalid_client", name
        assert r.headers["www-authenticate"].lower().startswith("basic"), name
        _no_token(r)
        denied = audit_events(idp, "client_authentication")[before:]
        assert [d["outcome"] for d in denied] == ["deny"], name
        assert (denied[0]["reason"] or "").startswith("client_secret_basic: malformed"), name
        assert denied[0]["status"] == 401, name


def test_basic_credentials_are_form_decoded(settings: Settings) -> None:
    """RFC 6749 section 2.3.1: id and secret are form-urlencoded before base64, so a
    '+' is a space and %XX a UTF-8 byte."""
    odd = {"client_id": "odd.client", "name": "奇怪的客户端", "department": "czt",
           "grant_types": ["client_credentials"], "scope": "",
           "secret": "a secret: with+plus/and 中文 0123456789"}
    services = make_services(settings, extra_clients=[odd])
    try:
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
            from urllib.parse import quote_plus

            raw = f"{quote_plus('odd.client')}:{quote_plus(odd['secret'])}"
            r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": "Basic " + base64.b64encode(
                                raw.encode()).decode()})
            assert r.status_code == 200, r.text
            # the unencoded secret holds '+', which form-decodes to a space: refused,
            # and told so (curl -u sends it as it is), audited with that reason
            raw = f"odd.client:{odd['secret']}"
            r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": "Basic " + base64.b64encode(
                                raw.encode()).decode()})
            assert r.status_code == 401 and r.json()["error"] == "invalid_client"
            assert "sent without form-encoding" in r.json()["error_description"]
            assert "%2B" in r.json()["error_description"]
            denied = audit_events(services, "client_authentication")[-1]
            assert denied["reason"] == (
                "client_secret_basic: the secret was sent without form-encoding")
            # a wrong secret that holds '+' is only wrong
            raw = f"odd.client:{odd['secret'][:-1]}+"
            r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": "Basic " + base64.b64encode(
                                raw.encode()).decode()})
            assert r.json()["error_description"] == "client authentication failed"
            # a secret with a '%' that is no escape, sent as it is: malformed when
            # decoded, and told so as well
            apply_state(services, {"clients": [{**odd, "secret": odd["secret"] + "%zz"}]})
            raw = f"odd.client:{odd['secret']}%zz"
            r = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            headers={"Authorization": "Basic " + base64.b64encode(
                                raw.encode()).decode()})
            assert r.status_code == 401
            assert "sent without form-encoding" in r.json()["error_description"]
    finally:
        close_services(services)


@pytest.mark.parametrize("param,value", [
    ("redirect_uri", OFFICE_CB + '\\'), ("redirect_uri", 'https://evil.example/"cb'),
    ("redirect_uri", "https://evil.example/\\cb"), ("redirect_uri", OFFICE_CB + "/回调"),
    ("response_type", 'code"'), ("response_type", "co\\de"), ("response_type", "代码"),
])
def test_authorize_with_characters_an_error_cannot_carry(
        client: TestClient, idp: Services, param: str, value: str) -> None:
    """RFC 6749 section 4.1.2.1: an error_description may not hold '"', '\\' or
    non-ASCII, so authlib refuses to build the error that would echo such a value.
    The answer is the error page (never a redirect: the URI is not a registered one),
    audited, with or without a session."""
    for signed_in in (False, True):
        if signed_in:
            login(client)
        before = len(audit_events(idp, "authorize"))
        r = authorize(client, **{param: value})
        assert r.status_code == 400, (signed_in, r.status_code, r.text[:300])
        assert "location" not in r.headers
        assert "text/html" in r.headers["content-type"]
        new = audit_events(idp, "authorize")[before:]
        assert [e["outcome"] for e in new] == ["failure"], new
        assert (new[0]["reason"] or "").startswith("invalid_request"), new[0]["reason"]


def test_a_repeated_parameter_or_two_client_methods_are_refused_and_audited(
        client: TestClient, idp: Services) -> None:
    """RFC 6749 section 3.2 (no parameter more than once) and section 2.3 (one client
    authentication method per request), at the token, introspection and revocation
    endpoints alike: nothing issued, revealed or revoked, each refusal audited."""
    tokens = code_flow(client)
    form = "application/x-www-form-urlencoded"
    rt = tokens["refresh_token"]
    r = client.post("/oauth2/token", auth=OFFICE, headers={"content-type": form},
                    content=f"grant_type=refresh_token&refresh_token={rt}&refresh_token=x")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "refresh_token" in r.json()["error_description"]
    _no_token(r)
    _denied(idp, "invalid_request")
    at = tokens["access_token"]
    r = client.post("/oauth2/introspect", auth=FINANCE,
                    data={"token": at, "client_id": FINANCE[0], "client_secret": FINANCE[1]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "active" not in r.json()
    r = client.post("/oauth2/revoke", auth=OFFICE, headers={"content-type": form},
                    content=f"token={rt}&token={rt}")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    reasons = {e["event_type"]: e["reason"] for e in audit_events(idp)
               if (e["reason"] or "").startswith("invalid_request")}
    assert {"token_denied", "token_introspection_denied",
            "token_revocation_denied"} <= set(reasons)
    assert FINANCE[1] not in json.dumps(audit_events(idp), default=str)
    # a repeated name the error description may not carry as it is (non-ASCII, '"',
    # '\\'): named percent-encoded, never a 500
    for name, shown in (("%E6%A1%A3", "'%E6%A1%A3'"), ("a%22b%5Cc", "'a%22b%5Cc'")):
        for path in ("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"):
            r = client.post(path, auth=OFFICE, headers={"content-type": form},
                            content=f"token={rt}&{name}=1&{name}=2")
            assert r.status_code == 400 and r.json()["error"] == "invalid_request", r.text
            assert r.json()["error_description"] == \
                f"the parameter {shown} is given more than once", path
    # the refresh token was neither used up nor revoked by the refused requests
    again = client.post("/oauth2/token", auth=OFFICE,
                        data={"grant_type": "refresh_token", "refresh_token": rt})
    assert again.status_code == 200, again.text
