"""A client's X-Forwarded-Host (and its relatives) decides nothing: not the issuer, not
a redirect, not the token endpoint's transport check, not what an upstream is told
(X-Forwarded-Server, X-Original-Host, X-Host, ... used to reach it).
With and without ``trusted_proxies`` (uvicorn's ProxyHeadersMiddleware believes only
X-Forwarded-For and X-Forwarded-Proto, and only from a trusted peer).

Nothing in the gateway itself read those headers; the proxy passed the less common
ones through to the upstream. (Since then one thing reads X-Forwarded-Host, from a
trusted peer only: the URL a DPoP proof's htu may name, gateway.idp.dpop.request_target,
tests/oauth2/test_dpop_nonce.py; it lets nothing else through.)"""

from __future__ import annotations

import base64
import dataclasses

import pytest

from gateway.settings import Settings
from tests.proxy.conftest import World

EVIL = "evil.example"
HOSTILE = [
    ("X-Forwarded-Host", EVIL), ("X-Forwarded-Server", EVIL), ("X-Original-Host", EVIL),
    ("X-Host", EVIL), ("Forwarded", f"host={EVIL};proto=https"), ("X-Forwarded-Port", "4443"),
    ("X-Forwarded-Prefix", "/evil"), ("X-Forwarded-Ssl", "on"), ("X-Forwarded-Scheme", "https"),
    ("X-Url-Scheme", "https"), ("Front-End-Https", "on"),
]
SECRET = "forwarded-host-secret-0123456789abcdef"


@pytest.fixture(params=[(), ("127.0.0.1",)], ids=["no-trusted-proxy", "trusted-proxy"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    return dataclasses.replace(settings, trusted_proxies=request.param)


def _clean(value: object) -> None:
    assert EVIL not in str(value) and "/evil" not in str(value), value


async def test_forwarded_host_decides_nothing(world: World) -> None:
    issuer = world.services.settings.issuer
    # discovery: every URL is the configured issuer's
    r = await world.request("GET", "/.well-known/openid-configuration", headers=HOSTILE)
    assert r.status == 200 and r.json()["issuer"] == issuer
    _clean(r.body)
    # redirects are relative, or built from the Host the client connected with
    for path in ("/", "/portal", "/api/v1/catalogue/resources/"):
        r = await world.request("GET", path, headers=HOSTILE)
        assert r.status in (303, 307), (path, r.status)
        _clean(r.headers["location"])
    # the token endpoint: the issuer's transport, the issuer in the token
    world.built.state_applier().apply({"clients": [
        {"client_id": "fh-sync", "name": "转发测试", "department": "jgswj",
         "grant_types": ["client_credentials"], "secret": SECRET}]})
    basic = base64.b64encode(f"fh-sync:{SECRET}".encode()).decode()
    r = await world.request("POST", "/oauth2/token", body=b"grant_type=client_credentials",
                            headers=[*HOSTILE, ("Authorization", f"Basic {basic}"),
                                     ("Content-Type", "application/x-www-form-urlencoded")])
    assert r.status == 200, r.body
    claims = world.services.keys.verify_jwt("token", r.json()["access_token"])
    assert claims["iss"] == issuer
    # the proxy: the upstream hears the Host the client connected with, once, and none
    # of the client's forwarding headers; the assertion names the issuer
    r = await world.request("GET", "/s/echo/x", token=world.token(), headers=HOSTILE)
    assert r.status == 200, r.body
    sent = [(k.lower(), v) for k, v in r.json()["headers"]]
    assert [v for k, v in sent if k == "x-forwarded-host"] == [
        f"127.0.0.1:{world.gateway.port}"]
    for name, _ in HOSTILE:
        if name.lower() != "x-forwarded-host":
            assert name.lower() not in dict(sent), name
    _clean(sent)
    assertion = world.services.keys.verify_jwt("assertion", dict(sent)["x-govgate-assertion"])
    assert assertion["iss"] == issuer
    # forward-auth
    r = await world.request("GET", "/auth/verify", token=world.token(), headers=[
        *HOSTILE, ("X-Original-URI", "/s/echo/x"), ("X-Original-Method", "GET")])
    assert r.status == 200
    _clean(r.headers)
    assert world.services.keys.verify_jwt(
        "assertion", r.headers["x-govgate-assertion"])["iss"] == issuer


async def test_path_override_headers_never_reach_the_upstream(world: World) -> None:
    """The decision was made on /s/echo/public/x: an upstream honouring X-Original-URL or
    X-Rewrite-URL (IIS, Zend, old Symfony) would serve /admin instead."""
    r = await world.request("GET", "/s/echo/public/x", token=world.token(), headers=[
        ("X-Original-URL", "/admin"), ("X-Rewrite-URL", "/admin"), ("x-original-url", "/a")])
    assert r.status == 200, r.body
    assert r.json()["raw_path"] == "/public/x"
    sent = [k.lower() for k, _ in r.json()["headers"]]
    assert "x-original-url" not in sent and "x-rewrite-url" not in sent
