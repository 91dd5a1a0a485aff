"""The identity provider attacked with RFC 9700 (OAuth 2.0 Security Best Current
Practice) and OpenID Connect Core open, over a real socket: one gateway for the module
(uvicorn on 127.0.0.1, the demo organisation and clients), the relying party being
authlib's ``OAuth2Session`` with its defaults (PKCE S256, ``state``, ``nonce``), the
browser a ``requests`` session that signs in through the portal's form.

What broke (each test failed before its fix; docs/seams.md, "Attack of 2026-12-05,
fifth session (RFC 9700)"):

- no authorization response named its issuer (RFC 9207; RFC 9700 section 4.4.2, the
  mix-up defence), and discovery did not say it would;
- a refresh asking for a narrower scope narrowed the rotated refresh token too, where
  RFC 6749 section 6 keeps its scope identical: the relying party had lost the rest
  of its grant for good;
- a refresh token used already, presented again asking for a wider scope, got
  ``invalid_scope`` and left its family alive: a replay escaped reuse detection
  (RFC 9700 section 4.14.2);
- an authorization request POSTed (OpenID Connect Core 3.1.2.1) without a session
  lost its parameters through the sign-in and ended on an error page;
- a ``nonce`` longer than its column (255) was a 500 on PostgreSQL;

and what that attack left ("what RFC 9700 left"):

- a client could be registered under a username, a user created under a client's id
  (a client-credentials token's ``sub`` is its ``client_id``; RFC 9700 section 4.15);
- an OpenID Connect request without ``redirect_uri`` was answered at the client's one
  registered URI (Core 3.1.2.1: REQUIRED);
- an unknown ``token_type_hint`` was a 401 at revocation and introspection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.errors import NotFound
from gateway.services import Services
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import DEMO_PASSWORD, OFFICE, OFFICE_CB, audit_events
from tests.oauth2.live import live_gateway
from tests.tokens import access_token, ensure_user

TIMEOUT = 10


@dataclass
class World:
    issuer: str
    services: Services
    discovery: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with settings_of_its_own(tmp_path_factory) as settings, \
            live_gateway(settings) as (issuer, services):
        found = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
        yield World(issuer, services, found.json())


def relying_party(world: World) -> OAuth2Session:
    """office-web as authlib's client library drives it by default."""
    return OAuth2Session(OFFICE[0], OFFICE[1], scope="openid profile",
                         redirect_uri=OFFICE_CB, code_challenge_method="S256",
                         token_endpoint_auth_method="client_secret_basic")


def sign_in_form(world: World, browser: requests.Session, page: requests.Response
                 ) -> requests.Response:
    """Post the sign-in form ``page`` shows as zhang.san; the answer, not followed."""
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    next_url = re.search(r'name="next" value="([^"]+)"', page.text)
    assert csrf and next_url, page.text[:300]
    return browser.post(f"{world.issuer}/portal/login", data={
        "csrf_token": csrf.group(1), "username": "zhang.san", "password": DEMO_PASSWORD,
        "next": next_url.group(1).replace("&amp;", "&")},
        allow_redirects=False, timeout=TIMEOUT)


@pytest.fixture
def browser(world: World) -> Iterator[requests.Session]:
    """A browser signed in to the portal."""
    with requests.Session() as session:
        page = session.get(f"{world.issuer}/portal/login", timeout=TIMEOUT)
        assert sign_in_form(world, session, page).status_code == 303
        yield session


def answer(response: requests.Response) -> dict[str, str]:
    """The parameters of the authorization response sent to office-web's callback."""
    assert response.status_code == 302, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(OFFICE_CB + "?"), location
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def authorize(world: World, browser: requests.Session, rp: OAuth2Session,
              verifier: str, **extra: str) -> tuple[str, requests.Response]:
    """The RP's authorization URL (PKCE S256, state, nonce) opened in ``browser``;
    (the state, the answer, not followed)."""
    url, state = rp.create_authorization_url(
        world.discovery["authorization_endpoint"], code_verifier=verifier, nonce="n-9700",
        **extra)
    return state, browser.get(url, allow_redirects=False, timeout=TIMEOUT)


def tokens(world: World, browser: requests.Session) -> dict[str, Any]:
    rp = relying_party(world)
    verifier = "v" * 64
    _, response = authorize(world, browser, rp, verifier)
    return dict(rp.fetch_token(world.discovery["token_endpoint"],
                               authorization_response=response.headers["location"],
                               code_verifier=verifier))


def refresh(world: World, refresh_token: str, scope: str | None = None
            ) -> requests.Response:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        data["scope"] = scope
    return requests.post(world.discovery["token_endpoint"], data=data, auth=OFFICE,
                         timeout=TIMEOUT)


# -- mix-up: the issuer in every authorization response (RFC 9207) -------------------

def test_every_authorization_response_names_the_issuer(world: World,
                                                       browser: requests.Session) -> None:
    assert world.discovery["authorization_response_iss_parameter_supported"] is True
    rp = relying_party(world)
    verifier = "w" * 64
    state, response = authorize(world, browser, rp, verifier)
    got = answer(response)
    # the client compares iss with the issuer it sent the request to (RFC 9207 2.4)
    assert got["iss"] == world.discovery["issuer"] == world.issuer
    assert got["state"] == state
    token = rp.fetch_token(world.discovery["token_endpoint"],
                           authorization_response=response.headers["location"],
                           code_verifier=verifier)
    claims = world.services.keys.verify_jwt("token", token["id_token"])
    assert claims["nonce"] == "n-9700" and claims["iss"] == world.issuer

    # errors sent to the redirect URI name it too: one of the request, one of prompt=none
    _, response = authorize(world, browser, rp, verifier, response_mode="fragment")
    assert answer(response) == {"error": "invalid_request", "state": answer(response)["state"],
                                "error_description": "response_mode: only query is supported",
                                "iss": world.issuer}
    with requests.Session() as stranger:  # no session: login_required, no page
        state, response = authorize(world, stranger, rp, verifier, prompt="none")
    assert answer(response) == {"error": "login_required", "state": state,
                                "iss": world.issuer}
    _, response = authorize(world, browser, rp, verifier, response_type="code id_token")
    assert answer(response)["error"] == "unsupported_response_type"
    assert answer(response)["iss"] == world.issuer
    # an unregistered redirect URI still gets the error page and no redirect at all
    url, _ = rp.create_authorization_url(world.discovery["authorization_endpoint"],
                                         code_verifier=verifier,
                                         redirect_uri=OFFICE_CB + "/")
    response = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 400 and "location" not in response.headers


# -- refresh tokens: the grant's scope kept, a replay detected whatever it asks -------

def test_a_narrower_refresh_keeps_the_grants_scope_for_the_next(
        world: World, browser: requests.Session) -> None:
    """RFC 6749 section 6: the new refresh token's scope MUST be identical to that of
    the one presented; only the access token is narrower."""
    first = tokens(world, browser)
    assert first["scope"] == "openid profile"
    narrow = refresh(world, first["refresh_token"], "openid")
    assert narrow.status_code == 200, narrow.text
    assert narrow.json()["scope"] == "openid"
    access = world.services.keys.verify_jwt("token", narrow.json()["access_token"])
    assert access["scope"] == "openid"
    again = refresh(world, narrow.json()["refresh_token"])  # the grant's scope again
    assert again.status_code == 200, again.text
    assert again.json()["scope"] == "openid profile"
    wide = refresh(world, again.json()["refresh_token"], "openid profile")
    assert wide.status_code == 200, wide.text
    # never more than the grant
    wider = refresh(world, wide.json()["refresh_token"], "openid profile roles")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    assert refresh(world, wide.json()["refresh_token"]).status_code == 200


@pytest.mark.parametrize("scope", ["openid profile roles", "openid admin"])
def test_a_used_refresh_token_asking_for_more_is_a_replay(
        world: World, browser: requests.Session, scope: str) -> None:
    """RFC 9700 section 4.14.2: a refresh token presented after its rotation revokes
    its family, whether or not it asks for a wider scope or one the client may not
    have (it used to get invalid_scope, and the thief's or the client's next token
    went on working)."""
    first = tokens(world, browser)
    rotated = refresh(world, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    before = len(audit_events(world.services, "token_refresh_token_reuse"))
    replay = refresh(world, first["refresh_token"], scope)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert len(audit_events(world.services, "token_refresh_token_reuse")) == before + 1
    # the family is revoked: the token the rotation issued, and its access token
    assert refresh(world, rotated.json()["refresh_token"]).json()["error"] == "invalid_grant"
    userinfo = requests.get(world.discovery["userinfo_endpoint"], timeout=TIMEOUT,
                            headers={"Authorization": "Bearer "
                                     + rotated.json()["access_token"]})
    assert userinfo.status_code == 401


# -- the authorization request by POST (OpenID Connect Core 3.1.2.1) -------------------

def test_an_authorization_request_posted_survives_the_sign_in(world: World) -> None:
    rp = relying_party(world)
    verifier = "p" * 64
    url, state = rp.create_authorization_url(world.discovery["authorization_endpoint"],
                                             code_verifier=verifier, nonce="n-post",
                                             ui_locales="en")
    form = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    with requests.Session() as browser:
        page = browser.post(world.discovery["authorization_endpoint"], data=form,
                            timeout=TIMEOUT)  # followed to the sign-in form
        assert "/portal/login" in page.url and "lang=en" in page.url, page.url
        signed_in = sign_in_form(world, browser, page)
        assert signed_in.status_code == 303, signed_in.text[:300]
        response = browser.get(world.issuer + signed_in.headers["location"],
                               allow_redirects=False, timeout=TIMEOUT)
    got = answer(response)
    assert got["state"] == state and "code" in got, got
    token = rp.fetch_token(world.discovery["token_endpoint"],
                           authorization_response=response.headers["location"],
                           code_verifier=verifier)
    assert world.services.keys.verify_jwt("token", token["id_token"])["nonce"] == "n-post"


# -- a nonce longer than a code can keep ------------------------------------------------

def test_a_nonce_longer_than_the_code_keeps_is_refused_at_the_client(
        world: World, browser: requests.Session) -> None:
    rp = relying_party(world)
    url, state = rp.create_authorization_url(world.discovery["authorization_endpoint"],
                                             code_verifier="x" * 64, nonce="n" * 256)
    response = browser.get(url, allow_redirects=False, timeout=TIMEOUT)
    got = answer(response)  # a 500 on PostgreSQL; on SQLite a code with the whole nonce
    assert got["error"] == "invalid_request" and got["state"] == state, got
    assert "nonce" in got["error_description"]
    url, _ = rp.create_authorization_url(world.discovery["authorization_endpoint"],
                                         code_verifier="x" * 64, nonce="n" * 255)
    assert "code" in answer(browser.get(url, allow_redirects=False, timeout=TIMEOUT))


# -- revocation and introspection: the token_type_hint is a hint (RFC 7009, RFC 7662) --

def test_a_wrong_token_type_hint_still_finds_the_token(world: World,
                                                       browser: requests.Session) -> None:
    """An access token revoked with ``token_type_hint=refresh_token`` was answered 200
    and went on working (the client believed it revoked); RFC 7009 section 2.1: a
    server that does not find the token under the hint MUST search the other types."""
    issued = tokens(world, browser)
    bearer = {"Authorization": "Bearer " + issued["access_token"]}
    look = requests.post(world.discovery["introspection_endpoint"], auth=OFFICE,
                         timeout=TIMEOUT, data={"token": issued["access_token"],
                                                "token_type_hint": "refresh_token"})
    assert look.json()["active"] is True, look.text
    revoked = requests.post(world.discovery["revocation_endpoint"], auth=OFFICE,
                            timeout=TIMEOUT, data={"token": issued["access_token"],
                                                   "token_type_hint": "refresh_token"})
    assert revoked.status_code == 200
    userinfo = requests.get(world.discovery["userinfo_endpoint"], headers=bearer,
                            timeout=TIMEOUT)
    assert userinfo.status_code == 401
    # a refresh token under the access token's hint: found, revoked, its family with it
    revoked = requests.post(world.discovery["revocation_endpoint"], auth=OFFICE,
                            timeout=TIMEOUT, data={"token": issued["refresh_token"],
                                                   "token_type_hint": "access_token"})
    assert revoked.status_code == 200
    assert refresh(world, issued["refresh_token"]).json()["error"] == "invalid_grant"


# -- each parameter once (RFC 6749 section 3.1) -----------------------------------------

@pytest.mark.parametrize("repeated", [("state", "other"), ("code_challenge", "x" * 43),
                                      ("scope", "openid profile roles")])
def test_a_repeated_authorization_parameter_is_refused_on_the_error_page(
        world: World, browser: requests.Session, repeated: tuple[str, str]) -> None:
    """A second ``state`` used to come back instead of the first, a second
    ``code_challenge`` (one an attacker chose) bound the code, a second ``scope``
    widened it: the last of each was read, where a layer in front may read the
    first. Refused as the token endpoint refuses it, with no redirect."""
    rp = relying_party(world)
    url, _ = rp.create_authorization_url(world.discovery["authorization_endpoint"],
                                         code_verifier="r" * 64, nonce="n")
    response = browser.get(url + "&" + "=".join(repeated), allow_redirects=False,
                           timeout=TIMEOUT)
    assert response.status_code == 400 and "location" not in response.headers
    assert f"&#39;{repeated[0]}&#39; is given more than once" in response.text, \
        response.text[-400:]
    refusals = [r for r in audit_events(world.services, "authorize")
                if "more than once" in (r["reason"] or "")]
    assert refusals and repeated[0] in refusals[-1]["reason"]


# -- a client is never named as a person (RFC 9700 section 4.15) -------------------------

def _cli(world: World, *args: str) -> tuple[int, str]:
    settings = world.services.settings
    env = {"GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
           "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_a_client_and_a_user_never_share_a_name(world: World, tmp_path: Path) -> None:
    """A client-credentials token's ``sub`` is its ``client_id``: a client registered
    under a username (or a user created under a client's id) would be that person to a
    resource server reading ``sub`` alone. Each creation point used to accept it."""
    services = world.services
    department = services.org.get_user("zhang.san").department
    ensure_user(services, "sysadmin", "platform", ["sysadmin"])
    admin = {"Authorization": "Bearer " + access_token(
        services, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    api = f"{world.issuer}/api/v1/admin"
    # the admin API: a client under a username, a user under a client's id
    made = requests.post(f"{api}/clients", headers={**admin, "Accept-Language": "en"},
                         timeout=TIMEOUT, json={
        "client_id": "zhang.san", "name": "冒名", "department": department,
        "grant_types": ["client_credentials"], "scope": "proxy"})
    assert made.status_code == 400, made.text
    assert "'zhang.san'" in made.text and "username" in made.text
    made = requests.post(f"{api}/users", headers={**admin, "Accept-Language": "en"},
                         timeout=TIMEOUT, json={
        "username": "office-web", "name": "冒名", "department": department})
    assert made.status_code == 409, made.text
    assert "client_id of client 'office-web'" in made.json()["detail"]
    # the CLI
    code, out = _cli(world, "client", "add", "li.si", "--name", "冒名", "--department",
                     department, "--grant-type", "client_credentials")
    assert code != 0 and "li.si" in out, out
    code, out = _cli(world, "user", "add", "office-web", "--name", "冒名", "--department",
                     department)
    assert code != 0 and "office-web" in out, out
    # a state file making both at once: one clear message naming both
    state = tmp_path / "state.yaml"
    state.write_text(
        "users:\n"
        f"  - {{username: twin.name, name: 孪生, department: {department}}}\n"
        "clients:\n"
        f"  - {{client_id: twin.name, name: 孪生, department: {department},\n"
        "     grant_types: [client_credentials], secret: " + "s" * 40 + "}\n",
        encoding="utf-8")
    code, out = _cli(world, "apply", "-f", str(state))
    assert code != 0 and "username 'twin.name' is the client_id of client 'twin.name'" \
        in out, out
    for name in ("zhang.san", "li.si", "twin.name"):  # nothing was made
        assert requests.post(world.discovery["token_endpoint"], timeout=TIMEOUT,
                             data={"grant_type": "client_credentials"},
                             auth=(name, "s" * 40)).status_code == 401
    with pytest.raises(NotFound):
        services.org.get_user("twin.name")
    with pytest.raises(NotFound):
        services.org.get_user("office-web")
    # a name of its own is still registered
    code, out = _cli(world, "client", "add", "twin-sync", "--name", "同步", "--department",
                     department, "--grant-type", "client_credentials")
    assert code == 0, out


# -- redirect_uri is required in an OpenID Connect request (Core 3.1.2.1) -----------------

def test_an_openid_request_without_redirect_uri_is_refused_on_the_error_page(
        world: World, browser: requests.Session) -> None:
    """It used to be answered at office-web's one registered URI; plain OAuth keeps
    RFC 6749's default for a client of one redirect URI."""
    params = {"response_type": "code", "client_id": OFFICE[0], "state": "s-1",
              "nonce": "n-1", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
              "code_challenge_method": "S256"}
    endpoint = world.discovery["authorization_endpoint"]
    refused = browser.get(endpoint, params={**params, "scope": "openid profile"},
                          allow_redirects=False, timeout=TIMEOUT)
    assert refused.status_code == 400 and "location" not in refused.headers, \
        refused.headers.get("location")
    assert "redirect_uri is required" in refused.text
    plain = browser.get(endpoint, params={**params, "scope": "profile"},
                        allow_redirects=False, timeout=TIMEOUT)
    got = answer(plain)
    assert "code" in got and got["state"] == "s-1", got


# -- token_type_hint of no known type (RFC 7009 section 2.2.1, RFC 7662 section 2.1) -----

def test_an_unknown_token_type_hint(world: World, browser: requests.Session) -> None:
    """Revocation answers ``unsupported_token_type`` with 400, not authlib's 401 that
    told the client its credentials had failed; introspection ignores the hint."""
    issued = tokens(world, browser)
    revoked = requests.post(world.discovery["revocation_endpoint"], auth=OFFICE,
                            timeout=TIMEOUT, data={"token": issued["access_token"],
                                                   "token_type_hint": "bogus"})
    assert revoked.status_code == 400, revoked.text
    assert revoked.json()["error"] == "unsupported_token_type"
    assert "www-authenticate" not in revoked.headers
    look = requests.post(world.discovery["introspection_endpoint"], auth=OFFICE,
                         timeout=TIMEOUT, data={"token": issued["access_token"],
                                                "token_type_hint": "bogus"})
    assert look.status_code == 200 and look.json()["active"] is True, look.text
    # not revoked by the refused request
    userinfo = requests.get(world.discovery["userinfo_endpoint"], timeout=TIMEOUT,
                            headers={"Authorization": "Bearer " + issued["access_token"]})
    assert userinfo.status_code == 200
