"""Key separation on the published key sets (attack of 2026-12-05, docs/seams.md): the
OpenID Provider's ``jwks_uri`` holds only the keys that sign what it issues (ID tokens,
access tokens, logout tokens: the ``token`` use); the keys of ``X-Govgate-Assertion``
have a document of their own; the audit keys are published on neither. A relying party
that picks a key by ``kid`` from the OP's set and checks no ``typ`` (authlib's and
joserfc's ``jwt.decode`` do not) therefore cannot take a proxied request's assertion,
made for a system whose code equals its client id, for an ID token."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from joserfc import jwt as joserfc_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import load_settings
from tests.in_process import Resp
from tests.oauth2.helpers import OFFICE, close_services, code_flow, make_services
from tests.proxy.conftest import World, base_services, quick_world  # noqa: F401 - fixtures
from tests.wiring import parts

with warnings.catch_warnings():  # deprecated for joserfc, yet what many relying parties run
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt
    from authlib.jose.errors import JoseError as AuthlibJoseError

ASSERTION_JWKS = "/.well-known/govgate-assertion-jwks.json"
#: a relying party registered under the code of a system behind the proxy
SAME_NAME = {"client_id": "echo", "name": "回显系统的单点登录", "department": "jgswj",
             "grant_types": ["authorization_code"], "secret": "s" * 32,
             "redirect_uris": ["http://127.0.0.1:9300/cb"]}


def kids_of(services: Services, use: str) -> set[str]:
    """The keys of ``use`` a key set may publish: active and pending."""
    return {i.kid for i in services.keys.list_keys()
            if i.use == use and i.state in ("active", "pending")}


def _kid(token: str) -> str:
    head = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


async def _get(world: World, path: str) -> Resp:
    r = await world.request("GET", path)
    assert r.status == 200, (path, r.body)
    return r


async def test_each_key_set_holds_only_its_own_keys(quick_world: World) -> None:  # noqa: F811
    world = quick_world
    keys = world.services.keys
    keys.ensure_active("token_rs256")  # as when a client asks for RS256 ID tokens
    for use in ("token", "assertion", "audit"):  # a rotation under way publishes its next key
        keys.rotate(use)
    discovery = (await _get(world, "/.well-known/openid-configuration")).json()
    op = await _get(world, urlparse(discovery["jwks_uri"]).path)
    op_kids = {k["kid"] for k in op.json()["keys"]}
    # and the RS256 ID-token key (OpenID Connect Core section 15.1), of its own use
    assert op_kids == kids_of(world.services, "token") | kids_of(
        world.services, "token_rs256") and len(op_kids) == 3
    assertion = await _get(world, ASSERTION_JWKS)
    assertion_kids = {k["kid"] for k in assertion.json()["keys"]}
    assert assertion_kids == kids_of(world.services, "assertion") and len(assertion_kids) == 2
    published = {k["kid"] for doc in (op, assertion) for k in doc.json()["keys"]}
    assert not published & kids_of(world.services, "audit")
    for doc in (op, assertion):
        assert doc.headers["content-type"] == "application/jwk-set+json"
        assert doc.headers["cache-control"].startswith("public, max-age=")
        for jwk in doc.json()["keys"]:
            assert jwk["use"] == "sig" and not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)
    # declared in the API's description like the API's operations: public, a JWK Set
    described = (await _get(world, "/api/v1/openapi.json")).json()["paths"][ASSERTION_JWKS]
    assert described["get"]["security"] == []
    assert "application/jwk-set+json" in described["get"]["responses"]["200"]["content"]


async def test_a_relying_party_does_not_take_an_assertion_for_an_id_token(
        quick_world: World) -> None:  # noqa: F811
    """The relying party ``echo`` validates ID tokens as authlib and joserfc do by
    default: the key by ``kid`` from the OP's ``jwks_uri``, then ``iss`` and ``aud``;
    ``typ`` unchecked. The assertion the proxy sent to the system ``echo`` has the
    gateway's ``iss``, ``aud`` ``echo`` and a fresh ``exp``: only its key stops it."""
    world = quick_world
    world.built.state_applier().apply({"clients": [SAME_NAME]})
    r = await world.request("GET", "/s/echo/api/me", token=world.token())
    assert r.status == 200, r.body
    sent = dict(world.echo.seen[-1]["headers"])["x-govgate-assertion"]
    issuer = world.services.settings.issuer
    discovery = (await _get(world, "/.well-known/openid-configuration")).json()
    op_jwks = (await _get(world, urlparse(discovery["jwks_uri"]).path)).json()
    expect = {"iss": {"essential": True, "value": issuer},
              "aud": {"essential": True, "value": "echo"}}

    def authlib_accepts(token: str, jwks: dict[str, object]) -> bool:
        try:
            claims = authlib_jwt.decode(token, JsonWebKey.import_key_set(jwks),
                                        claims_options=expect)
            claims.validate(now=int(world.services.clock().timestamp()))
        except (ValueError, AuthlibJoseError):  # ValueError: no key of that kid in the set
            return False
        return True

    def joserfc_accepts(token: str, jwks: dict[str, object]) -> bool:
        try:
            claims = joserfc_jwt.decode(token, KeySet.import_key_set(jwks)).claims
        except (ValueError, JoseError):
            return False
        return bool(claims.get("iss") == issuer and claims.get("aud") == "echo")

    assert not authlib_accepts(sent, op_jwks)
    assert not joserfc_accepts(sent, op_jwks)
    assert _kid(sent) not in {k["kid"] for k in op_jwks["keys"]}
    # not vacuous: the same checks take the assertion with the key set it belongs to,
    # and a token the OP signed with the OP's set
    own = (await _get(world, ASSERTION_JWKS)).json()
    assert authlib_accepts(sent, own) and joserfc_accepts(sent, own)
    token = world.token(aud="echo")
    assert authlib_accepts(token, op_jwks) and joserfc_accepts(token, op_jwks)


def test_of_what_the_op_set_signs_only_the_id_token_passes_for_one(
        client: TestClient, idp: Services) -> None:
    """The keys the OP's set does hold sign access tokens too: their ``aud`` is the
    issuer and resource URLs, never a client id (a code), so the same relying party's
    validation takes the ID token and refuses the access token of one sign-in."""
    tokens = code_flow(client)
    op_jwks = JsonWebKey.import_key_set(client.get("/.well-known/jwks.json").json())
    expect = {"iss": {"essential": True, "value": idp.settings.issuer},
              "aud": {"essential": True, "value": OFFICE[0]}}
    authlib_jwt.decode(tokens["id_token"], op_jwks, claims_options=expect).validate()
    with pytest.raises(AuthlibJoseError):
        authlib_jwt.decode(tokens["access_token"], op_jwks, claims_options=expect).validate()


@pytest.fixture
def gm(env: dict[str, str]) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(load_settings({**env, "GOVGATE_CRYPTO_PROFILE": "gm"}))
    try:
        with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
            yield services, c
    finally:
        close_services(services)


def test_the_guomi_profile_publishes_the_same_split(
        gm: tuple[Services, TestClient]) -> None:
    services, client = gm
    services.keys.rotate("assertion")
    services.keys.ensure_active("token_rs256")
    op = client.get("/.well-known/jwks.json").json()["keys"]
    assertion = client.get(ASSERTION_JWKS).json()["keys"]
    rsa = kids_of(services, "token_rs256")
    assert {k["kid"] for k in op} == kids_of(services, "token") | rsa and len(rsa) == 1
    assert {k["kid"] for k in assertion} == kids_of(services, "assertion")
    assert len(assertion) == 2
    for jwk in (*op, *assertion):
        if jwk["kid"] in rsa:  # RS256 ID tokens for the clients that ask for them
            assert (jwk["kty"], jwk["alg"]) == ("RSA", "RS256")
            continue
        assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("EC", "SM2", "SM2SM3")
