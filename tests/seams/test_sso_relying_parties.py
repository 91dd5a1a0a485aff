"""Single sign-on attacked as relying parties and attackers do (2026-12-05): what the
identity provider's OpenID Connect endpoints got wrong, each shown through HTTP on
one gateway for the module (the demo organisation and clients, in process).

- a disabled user's tokens: introspection said ``active: true``, a refresh said
  ``invalid_request`` (not the ``invalid_grant`` relying-party libraries act on);
- ``/oauth2/logout`` took an access token as ``id_token_hint`` and ended the session
  with no confirmation (anyone the token was shown to could sign the user out);
- ``/oauth2/authorize`` ignored ``id_token_hint`` (``prompt=none`` with the hint of
  one user answered a code for whoever the browser's session was, a hint issued to
  another client or not ours at all passed), and ignored ``request``/``request_uri``
  (a signed request object's ``max_age`` or ``prompt`` silently dropped) and a
  ``response_mode`` of ``form_post`` or ``fragment`` (the code went in the query
  all the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from tests.cas.conftest import SERVICE, register_cas
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import (
    OFFICE,
    OFFICE_CB,
    audit_events,
    authorize,
    close_services,
    code_flow,
    code_from,
    consented,
    csrf_of,
    login,
    make_services,
    pkce,
)
from tests.wiring import parts

MOBILE_CB = "http://127.0.0.1:9200/cb"


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with settings_of_its_own(tmp_path_factory) as settings:
        services = make_services(settings)
        register_cas(services)
        yield services
        close_services(services)


@pytest.fixture(scope="module")
def app(idp: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(idp)), base_url="http://127.0.0.1:8080") as c:
        yield c


@pytest.fixture
def client(app: TestClient) -> TestClient:
    """The module's client as a browser of its own: no cookies of earlier tests."""
    app.cookies.clear()
    return app


def tokens(client: TestClient, username: str) -> dict[str, Any]:
    """``username`` signs in and office-web redeems a code."""
    client.cookies.clear()
    return code_flow(client, username=username)


def redirected(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(OFFICE_CB + "?")
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def signed_in(client: TestClient) -> bool:
    r = client.get("/portal", follow_redirects=False)
    return not (r.status_code == 303 and r.headers["location"].startswith("/portal/login"))


def test_a_disabled_users_tokens_are_inactive_and_refresh_is_invalid_grant(
        client: TestClient, idp: Services) -> None:
    tok = tokens(client, "li.si")
    idp.org.disable_user("li.si")
    idp.live_users.invalidate()
    for token in (tok["access_token"], tok["refresh_token"]):
        r = client.post("/oauth2/introspect", data={"token": token}, auth=OFFICE)
        assert r.status_code == 200 and r.json() == {"active": False}, r.text
    r = client.post("/oauth2/token", data={
        "grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}, auth=OFFICE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    seen = [(e["event_type"], e["outcome"], e["reason"]) for e in audit_events(idp)[-3:]]
    assert seen[0][:2] == seen[1][:2] == ("token_introspected", "success")
    assert "user not active" in seen[0][2] and "user not active" in seen[1][2]
    assert seen[2][:2] == ("token_denied", "failure") and "invalid_grant" in seen[2][2]
    # revoked while the user is disabled: enabling them again does not bring it back
    r = client.post("/oauth2/revoke", data={"token": tok["access_token"]}, auth=OFFICE)
    assert r.status_code == 200
    assert audit_events(idp)[-1]["event_type"] == "token_revoked"
    idp.org.enable_user("li.si")
    idp.live_users.invalidate()
    r = client.post("/oauth2/introspect", data={"token": tok["access_token"]}, auth=OFFICE)
    assert r.json() == {"active": False}


def test_logout_takes_no_access_token_for_an_id_token_hint(client: TestClient) -> None:
    tok = tokens(client, "zhou.ling")
    r = client.get("/oauth2/logout", params={"id_token_hint": tok["access_token"]},
                   follow_redirects=False)
    assert r.status_code == 200 and 'name="csrf_token"' in r.text  # the confirmation
    assert signed_in(client)
    r = client.get("/oauth2/logout", params={"id_token_hint": tok["id_token"]},
                   follow_redirects=False)
    assert r.status_code == 200 and not signed_in(client)


def test_authorize_checks_the_id_token_hint(client: TestClient, idp: Services) -> None:
    consented(idp, "zhao.min")  # czt's zhao.min at jgswj's office-web
    other = tokens(client, "zhao.min")["id_token"]
    own = tokens(client, "zhou.ling")["id_token"]
    _, challenge = pkce()
    # the hint names another user than the session's: no code for the session's user
    answer = redirected(authorize(client, challenge=challenge, prompt="none",
                                  id_token_hint=other))
    assert answer["error"] == "login_required" and answer["state"] == "st-1"
    assert "code" not in answer and "id_token_hint" in answer["error_description"]
    # without prompt=none: the sign-in form; signing in as the hint's user gives the code,
    # as the session's user again login_required
    for who, expected in (("zhou.ling", "error"), ("zhao.min", "code")):
        r = authorize(client, challenge=challenge, id_token_hint=other)
        assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?")
        next_url = parse_qs(urlparse(r.headers["location"]).query)["next"][0]
        assert login(client, username=who, next_url=next_url).headers["location"] == next_url
        answer = redirected(client.get(next_url, follow_redirects=False))
        assert expected in answer and answer.get("error", "login_required") == "login_required"
    # a hint that is no ID token of ours, or one issued to another client
    client.cookies.clear()
    assert login(client, username="zhou.ling").status_code == 303
    for hint in ("garbage", own.rsplit(".", 1)[0] + ".AAAA"):
        answer = redirected(authorize(client, challenge=challenge, id_token_hint=hint))
        assert answer["error"] == "invalid_request" and "id_token_hint" in answer[
            "error_description"]
    # the session's own hint: the code
    assert "code" in redirected(authorize(client, challenge=challenge, prompt="none",
                                          id_token_hint=own))
    reasons = [e["reason"] for e in audit_events(idp, "authorize")
               if e["outcome"] == "failure"][-4:]
    assert reasons[0].startswith("login_required") and "id_token_hint" in reasons[0]
    assert all("id_token_hint" in r for r in reasons[1:])


def test_an_id_token_hint_of_another_client_is_refused(client: TestClient) -> None:
    assert login(client, username="zhou.ling").status_code == 303
    verifier, challenge = pkce()
    r = client.get("/oauth2/authorize", params={
        "response_type": "code", "client_id": "mobile-app", "redirect_uri": MOBILE_CB,
        "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"},
        follow_redirects=False)
    code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": MOBILE_CB,
        "code_verifier": verifier, "client_id": "mobile-app"})
    mobile_id_token = r.json()["id_token"]
    answer = redirected(authorize(client, challenge=challenge, id_token_hint=mobile_id_token))
    assert answer["error"] == "invalid_request", answer


@pytest.mark.parametrize(("name", "value", "error"), [
    ("request", "eyJhbGciOiJub25lIn0.eyJtYXhfYWdlIjowfQ.", "request_not_supported"),
    ("request_uri", "https://rp.example/request.jwt", "request_uri_not_supported"),
    ("response_mode", "form_post", "invalid_request"),
    ("response_mode", "fragment", "invalid_request")])
def test_what_is_not_supported_is_refused_not_ignored(client: TestClient, idp: Services,
                                                      name: str, value: str,
                                                      error: str) -> None:
    assert login(client, username="zhou.ling").status_code == 303
    _, challenge = pkce()
    answer = redirected(authorize(client, challenge=challenge, **{name: value}))
    assert answer["error"] == error and answer["state"] == "st-1" and "code" not in answer
    last = audit_events(idp, "authorize")[-1]
    assert last["outcome"] == "failure" and last["reason"].startswith(error)



def test_a_disabled_users_old_session_gets_no_ticket_and_no_code(client: TestClient,
                                                                 idp: Services) -> None:
    """Held: the session outlives nothing once its user is disabled (SAML: in
    tests/saml/test_refusals.py)."""
    assert login(client, username="wang.wu").status_code == 303
    r = client.get("/cas/login", params={"service": SERVICE}, follow_redirects=False)
    ticket = parse_qs(urlparse(r.headers["location"]).query)["ticket"][0]
    idp.org.disable_user("wang.wu")
    r = client.get("/cas/p3/serviceValidate", params={"ticket": ticket, "service": SERVICE})
    assert "INVALID_TICKET" in r.text and "authenticationSuccess" not in r.text
    for params in ({}, {"gateway": "true"}, {"renew": "true"}):
        r = client.get("/cas/login", params={"service": SERVICE, **params},
                       follow_redirects=False)
        assert r.status_code in (303, 403) and "ticket=" not in r.headers.get("location", "")
    _, challenge = pkce()
    r = authorize(client, challenge=challenge)
    assert r.status_code == 403 and "location" not in r.headers
    assert redirected(authorize(client, challenge=challenge, prompt="none"))["error"] == \
        "login_required"


def test_a_code_of_a_session_signed_out_since_gets_no_tokens(client: TestClient,
                                                              idp: Services) -> None:
    """The user signs out of the portal before the relying party redeems the code: an
    ID token then would sign them in to the relying party after they signed out."""
    assert login(client, username="zhou.ling").status_code == 303
    verifier, challenge = pkce()
    code = code_from(authorize(client, challenge=challenge))
    page = client.get("/portal")
    assert client.post("/portal/logout", data={"csrf_token": csrf_of(page.text)},
                       follow_redirects=False).status_code == 200  # signed out page
    r = client.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": OFFICE_CB,
        "code_verifier": verifier}, auth=OFFICE)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text
    assert "id_token" not in r.text and "access_token" not in r.text
    last = audit_events(idp, "token_denied")[-1]
    assert "session has ended" in last["reason"]


def test_userinfo_releases_nothing_unaudited(client: TestClient, idp: Services,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/sso.md: every answer of the identity provider's endpoints is audited first.
    The claims userinfo releases (name, department, roles, email, phone) were not."""
    from tests.tokens import access_token

    tok = tokens(client, "zhou.ling")
    r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 200 and r.json()["sub"] == "zhou.ling"
    record = audit_events(idp, "userinfo")[-1]
    assert (record["outcome"], record["actor_user"], record["actor_client"]) == (
        "success", "zhou.ling", "office-web")
    extra = record["extra"] if isinstance(record["extra"], dict) else __import__(
        "json").loads(record["extra"])
    assert set(extra["claims"]) == set(r.json()) and extra["jti"]
    no_openid = access_token(idp, sub="zhou.ling", department="jgswj", scope="proxy")
    r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {no_openid}"})
    assert r.status_code == 403
    record = audit_events(idp, "userinfo")[-1]
    assert (record["outcome"], record["status"]) == ("deny", 403)
    assert "insufficient_scope" in record["reason"]

    async def failing(record: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(idp.audit, "append", failing)
    r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert r.status_code == 503 and "zhou.ling" not in r.text
