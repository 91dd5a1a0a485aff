"""Forged and misused JWTs at every place the gateway takes one, through the real
server: the proxy (``/s/...``), forward-auth (``/auth/verify``), ``/oauth2/userinfo``,
``/oauth2/introspect``, the catalogue API, the sign-out's ``id_token_hint`` and the
token endpoint's ``private_key_jwt`` client assertions.

tests/oauth2/test_bad_input.py has ``alg: none``, HS256 with the JWKS as the key, another
issuer and a non-``at+jwt`` token at userinfo and introspection; tests/proxy/test_proxy.py
``alg: none`` and a tampered payload at the proxy; tests/proxy/test_request_ambiguity.py
tokens signed by the assertion and audit keys. Here every forgery at every place:
``alg: none`` in any case, HS256 keyed with the public key (JWK and PEM), an unknown or
missing ``kid``, a token signed by an attacker's key that it names in ``jwk``, ``jku``
or ``x5u`` (with the gateway's ``kid``), a ``crit`` extension, a wrong ``typ``, and a
real ID token used as an access token."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.catalogue.conftest import audit_rows
from tests.hostile.conftest import CatalogueWorld
from tests.oauth2.helpers import DEMO_PASSWORD, OFFICE, OFFICE_CB, pkce

pytestmark = pytest.mark.asyncio(loop_scope="module")

ATTACKER = ECKey.generate_key("P-256", parameters={"kid": "attacker-1"})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_KEY = ECKey.generate_key("P-256", parameters={"kid": "vehicles-sync-1"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"


def hs256(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing = unsigned(header, claims)
    return f"{signing}.{b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())}"


def forgeries(good: str, public_jwk: dict[str, Any]) -> dict[str, str]:
    """Tokens carrying ``good``'s claims that no one but the gateway could have signed
    and that it must not take for its own."""
    head, payload, _ = good.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    kid = header["kid"]
    pem = ECKey.import_key(public_jwk).as_pem(private=False)
    out = {f"alg {alg}": unsigned({**header, "alg": alg}, claims) + "."
           for alg in ("none", "None", "NONE", "nOnE")}
    out.update({
        "HS256 keyed with the public JWK": hs256({**header, "alg": "HS256"}, claims,
                                                 json.dumps(public_jwk).encode()),
        "HS256 keyed with the public PEM": hs256({**header, "alg": "HS256"}, claims, pem),
        "HS256 keyed with the x coordinate": hs256(
            {**header, "alg": "HS256"}, claims, base64.urlsafe_b64decode(
                public_jwk["x"] + "==")),
    })
    attacker_public = ATTACKER.as_dict(private=False)
    for name, extra in {
            "an unknown kid": {"kid": "no-such-kid"},
            "no kid": {"kid": None},
            "a kid as a path": {"kid": "../../../../dev/null"},
            "the attacker's key in jwk": {"kid": kid, "jwk": attacker_public},
            "the attacker's key in jwk, its own kid": {"kid": "attacker-1",
                                                       "jwk": attacker_public},
            "the attacker's key set in jku": {"kid": kid,
                                              "jku": "http://127.0.0.1:9/jwks.json"},
            "the attacker's certificate in x5u": {"kid": kid,
                                                  "x5u": "http://127.0.0.1:9/cert.pem"},
            "the attacker's certificate in x5c": {"kid": kid, "x5c": ["MIIB"]}}.items():
        h = {k: v for k, v in {**header, "alg": "ES256", **extra}.items() if v is not None}
        out[f"signed by the attacker, {name}"] = jwt.encode(h, claims, ATTACKER)
    # a valid signature over another header is no signature over this one
    crit = {**header, "crit": ["exp"], "exp": 1}
    out["a header swapped in (crit)"] = unsigned(crit, claims) + "." + good.split(".")[2]
    return out


async def sign_in(world: CatalogueWorld, http: httpx.AsyncClient,
                  username: str = "zhang.san") -> None:
    page = await http.get("/portal/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    r = await http.post("/portal/login", data={
        "csrf_token": csrf.group(1), "username": username, "password": DEMO_PASSWORD,
        "next": "/portal"})
    assert r.status_code == 303, r.text


async def code_flow(world: CatalogueWorld, http: httpx.AsyncClient) -> dict[str, Any]:
    verifier, challenge = pkce()
    r = await http.get("/oauth2/authorize", params={
        "response_type": "code", "client_id": OFFICE[0], "redirect_uri": OFFICE_CB,
        "scope": "openid profile", "state": "s", "nonce": "n", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert r.status_code == 302, r.text
    code = re.search(r"code=([^&]+)", r.headers["location"])
    assert code
    r = await http.post("/oauth2/token", data={
        "grant_type": "authorization_code", "code": code.group(1),
        "redirect_uri": OFFICE_CB, "code_verifier": verifier}, auth=OFFICE)
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(catalogue_world: CatalogueWorld) -> AsyncIterator[httpx.AsyncClient]:
    """zhang.san signed in at the portal, with the tokens of one code flow of office-web
    (``browser.tokens``)."""
    catalogue_world.built.state_applier().apply({"clients": [{
        "client_id": "vehicles-sync", "name": "车辆同步", "department": "jgswj",
        "grant_types": ["client_credentials"], "token_endpoint_auth_method":
        "private_key_jwt", "jwks": {"keys": [CLIENT_KEY.as_dict(private=False)]}}]})
    async with httpx.AsyncClient(base_url=str(catalogue_world.http.base_url)) as http:
        await sign_in(catalogue_world, http)
        http.tokens = await code_flow(catalogue_world, http)  # type: ignore[attr-defined]
        yield http


def zhang_san(world: CatalogueWorld) -> str:
    """An access token of zhang.san (jgswj) through office-web with every gateway scope:
    good at each surface below."""
    return world.token("jgswj", "office-web", sub="zhang.san",
                       roles=("staff", "data_steward"))


def surfaces(world: CatalogueWorld) -> dict[str, Any]:
    """Each place that takes a bearer token, as a call returning (status, granted)."""
    http = world.http

    async def proxy(token: str) -> tuple[int, bool]:
        r = await http.get("/s/vehicles/api/vehicles",
                           headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.status_code == 200

    async def verify(token: str) -> tuple[int, bool]:
        r = await http.get("/auth/verify", headers={
            "Authorization": f"Bearer {token}", "X-Original-URI": "/s/vehicles/api/x",
            "X-Original-Method": "GET"})
        return r.status_code, "x-govgate-assertion" in r.headers

    async def userinfo(token: str) -> tuple[int, bool]:
        r = await http.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {token}"})
        return r.status_code, "sub" in r.json()

    async def introspect(token: str) -> tuple[int, bool]:
        r = await http.post("/oauth2/introspect", data={"token": token},
                            auth=("finance-system", "demo-finance-secret-0123456789abcdef"))
        return r.status_code, r.json().get("active") is True

    async def catalogue_api(token: str) -> tuple[int, bool]:
        r = await http.get("/api/v1/catalogue/resources",
                           headers={"Authorization": f"Bearer {token}"})
        return r.status_code, r.status_code == 200

    return {"proxy": proxy, "forward-auth": verify, "userinfo": userinfo,
            "introspection": introspect, "catalogue API": catalogue_api}


async def test_forged_tokens_are_refused_everywhere(catalogue_world: CatalogueWorld,
                                                    browser: httpx.AsyncClient) -> None:
    access = zhang_san(catalogue_world)
    jwks = (await catalogue_world.http.get("/.well-known/jwks.json")).json()["keys"]
    kid = json.loads(base64.urlsafe_b64decode(access.split(".")[0] + "=="))["kid"]
    public = next(k for k in jwks if k["kid"] == kid)
    checks = surfaces(catalogue_world)
    for where, call in checks.items():  # the real token works at each
        assert (await call(access))[1], where
    calls = [(name, where, call(token)) for name, token in forgeries(access, public).items()
             for where, call in checks.items()]
    answers = await asyncio.gather(*(c for _, _, c in calls))
    wrong = [f"{name} at {where}: {status}, granted={granted}"
             for (name, where, _), (status, granted) in zip(calls, answers, strict=True)
             if granted or status >= 500 or (where != "introspection" and status != 401)]
    assert not wrong, "\n".join(wrong)


async def test_a_token_of_another_type_is_not_an_access_token(
        catalogue_world: CatalogueWorld, browser: httpx.AsyncClient) -> None:
    """An ID token (a relying party holds it, and may pass it on), and the access token's
    own claims under another ``typ``: never accepted as an access token."""
    tokens = browser.tokens  # type: ignore[attr-defined]
    keys = catalogue_world.services.keys
    claims = keys.verify_jwt("token", zhang_san(catalogue_world))
    others = {"the ID token": tokens["id_token"]}
    for typ in ("JWT", "jwt", "logout+jwt", "id_token", "at+jwt+x", ""):
        others[f"typ {typ!r}"] = keys.sign_jwt("token", claims, headers={"typ": typ})
    others["no typ"] = keys.sign_jwt("token", claims)
    calls = [(name, where, call(token)) for name, token in others.items()
             for where, call in surfaces(catalogue_world).items()]
    answers = await asyncio.gather(*(c for _, _, c in calls))
    wrong = [f"{name} at {where}: {status}"
             for (name, where, _), (status, granted) in zip(calls, answers, strict=True)
             if granted or status >= 500]
    assert not wrong, "\n".join(wrong)
    # application/at+jwt is the same type (RFC 9068 section 2.1)
    spelled = keys.sign_jwt("token", claims, headers={"typ": "application/at+jwt"})
    assert (await surfaces(catalogue_world)["userinfo"](spelled))[1]
    denials = [r for r in audit_rows(catalogue_world.services, "userinfo")
               if r["outcome"] == "deny"]
    assert any("typ" in (r["reason"] or "") for r in denials)


async def test_a_forged_id_token_hint_neither_signs_out_nor_redirects(
        catalogue_world: CatalogueWorld, browser: httpx.AsyncClient) -> None:
    """The sign-out trusts a hint of this session to skip its confirmation and to pick
    the client whose post-logout URI it may redirect to: a forged one is no hint."""
    id_token = browser.tokens["id_token"]  # type: ignore[attr-defined]
    jwks = (await catalogue_world.http.get("/.well-known/jwks.json")).json()["keys"]
    kid = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))["kid"]
    public = next(k for k in jwks if k["kid"] == kid)
    back = {"post_logout_redirect_uri": "http://127.0.0.1:9102/", "state": "s"}
    calls = []
    for name, hint in forgeries(id_token, public).items():
        calls += [(name, True, browser.get("/oauth2/logout", params={
            "id_token_hint": hint, **back, **extra})) for extra in ({}, {"client_id": OFFICE[0]})]
        # and from a browser without the session cookie: nothing is ended either
        calls.append((name, False, catalogue_world.http.get("/oauth2/logout", params={
            "id_token_hint": hint, **back})))
    answers = await asyncio.gather(*(c for _, _, c in calls))
    for (name, signed_in, _), r in zip(calls, answers, strict=True):
        assert "location" not in r.headers, (name, r.headers.get("location"))
        if signed_in:  # asked to confirm, with the form's CSRF token
            assert r.status_code == 200 and 'name="csrf_token"' in r.text, name
    assert (await browser.get("/portal")).status_code == 200, "still signed in"


def client_assertion(header: dict[str, Any], key: Any = CLIENT_KEY, **over: Any) -> str:
    now = int(time.time())
    claims = {"iss": "vehicles-sync", "sub": "vehicles-sync", "iat": now, "exp": now + 60,
              "jti": secrets.token_hex(8), **over}
    return jwt.encode({"alg": "ES256", **header}, claims, key)


async def test_forged_client_assertions_are_invalid_client(
        catalogue_world: CatalogueWorld) -> None:
    """RFC 7523: a client assertion is checked against the client's registered key only;
    a key the assertion carries or points to is no key."""
    http = catalogue_world.http
    aud = catalogue_world.services.settings.issuer.rstrip("/")
    now = int(time.time())
    claims = {"iss": "vehicles-sync", "sub": "vehicles-sync", "aud": aud, "iat": now,
              "exp": now + 60}
    registered = CLIENT_KEY.as_dict(private=False)
    attacker = ATTACKER.as_dict(private=False)
    forged = {
        "the attacker's key in jwk": client_assertion(
            {"kid": "vehicles-sync-1", "jwk": attacker}, ATTACKER, aud=aud),
        "the attacker's key set in jku": client_assertion(
            {"kid": "vehicles-sync-1", "jku": "http://127.0.0.1:9/jwks.json"}, ATTACKER,
            aud=aud),
        "the attacker's certificate in x5u": client_assertion(
            {"kid": "vehicles-sync-1", "x5u": "http://127.0.0.1:9/c.pem"}, ATTACKER, aud=aud),
        "alg none": unsigned({"alg": "none", "kid": "vehicles-sync-1"},
                             {**claims, "jti": "a"}) + ".",
        "HS256 keyed with the registered public key": hs256(
            {"alg": "HS256", "kid": "vehicles-sync-1"}, {**claims, "jti": "b"},
            json.dumps(registered).encode()),
        "an unknown kid": client_assertion({"kid": "nope"}, ATTACKER, aud=aud),
    }
    for name, assertion in forged.items():
        for path in ("/oauth2/token", "/oauth2/introspect"):
            data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
            data.update({"grant_type": "client_credentials"} if path == "/oauth2/token"
                        else {"token": "x"})
            r = await http.post(path, data=data)
            assert r.status_code == 401, (name, path, r.status_code, r.text)
            assert r.json()["error"] == "invalid_client", name
            assert "access_token" not in r.json()
    # the registered key itself still works
    r = await http.post("/oauth2/token", data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion({"kid": "vehicles-sync-1"}, aud=aud)})
    assert r.status_code == 200, r.text
