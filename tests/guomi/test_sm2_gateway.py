"""A 国密-profile gateway over HTTP: discovery and the JWKS name SM2, the token endpoint
issues SM2-signed tokens (checked by the ``openssl`` command with the JWKS key),
introspection, userinfo and the proxy accept them, the ID token's ``at_hash`` is SM3's,
the upstream helper verifies the proxy's SM2 assertion against the gateway's JWKS; a
changed signature is refused."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives import hashes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.cli.keys_cmd import keys as keys_group
from gateway.services import Services
from gateway.settings import load_settings
from govgate_upstream import AssertionMiddleware
from tests.guomi.sm2_tools import b64, openssl_verifies, unb64
from tests.oauth2.helpers import FINANCE, close_services, code_flow, make_services
from tests.proxy.conftest import Served, World, raw_request
from tests.wiring import parts

SECRET = "s3cret-for-the-sm2-client-0123456789"
FORM = ("Content-Type", "application/x-www-form-urlencoded")


def _basic(client_id: str) -> tuple[str, str]:
    return ("Authorization", "Basic " + base64.b64encode(f"{client_id}:{SECRET}".encode()
                                                         ).decode())


def _header(token: str) -> dict:
    return dict(json.loads(unb64(token.split(".")[0])))


async def test_gm_gateway_issues_and_checks_sm2_tokens_and_assertions(
        world: World, openssl: str, tmp_path: Path) -> None:
    discovery = (await world.request("GET", "/.well-known/openid-configuration")).json()
    # and RS256, whose key a client asking for it makes (OpenID Connect Core 15.1)
    assert discovery["id_token_signing_alg_values_supported"] == ["SM2SM3", "RS256"]
    jwks = (await world.request("GET", "/.well-known/jwks.json")).json()
    assert {(k["kty"], k["crv"], k["alg"]) for k in jwks["keys"]} == {("EC", "SM2", "SM2SM3")}
    by_kid = {k["kid"]: k for k in jwks["keys"]}

    # client credentials through the token endpoint
    world.built.state_applier().apply({"clients": [
        {"client_id": "sm2-sync", "name": "国密同步", "department": "jgswj", "scope": "proxy",
         "grant_types": ["client_credentials"], "secret": SECRET}]})
    r = await world.request("POST", "/oauth2/token", headers=[_basic("sm2-sync"), FORM],
                            body=b"grant_type=client_credentials&scope=proxy")
    assert r.status == 200, r.body
    token = r.json()["access_token"]
    header = _header(token)
    assert header["alg"] == "SM2SM3" and header["kid"].startswith("token-")
    head, body, sig = token.split(".")
    assert openssl_verifies(openssl, tmp_path, by_kid[header["kid"]], f"{head}.{body}".encode(),
                            unb64(sig))

    r = await world.request("POST", "/oauth2/introspect", headers=[_basic("sm2-sync"), FORM],
                            body=f"token={token}".encode())
    assert r.status == 200 and r.json()["active"] is True, r.body

    # the proxy: an upstream that trusts only the gateway's (SM2) assertion
    async def whoami(request: Request) -> JSONResponse:
        sent = request.headers["x-govgate-assertion"]
        return JSONResponse({"alg": _header(sent)["alg"], **request.scope["govgate"]})

    app = AssertionMiddleware(Starlette(routes=[Route("/{p:path}", whoami)]),
                              gateway=f"http://127.0.0.1:{world.gateway.port}",
                              issuer=world.services.settings.issuer, audience="helped")
    async with Served(app) as upstream:
        world.built.state_applier().apply({"systems": [
            {"code": "helped", "name": "helped", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}"}]})
        world.built.proxy.systems.invalidate()
        r = await world.request("GET", "/s/helped/api/me", token=token)
        assert r.status == 200, r.body
        assert r.json()["alg"] == "SM2SM3" and r.json()["aud"] == "helped"
        assert r.json()["sub"] == "client:sm2-sync"
        # a changed signature: refused at the gateway, and the upstream never asked
        raw = bytearray(unb64(sig))
        raw[7] ^= 1
        r = await world.request("GET", "/s/helped/api/me", token=f"{head}.{body}.{b64(raw)}")
        assert r.status == 401
        assert (await raw_request(upstream.port, "GET", "/api/me", [])).status == 401


def test_id_tokens_are_sm2_signed_with_an_sm3_at_hash(client: TestClient, idp: Services) -> None:
    tokens = code_flow(client)
    id_token, access = tokens["id_token"], tokens["access_token"]
    assert _header(id_token)["alg"] == _header(access)["alg"] == "SM2SM3"
    claims = idp.keys.verify_jwt("token", id_token)
    digest = hashes.Hash(hashes.SM3())  # OIDC Core 3.1.3.6: the alg's hash, left half
    digest.update(access.encode())
    assert claims["at_hash"] == b64(digest.finalize()[:16])
    r = client.get("/oauth2/userinfo", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 200 and r.json()["sub"] == "zhang.san"


def test_back_to_the_standard_profile_refuses_sm2_until_rotated(
        client: TestClient, idp: Services, env: dict[str, str]) -> None:
    """The same database under the default profile: an SM2 token is no longer
    accepted, the SM2 key signs nothing (a problem naming the fix, not a 500), and
    after ``govgate keys rotate --now`` tokens are ES256 as on any standard gateway."""
    sm2_token = client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=FINANCE).json()["access_token"]
    standard = make_services(load_settings(env))
    try:
        with TestClient(create_app(parts(standard)), base_url="http://127.0.0.1:8080") as std:
            r = std.post("/oauth2/introspect", data={"token": sm2_token}, auth=FINANCE)
            assert r.status_code == 200 and r.json() == {"active": False}
            r = std.post("/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=FINANCE)
            assert r.status_code == 409, r.text
            assert "govgate keys rotate --use token --now" in r.text
            r = CliRunner().invoke(keys_group, ["rotate", "--use", "token", "--now"], env=env)
            assert r.exit_code == 0, r.output
            r = std.post("/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=FINANCE)
            assert r.status_code == 200 and _header(r.json()["access_token"])["alg"] == "ES256"
            algs = std.get("/.well-known/openid-configuration").json()[
                "id_token_signing_alg_values_supported"]
            assert algs == ["ES256", "RS256"]
    finally:
        close_services(standard)
