"""The identity provider against the 2025 advisories and OpenID Connect's edges, over a
real socket: one gateway for the module (uvicorn on 127.0.0.1, the demo organisation
and clients, a ``private_key_jwt`` client and a confidential client registered by a
state file that says nothing of PKCE).

What broke (each test failed before its fix; docs/seams.md, "Attack of 2026-12-05, sixth
session (the identity provider against the 2025 advisories)"):

- a client assertion naming the token endpoint, or the issuer beside other audiences,
  authenticated its client (draft-ietf-oauth-rfc7523bis, the OpenID Foundation's advisory of
  January 2025 on audience injection): at the token endpoint, introspection and
  revocation alike;
- no client but a public one could be made to send PKCE (RFC 9700 section 2.1.1), and
  a new client from the CLI or the admin API could leave it out;
- an unknown ``prompt`` value (``create``) was ignored and the user signed in, and
  discovery did not list the values it knows.

What held: a verifier for a code issued without a challenge (RFC 9700 section 4.8.2),
``plain``, ``prompt=none`` beside another value, ``client_secret_jwt`` (not offered).

What the seventh session's attack broke (docs/seams.md, "Attack of 2026-12-05, seventh
session (the identity provider's loose ends after the 2025 advisories)"):

- a client assertion typed as another kind of JWT (``at+jwt``, ``dpop+jwt``, ...)
  authenticated its client (draft-ietf-oauth-rfc7523bis section 4);
- the lenient assertion audience could only be the whole gateway's;
- an export left ``require_pkce: false`` and ``dpop_bound: false`` out, so applying it
  never switched either off, and a new state-file client could skip PKCE unsaid;
- discovery left out the introspection and revocation assertion algorithms (RFC 8414)
  and named 4 of the 10 taken; ``EdDSA`` warned on every use, ``Ed25519`` was refused.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from click.testing import CliRunner
from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from gateway.cli.main import cli
from gateway.services import Services
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import DEMO_PASSWORD, OFFICE, OFFICE_CB, audit_events, pkce
from tests.oauth2.live import live_gateway
from tests.tokens import access_token, ensure_user

TIMEOUT = 10
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
KEY = ECKey.generate_key("P-256", parameters={"kid": "sync-1"})
#: a key for each algorithm family a client assertion may be signed with
KEYS = {"RS": RSAKey.generate_key(2048, parameters={"kid": "sync-rsa"}),
        "ES256": KEY, "ES384": ECKey.generate_key("P-384", parameters={"kid": "sync-384"}),
        "ES512": ECKey.generate_key("P-521", parameters={"kid": "sync-521"}),
        "EdDSA": OKPKey.generate_key("Ed25519", parameters={"kid": "sync-ed"})}
OLD_KEY = ECKey.generate_key("P-256", parameters={"kid": "old-1"})
LEGACY = ("legacy-web", "l" * 40)
LEGACY_CB = "http://127.0.0.1:9300/cb"
LEGACY_ARGS = (LEGACY[0], LEGACY_CB)
CLIENTS = [
    {"client_id": "vehicles-sync", "name": "车辆同步", "department": "jgswj",
     "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
     "jwks": {"keys": [k.as_dict(private=False) for k in KEYS.values()]}},
    # a client not yet changed, let off the issuer-alone rule by itself
    {"client_id": "vehicles-old", "name": "旧车辆同步", "department": "jgswj",
     "grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt",
     "jwks": {"keys": [OLD_KEY.as_dict(private=False)]}, "lenient_assertion_audience": True},
    # a state file that lets it leave PKCE out: the rule before require_pkce
    {"client_id": LEGACY[0], "name": "旧系统", "department": "jgswj",
     "grant_types": ["authorization_code"], "secret": LEGACY[1],
     "redirect_uris": [LEGACY_CB], "require_pkce": False},
]


@dataclass
class World:
    issuer: str
    services: Services
    discovery: dict[str, Any]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with settings_of_its_own(tmp_path_factory) as settings, \
            live_gateway(settings, extra_clients=CLIENTS) as (issuer, services):
        found = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=TIMEOUT)
        yield World(issuer, services, found.json())


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[requests.Session]:
    """A browser signed in to the portal as zhang.san."""
    with requests.Session() as session:
        page = session.get(f"{world.issuer}/portal/login", timeout=TIMEOUT)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
        signed_in = session.post(f"{world.issuer}/portal/login", data={
            "csrf_token": csrf.group(1), "username": "zhang.san", "password": DEMO_PASSWORD,
            "next": "/portal"}, allow_redirects=False, timeout=TIMEOUT)
        assert signed_in.status_code == 303, signed_in.text[:300]
        yield session


def _cli(world: World, *args: str) -> tuple[int, str]:
    settings = world.services.settings
    env = {"GOVGATE_HOME": str(settings.home), "GOVGATE_DATABASE_URL": settings.database_url,
           "LANG": "C.UTF-8"}
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


# -- client assertions name the issuer alone (draft-ietf-oauth-rfc7523bis) ----------------

def _assertion(aud: object, key: Any = KEY, alg: str = "ES256", *,
               client: str = "vehicles-sync", typ: str | None = "JWT") -> str:
    now = int(time.time())
    claims = {"iss": client, "sub": client, "aud": aud, "iat": now, "exp": now + 60,
              "jti": str(uuid.uuid4())}
    header = {"alg": alg, "kid": key.kid or "sync-1", **({} if typ is None else {"typ": typ})}
    with warnings.catch_warnings():  # "EdDSA": deprecated by RFC 9864, still sent
        warnings.simplefilter("ignore", SecurityWarning)
        if typ is None:  # joserfc's jwt.encode would add typ JWT
            return jws.serialize_compact(header, json.dumps(claims).encode(), key,
                                         algorithms=[alg])
        return jwt.encode(header, claims, key, algorithms=[alg])


def _post(world: World, endpoint: str, assertion: str) -> requests.Response:
    data = {"client_assertion_type": ASSERTION, "client_assertion": assertion}
    if endpoint == "token_endpoint":
        data["grant_type"] = "client_credentials"
    else:
        data["token"] = "not-a-token"
    return requests.post(world.discovery[endpoint], data=data, timeout=TIMEOUT)


def test_a_client_assertion_names_the_issuer_alone(world: World) -> None:
    """An assertion whose audience was the token endpoint, or the issuer among other
    values, authenticated the client: one made for another server (or for one that
    names several) could be replayed here. Now the issuer alone, as a string or the
    one value of an array, everywhere a client authenticates."""
    issuer = world.issuer
    token_endpoint = world.discovery["token_endpoint"]
    for endpoint in ("token_endpoint", "introspection_endpoint", "revocation_endpoint"):
        for aud in (issuer, [issuer]):
            answer = _post(world, endpoint, _assertion(aud))
            assert answer.status_code == 200, (endpoint, aud, answer.text)
        for aud in (token_endpoint, [token_endpoint], [issuer, token_endpoint],
                    [issuer, "https://other.example"], issuer + "/", []):
            answer = _post(world, endpoint, _assertion(aud))
            assert answer.status_code == 401, (endpoint, aud, answer.text)
            assert answer.json() == {
                "error": "invalid_client",
                "error_description": f"Invalid claim: 'aud' must be the issuer {issuer} "
                                     "alone"}, (endpoint, aud)
    # token exchange authenticates its client by the same rule, before its own checks
    exchange = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": "x", "client_assertion_type": ASSERTION}
    refused = requests.post(token_endpoint, timeout=TIMEOUT, data={
        **exchange, "client_assertion": _assertion(token_endpoint)})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    passed = requests.post(token_endpoint, timeout=TIMEOUT, data={
        **exchange, "client_assertion": _assertion(issuer)})
    assert passed.json()["error"] == "unauthorized_client", passed.text
    for event in ("token_denied", "token_introspection_denied", "token_revocation_denied"):
        denied = [r for r in audit_events(world.services, event)
                  if "'aud' must be the issuer" in (r["reason"] or "")]
        assert len(denied) >= 6 and {r["actor_client"] for r in denied} == {"vehicles-sync"}
    # client_secret_jwt (HMAC over a shared secret) is not offered: refused
    hmac_key = OctKey.import_key("k" * 32)
    answer = _post(world, "token_endpoint", _assertion(issuer, hmac_key, "HS256"))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert "client_secret_jwt" not in world.discovery["token_endpoint_auth_methods_supported"]


def test_a_client_assertion_of_another_kind_is_refused(world: World) -> None:
    """draft-ietf-oauth-rfc7523bis section 4 types a client assertion
    ``client-authentication+jwt`` (RFC 8725 section 3.11). A JWT that says it is another
    kind (an access token, a DPoP proof, a logout token, a security event, a request
    object signed with the client's key) authenticated the client: now refused, at
    every endpoint; the type, the legacy ``JWT`` and none still work."""
    issuer = world.issuer
    for typ in ("client-authentication+jwt", "application/client-authentication+jwt",
                "Client-Authentication+JWT", "JWT", "jwt", None):
        answer = _post(world, "token_endpoint", _assertion(issuer, typ=typ))
        assert answer.status_code == 200, (typ, answer.text)
    for typ in ("at+jwt", "application/at+jwt", "dpop+jwt", "logout+jwt", "secevent+jwt",
                "oauth-authz-req+jwt", "token-introspection+jwt", "JOSE", ""):
        for endpoint in ("token_endpoint", "introspection_endpoint"):
            answer = _post(world, endpoint, _assertion(issuer, typ=typ))
            assert answer.status_code == 401, (typ, endpoint, answer.text)
            assert answer.json() == {
                "error": "invalid_client", "error_description":
                "Invalid header: 'typ' must be client-authentication+jwt (or JWT)"}, typ
    denied = [r for r in audit_events(world.services, "token_denied")
              if "'typ' must be" in (r["reason"] or "")]
    assert len(denied) == 9 and {r["actor_client"] for r in denied} == {"vehicles-sync"}


def test_discovery_names_the_assertion_algorithms_taken(world: World) -> None:
    """RFC 8414 section 2: where ``private_key_jwt`` is offered, the endpoint's
    ``..._auth_signing_alg_values_supported`` MUST be present. Introspection and
    revocation offered it without the list, and the token endpoint's named 4 of the 10
    algorithms the check takes (an ES384 client read it and thought itself refused).
    Now each list is what the check takes, and every algorithm on it works: "EdDSA"
    was a 500 where warnings are errors (joserfc warns of it on every use, RFC 9864),
    and "Ed25519", RFC 9864's name for it, was refused."""
    taken = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
             "ES512", "EdDSA", "Ed25519"]
    for endpoint in ("token", "introspection", "revocation"):
        assert world.discovery[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] \
            == taken, endpoint
    for alg in taken:
        key = KEYS.get(alg) or KEYS["EdDSA" if alg == "Ed25519" else "RS"]
        answer = _post(world, "token_endpoint", _assertion(world.issuer, key, alg))
        assert answer.status_code == 200, (alg, answer.text)
    # an unsigned one (alg none) is not among them
    now = int(time.time())
    unsigned = ".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")
                        .decode() for part in ({"alg": "none"}, {
                            "iss": "vehicles-sync", "sub": "vehicles-sync",
                            "aud": world.issuer, "exp": now + 60, "jti": str(uuid.uuid4())})) + "."
    assert _post(world, "token_endpoint", unsigned).status_code == 401


def _secadmin(world: World) -> dict[str, str]:
    ensure_user(world.services, "secadmin", "platform", ["secadmin"])
    return {"Accept-Language": "en", "Authorization": "Bearer " + access_token(
        world.services, sub="secadmin", department="platform", roles=["secadmin"],
        scope="openid admin")}


def _sysadmin(world: World) -> dict[str, str]:
    ensure_user(world.services, "sysadmin", "platform", ["sysadmin"])
    return {"Accept-Language": "en", "Authorization": "Bearer " + access_token(
        world.services, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}


def _client_authentication(world: World) -> dict[str, str]:
    found = requests.get(f"{world.issuer}/api/v1/admin/compliance?lang=en",
                         headers=_secadmin(world), timeout=TIMEOUT)
    assert found.status_code == 200, found.text
    return next(i for i in found.json()["items"] if i["id"] == "ia.client_authentication")


def test_the_lenient_audience_is_one_clients(world: World) -> None:
    """``client_assertion_audience`` let every client off the issuer-alone rule; now
    one client not yet changed is (state file, CLI, admin API, console), the others
    are held to it, and compliance names that client."""
    token_endpoint = world.discovery["token_endpoint"]

    def old(aud: object) -> requests.Response:
        return _post(world, "token_endpoint",
                     _assertion(aud, OLD_KEY, client="vehicles-old"))

    for aud in (token_endpoint, [world.issuer, token_endpoint], world.issuer):
        assert old(aud).status_code == 200, aud
    assert _post(world, "token_endpoint", _assertion(token_endpoint)).status_code == 401
    item = _client_authentication(world)
    assert item["status"] == "fail" and (
        "clients whose assertions may name the token endpoint or several audiences "
        "(govgate client assertion-audience CLIENT --strict): vehicles-old") in item["evidence"]
    assert "vehicles-sync" not in item["evidence"]
    # the admin API shows it and ends it; the client is held to the rule within a second
    api = f"{world.issuer}/api/v1/admin/clients"
    shown = requests.get(f"{api}/vehicles-old", headers=_sysadmin(world), timeout=TIMEOUT)
    assert shown.json()["client"]["lenient_assertion_audience"] is True, shown.text
    changed = requests.post(f"{api}/vehicles-old", headers=_sysadmin(world), timeout=TIMEOUT,
                            json={"lenient_assertion_audience": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["client"]["lenient_assertion_audience"] is False
    assert _wait_for(lambda: old(token_endpoint).status_code == 401)
    assert old(world.issuer).status_code == 200
    assert "vehicles-old" not in _client_authentication(world)["evidence"]
    # meaningless on a client that does not assert: refused, the client unchanged
    refused = requests.post(f"{api}/{OFFICE[0]}", headers=_sysadmin(world), timeout=TIMEOUT,
                            json={"lenient_assertion_audience": True})
    assert refused.status_code == 400, refused.text
    assert "lenient_assertion_audience is for private_key_jwt clients only" in refused.text
    # the CLI sets it again, and the export says it
    status, out = _cli(world, "client", "assertion-audience", "vehicles-old", "--lenient")
    assert status == 0 and "may still name the token endpoint" in out, out
    status, out = _cli(world, "export")
    assert "lenient_assertion_audience: true" in out.split("client_id: vehicles-old")[1] \
        .split("client_id:")[0]
    assert _wait_for(lambda: old(token_endpoint).status_code == 200)


# -- PKCE: the downgrade, and clients that must send it (RFC 9700 sections 2.1.1, 4.8) ---

def _authorize(world: World, browser: requests.Session, client_id: str, redirect_uri: str,
               **extra: str) -> requests.Response:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "scope": "openid", "state": "st-pkce", "nonce": "n", **extra}
    return browser.get(world.discovery["authorization_endpoint"], params=params,
                       allow_redirects=False, timeout=TIMEOUT)


def _answer(response: requests.Response, redirect_uri: str) -> dict[str, str]:
    assert response.status_code == 302, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def _redeem(world: World, code: str, auth: tuple[str, str], redirect_uri: str,
            **extra: str) -> requests.Response:
    return requests.post(world.discovery["token_endpoint"], auth=auth, timeout=TIMEOUT,
                         data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": redirect_uri, **extra})


def test_a_verifier_for_a_code_without_a_challenge_is_refused(
        world: World, browser: requests.Session) -> None:
    """RFC 9700 section 4.8.2 (the PKCE downgrade): held; the refusal used up the code."""
    code = _answer(_authorize(world, browser, *LEGACY_ARGS), LEGACY_CB)["code"]
    refused = _redeem(world, code, LEGACY, LEGACY_CB, code_verifier=pkce()[0])
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_request"
    assert "code_challenge" in refused.json()["error_description"]
    assert _redeem(world, code, LEGACY, LEGACY_CB).json()["error"] == "invalid_grant"


def _wait_for(check: Any) -> Any:
    """``check()`` once it is true (the client registry's cache: a second)."""
    deadline = time.monotonic() + 3
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def test_a_client_that_must_send_pkce(world: World, browser: requests.Session) -> None:
    """office-web is registered with ``require_pkce`` (the demo's page sends it): a
    request without a challenge is ``invalid_request`` at its redirect URI; a
    confidential client could leave PKCE out whatever its registration said."""
    got = _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB), OFFICE_CB)
    assert got == {"error": "invalid_request", "state": "st-pkce", "iss": world.issuer,
                   "error_description": "this client must send code_challenge (S256)"}
    verifier, challenge = pkce()
    got = _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB, code_challenge=challenge,
                             code_challenge_method="plain"), OFFICE_CB)
    assert got["error"] == "invalid_request" and "plain" in got["error_description"]
    code = _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB, code_challenge=challenge,
                              code_challenge_method="S256"), OFFICE_CB)["code"]
    assert _redeem(world, code, OFFICE, OFFICE_CB, code_verifier=verifier).status_code == 200
    # legacy-web's state file let it leave PKCE out, until the CLI says otherwise
    assert "code" in _answer(_authorize(world, browser, *LEGACY_ARGS), LEGACY_CB)
    status, out = _cli(world, "client", "pkce", LEGACY[0], "--require")
    assert status == 0 and "must now send PKCE" in out, out
    assert _wait_for(lambda: _answer(_authorize(world, browser, *LEGACY_ARGS),
                                     LEGACY_CB).get("error") == "invalid_request")
    status, out = _cli(world, "client", "pkce", LEGACY[0], "--optional")
    assert status == 0, out
    assert _wait_for(lambda: "code" in _answer(_authorize(world, browser, *LEGACY_ARGS),
                                               LEGACY_CB))
    refused = [r for r in audit_events(world.services, "authorize")
               if "must send code_challenge" in (r["reason"] or "")]
    assert refused and refused[0]["actor_client"] == OFFICE[0]


def test_a_new_client_requires_pkce_unless_told(world: World) -> None:
    """The CLI and the admin API register a client with ``require_pkce`` unless told
    otherwise (Keycloak 26's new clients); the admin API shows and changes it."""
    services = world.services
    status, out = _cli(world, "client", "add", "new-web", "--name", "新系统", "--department",
                       "jgswj", "--grant-type", "authorization_code", "--redirect-uri",
                       "http://127.0.0.1:9301/cb")
    assert status == 0, out
    status, out = _cli(world, "client", "add", "old-style-web", "--name", "旧式", "--department",
                       "jgswj", "--grant-type", "authorization_code", "--redirect-uri",
                       "http://127.0.0.1:9302/cb", "--no-require-pkce")
    assert status == 0, out
    ensure_user(services, "sysadmin", "platform", ["sysadmin"])
    admin = {"Authorization": "Bearer " + access_token(
        services, sub="sysadmin", department="platform", roles=["sysadmin"],
        scope="openid admin")}
    api = f"{world.issuer}/api/v1/admin/clients"
    shown = {c: requests.get(f"{api}/{c}", headers=admin, timeout=TIMEOUT).json()["client"]
             for c in ("new-web", "old-style-web", LEGACY[0])}
    assert {c: v["require_pkce"] for c, v in shown.items()} == {
        "new-web": True, "old-style-web": False, LEGACY[0]: False}
    made = requests.post(api, headers=admin, timeout=TIMEOUT, json={
        "client_id": "api-web", "name": "接口建", "department": "jgswj",
        "grant_types": ["authorization_code"], "redirect_uris": ["http://127.0.0.1:9303/cb"]})
    assert made.status_code == 201 and made.json()["client"]["require_pkce"] is True, made.text
    changed = requests.post(f"{api}/api-web", headers=admin, timeout=TIMEOUT,
                            json={"require_pkce": False})
    assert changed.status_code == 200 and changed.json()["client"]["require_pkce"] is False
    bad = requests.post(f"{api}/api-web", headers=admin, timeout=TIMEOUT,
                        json={"require_pkce": "yes"})
    assert bad.status_code == 400, bad.text
    status, out = _cli(world, "export")
    exported = out.split("client_id: new-web", 1)[1].split("client_id:", 1)[0]
    assert "require_pkce: true" in exported, exported


# -- prompt values, and the claims parameter ----------------------------------------------

def test_an_unknown_prompt_value_is_invalid_request(world: World,
                                                    browser: requests.Session) -> None:
    """``prompt=create`` (Initiating User Registration via OpenID Connect 1.0) was
    ignored: the user was signed in where the client asked for an account to be made.
    An OP that does not support a value answers ``invalid_request`` naming it (section
    4.1), at the validated redirect URI with ``state`` and ``iss``."""
    assert world.discovery["prompt_values_supported"] == [
        "none", "login", "consent", "select_account"]
    assert world.discovery["claims_parameter_supported"] is False
    challenge = pkce()[1]
    pkce_args = {"code_challenge": challenge, "code_challenge_method": "S256"}
    for prompt, named in (("create", "'create'"), ("login créer", "'cr%C3%A9er'"),
                          ("consent bogus create", "'bogus', 'create'")):
        got = _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB, prompt=prompt,
                                 **pkce_args), OFFICE_CB)
        assert got == {"error": "invalid_request", "state": "st-pkce", "iss": world.issuer,
                       "error_description": f"prompt: unsupported value(s) {named}"}, got
    got = _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB, prompt="none login",
                             **pkce_args), OFFICE_CB)
    assert got["error"] == "invalid_request", got
    # the values it knows still work: consent does nothing, login asks for a sign-in
    assert "code" in _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB,
                                        prompt="consent", **pkce_args), OFFICE_CB)
    login = _authorize(world, browser, OFFICE[0], OFFICE_CB, prompt="login consent",
                       **pkce_args)
    assert login.status_code == 303 and "/portal/login" in login.headers["location"]


def test_the_claims_parameter_is_ignored(world: World, browser: requests.Session) -> None:
    """Not supported (discovery says so) and so not recognised: RFC 6749 section 3.1
    has the server ignore it. The scopes decide what the ID token holds."""
    verifier, challenge = pkce()
    claims = json.dumps({"id_token": {"roles": {"essential": True},
                                      "email": {"essential": True}}})
    code = _answer(_authorize(world, browser, OFFICE[0], OFFICE_CB, claims=claims,
                              code_challenge=challenge, code_challenge_method="S256"),
                   OFFICE_CB)["code"]
    issued = _redeem(world, code, OFFICE, OFFICE_CB, code_verifier=verifier)
    assert issued.status_code == 200, issued.text
    id_token = world.services.keys.verify_jwt("token", issued.json()["id_token"])
    assert "roles" not in id_token and "email" not in id_token
    assert id_token["sub"] == "zhang.san"


# -- the state file says false too ------------------------------------------------------

def test_an_export_applied_back_is_what_was_exported(world: World, browser: requests.Session,
                                                     tmp_path: Any) -> None:
    """``govgate export`` left ``require_pkce: false`` and ``dpop_bound: false`` out, and
    an entry without them keeps what the client has: applying an export never switched
    either back off. Now it says each flag either way, and applying it back gives what
    was exported. A new client whose entry does not name ``require_pkce`` must send
    PKCE, as one the CLI, the admin API or the console registers."""
    status, before = _cli(world, "export")
    assert status == 0, before
    changes = (("pkce", LEGACY[0], "--require"), ("pkce", OFFICE[0], "--optional"),
               ("dpop", "vehicles-sync", "--require"),
               ("assertion-audience", "vehicles-old", "--strict"))
    for change in changes:
        status, out = _cli(world, "client", *change)
        assert status == 0, (change, out)
    status, changed = _cli(world, "export")
    assert changed != before
    exported = tmp_path / "exported.yaml"
    exported.write_text(before, encoding="utf-8")
    status, out = _cli(world, "apply", "-f", str(exported))
    assert status == 0 and out.splitlines()[:4] == [
        "~ client legacy-web (require_pkce)", "~ client office-web (require_pkce)",
        "~ client vehicles-old (lenient_assertion_audience)",
        "~ client vehicles-sync (dpop_bound)"], out
    status, after = _cli(world, "export")
    assert after == before
    # a new client that says nothing of PKCE must send it; one that says false need not
    added = tmp_path / "added.yaml"
    added.write_text(json.dumps({"clients": [
        {"client_id": "plain-web", "name": "新门户", "department": "jgswj",
         "grant_types": ["authorization_code"], "secret": "p" * 40,
         "redirect_uris": ["http://127.0.0.1:9304/cb"]}]}), encoding="utf-8")
    status, out = _cli(world, "apply", "-f", str(added))
    assert status == 0, out
    got = _answer(_authorize(world, browser, "plain-web", "http://127.0.0.1:9304/cb"),
                  "http://127.0.0.1:9304/cb")
    assert got["error"] == "invalid_request" and "code_challenge" in got["error_description"]
    status, out = _cli(world, "export")
    assert "require_pkce: true" in out.split("client_id: plain-web")[1].split("client_id:")[0]
