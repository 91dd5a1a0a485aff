"""The upstream helper: an upstream that trusts only the gateway's assertion."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.idp.authenticator import Principal
from gateway.proxy.assertion import mint_assertion
from govgate_upstream import (
    AssertionMiddleware,
    AssertionVerifier,
    InvalidAssertion,
    WSGIAssertionMiddleware,
)
from tests.proxy.conftest import Served, World, raw_request

WHO = Principal("zhang.san", "zhang.san", "jgswj", "gx", frozenset({"staff"}), "office-web",
                frozenset(), None, None, "bearer")


async def test_asgi_upstream_accepts_only_the_gateways_assertion(world: World) -> None:
    """Only the gateway's assertion opens the upstream, ES256 (the default) or EdDSA."""
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse(request.scope["govgate"])

    settings = world.services.settings
    app = AssertionMiddleware(
        Starlette(routes=[Route("/{p:path}", whoami)]),
        gateway=f"http://127.0.0.1:{world.gateway.port}", issuer=settings.issuer,
        audience="helped",
    )
    async with Served(app) as upstream:
        world.built.state_applier().apply({"systems": [
            {"code": "helped", "name": "helped", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}"}]})
        world.built.proxy.systems.invalidate()  # else re-read within 1 s
        r = await world.request("GET", "/s/helped/api/me", token=world.token())
        assert r.status == 200, r.body
        assert r.json()["username"] == "zhang.san" and r.json()["aud"] == "helped"
        # straight to the upstream, around the gateway
        direct = await raw_request(upstream.port, "GET", "/api/me", [])
        assert direct.status == 401
        # an assertion the gateway minted for another system
        other = mint_assertion(world.services.keys, WHO, issuer=settings.issuer,
                               system="echo", request_id="r1", now=world.services.clock())
        r = await raw_request(upstream.port, "GET", "/api/me", [("X-Govgate-Assertion", other)])
        assert r.status == 401

    # the ring's assertion key switched to Ed25519 (``govgate keys rotate --use assertion
    # --alg EdDSA --now``, weighed against ES256 in docs/BENCHMARKS.md): the proxy signs
    # with it at once, and an upstream verifying through the published key set (an OKP
    # key now) admits the call; in this test, not one of its own: a world costs seconds
    keys = world.services.keys
    keys.rotate("assertion", "EdDSA")
    keys.promote_now("assertion")
    assert any(k["kty"] == "OKP" and k["alg"] == "EdDSA"
               for k in keys.jwks("assertion")["keys"])

    async def with_assertion(request: Request) -> JSONResponse:
        return JSONResponse({"assertion": request.headers["x-govgate-assertion"],
                             **request.scope["govgate"]})

    eddsa = AssertionMiddleware(  # a new one: the first keeps the key set it fetched
        Starlette(routes=[Route("/{p:path}", with_assertion)]),
        gateway=f"http://127.0.0.1:{world.gateway.port}", issuer=settings.issuer,
        audience="helped")
    async with Served(eddsa) as upstream:
        world.built.state_applier().apply({"systems": [
            {"code": "helped", "name": "helped", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}"}]})
        world.built.proxy.systems.invalidate()
        with warnings.catch_warnings():  # joserfc calls EdDSA deprecated (RFC 9864)
            warnings.simplefilter("ignore", DeprecationWarning)
            r = await world.request("GET", "/s/helped/api/me", token=world.token())
        assert r.status == 200, r.body
        seen = r.json()
        assert seen["username"] == "zhang.san" and seen["htu"] == "/api/me"
        head = json.loads(base64.urlsafe_b64decode(seen["assertion"].split(".")[0] + "=="))
        assert head["alg"] == "EdDSA"


def _verifier(world: World, **kw: Any) -> AssertionVerifier:
    return AssertionVerifier(issuer=world.services.settings.issuer, audience="echo",
                             jwks=world.services.keys.jwks(), **kw)


def test_verifier_refuses_expired_forged_and_other_tokens(world: World) -> None:
    s = world.services
    good = mint_assertion(s.keys, WHO, issuer=s.settings.issuer, system="echo",
                          request_id="r1", now=s.clock())
    v = _verifier(world)
    assert v.verify(good)["department"] == "jgswj"
    later = _verifier(world, clock=lambda: time.time() + 120)
    with pytest.raises(InvalidAssertion):
        later.verify(good)
    with pytest.raises(InvalidAssertion):
        v.verify(world.token())  # an access token is not an assertion (typ, key)
    head, payload, sig = good.split(".")
    with pytest.raises(InvalidAssertion):
        v.verify(f"{head}.{payload}.{sig[:-4]}AAAA")
    with pytest.raises(InvalidAssertion):
        v.verify(None)


def test_wsgi_middleware(world: World) -> None:
    s = world.services
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ["govgate"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    mw = WSGIAssertionMiddleware(app, verifier=_verifier(world))
    statuses: list[str] = []
    good = mint_assertion(s.keys, WHO, issuer=s.settings.issuer, system="echo",
                          request_id="r1", now=s.clock())
    assert mw({"PATH_INFO": "/x", "HTTP_X_GOVGATE_ASSERTION": good},
              lambda st, h: statuses.append(st)) == [b"ok"]
    assert seen["username"] == "zhang.san"
    mw({"PATH_INFO": "/x"}, lambda st, h: statuses.append(st))
    assert statuses == ["200 OK", "401 Unauthorized"]


def test_only_assertion_keys_verify_an_assertion(world: World) -> None:
    """The JWKS also lists the token and audit keys: a JWT one of them signed is never
    an assertion, whatever its header says (the gateway signs nothing of the sort
    today; the helper does not rely on that)."""
    from gateway.proxy.assertion import TYP, assertion_claims

    keys = world.services.keys
    claims = assertion_claims(WHO, issuer=world.services.settings.issuer, system="echo",
                              request_id="r1", now=world.services.clock())
    verifier = _verifier(world)
    assert verifier.verify(keys.sign_jwt("assertion", claims, headers={"typ": TYP}))
    for use in ("token", "audit"):
        with pytest.raises(InvalidAssertion):
            verifier.verify(keys.sign_jwt(use, claims, headers={"typ": TYP}))


async def test_an_assertion_serves_only_the_request_it_was_made_for(world: World) -> None:
    """Forward-auth hands its assertion to whoever asks /auth/verify: bound to the
    method and path checked (htm, htu), it does not open another request at the
    system (attack of 2026-12-04: a HEAD's assertion replayed for a GET)."""
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"path": request.url.path, **request.scope["govgate"]})

    settings = world.services.settings
    app = AssertionMiddleware(
        Starlette(routes=[Route("/{p:path}", whoami, methods=["GET", "HEAD", "POST"])]),
        gateway=f"http://127.0.0.1:{world.gateway.port}", issuer=settings.issuer,
        audience="helped")
    async with Served(app) as upstream:
        world.built.state_applier().apply({"systems": [
            {"code": "helped", "name": "helped", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}/base"}]})
        world.built.proxy.systems.invalidate()
        via_proxy = await world.request("GET", "/s/helped/api/%E8%BD%A6?q=1",
                                        token=world.token())
        assert via_proxy.status == 200, via_proxy.body
        claims = via_proxy.json()
        assert claims["htm"] == "GET" and claims["htu"] == "/base/api/%E8%BD%A6"

        checked = await world.request("GET", "/auth/verify", token=world.token(), headers=[
            ("X-Original-URI", "/api/status?x=1"), ("X-Original-Method", "HEAD"),
            ("X-Govgate-System", "helped")])
        assertion = checked.headers["x-govgate-assertion"]
        assert (await raw_request(upstream.port, "HEAD", "/api/status",
                                  [("X-Govgate-Assertion", assertion)])).status == 200
        for method, path in (("GET", "/api/status"), ("HEAD", "/api/vehicles"),
                             ("POST", "/api/status")):
            replay = await raw_request(upstream.port, method, path,
                                       [("X-Govgate-Assertion", assertion)])
            assert replay.status == 401, (method, path)
        # a front proxy serving the system under /s/{system}/ and stripping the prefix
        checked = await world.request("GET", "/auth/verify", token=world.token(), headers=[
            ("X-Original-URI", "/s/helped/api/status"), ("X-Original-Method", "GET")])
        stripped = await raw_request(upstream.port, "GET", "/api/status", [
            ("X-Govgate-Assertion", checked.headers["x-govgate-assertion"])])
        assert stripped.status == 200


def test_wsgi_middleware_checks_the_binding(world: World) -> None:
    s = world.services
    mw = WSGIAssertionMiddleware(lambda e, sr: (sr("200 OK", []), [b"ok"])[1],
                                 verifier=_verifier(world))
    from gateway.proxy.assertion import TYP, assertion_claims

    bound = s.keys.sign_jwt("assertion", assertion_claims(
        WHO, issuer=s.settings.issuer, system="echo", request_id="r2", now=s.clock(),
        method="GET", path="/x%20y"), headers={"typ": TYP})
    statuses: list[str] = []
    mw({"REQUEST_METHOD": "GET", "PATH_INFO": "/x y", "HTTP_X_GOVGATE_ASSERTION": bound},
       lambda st, h: statuses.append(st))
    mw({"REQUEST_METHOD": "POST", "PATH_INFO": "/x y", "HTTP_X_GOVGATE_ASSERTION": bound},
       lambda st, h: statuses.append(st))
    mw({"REQUEST_METHOD": "GET", "PATH_INFO": "/other", "HTTP_X_GOVGATE_ASSERTION": bound},
       lambda st, h: statuses.append(st))
    assert statuses == ["200 OK", "401 Unauthorized", "401 Unauthorized"]

