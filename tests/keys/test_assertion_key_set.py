"""The assertion keys' own document (``/.well-known/govgate-assertion-jwks.json``) through
a rotation, end to end: a real gateway and a real upstream behind
``govgate_upstream.AssertionMiddleware``, which fetches that document over HTTP; the
rotation by ``govgate keys rotate --use assertion``; the promotion after the
prepublication delay (the gateway's clock moved by hand); the previous key's assertion
still taken while the key is in its window, gone from the document after it. The
OpenID Provider's ``/.well-known/jwks.json`` names none of these keys, and an upstream
that still reads it fails closed, saying where the keys are."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.cli.keys_cmd import keys as keys_group
from gateway.clock import FrozenClock
from gateway.services import open_services
from gateway.settings import Settings
from gateway.setup import initialise
from govgate_upstream import AssertionMiddleware, AssertionVerifier, InvalidAssertion, fetch_json
from tests.proxy.conftest import ORG, Served, World, raw_request, served_world
from tests.tokens import access_token
from tests.wiring import apply_state

ASSERTION_JWKS = "/.well-known/govgate-assertion-jwks.json"
OP_JWKS = "/.well-known/jwks.json"


def _kid(token: str) -> str:
    head = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


class Upstream:
    """A system behind the gateway that trusts only its assertion, fetching the keys
    from the gateway as a deployed one does (each fetch recorded)."""

    def __init__(self, gateway: str, issuer: str, clock: FrozenClock) -> None:
        self.fetched: list[str] = []
        self.seen: list[str] = []  # the assertions it took

        def fetch(url: str) -> dict[str, Any]:
            self.fetched.append(url)
            return fetch_json(url)

        async def whoami(request: Request) -> JSONResponse:
            self.seen.append(request.headers["x-govgate-assertion"])
            return JSONResponse(request.scope["govgate"])

        # min_refetch 0: the test does not wait out the 10 s between forced fetches
        self.app = AssertionMiddleware(
            Starlette(routes=[Route("/{p:path}", whoami)]), verifier=AssertionVerifier(
                gateway=gateway, issuer=issuer, audience="helped", fetch=fetch,
                min_refetch=0.0, clock=lambda: clock().timestamp()))


@pytest.fixture
async def moved(settings: Settings) -> AsyncIterator[tuple[World, FrozenClock]]:
    """The proxy's world (tests/proxy/conftest.py) on a clock the test moves."""
    clock = FrozenClock(datetime.now(UTC))
    initialise(settings, password_factory=lambda: secrets.token_urlsafe(16))
    services = open_services(settings, clock=clock)
    # what another process changed shows within the ring cache's bound (1 s): shortened,
    # so that the test does not wait it out
    services.keys.ring.cache_seconds = 0.05
    apply_state(services, ORG)
    try:
        async with served_world(services) as world:
            yield world, clock
    finally:
        services.close()


async def _kids(world: World, path: str) -> list[str]:
    r = await world.request("GET", path)
    assert r.status == 200, r.body
    return [k["kid"] for k in r.json()["keys"]]


async def _published(world: World, path: str, want: set[str]) -> list[str]:
    """The document once it lists ``want``: the gateway's ring cache learns a key
    another process made within its bound."""
    deadline = time.monotonic() + 5
    while not want <= set(kids := await _kids(world, path)):
        assert time.monotonic() < deadline, (kids, want)
        await asyncio.sleep(0.05)
    return kids


async def test_a_rotation_reaches_the_upstream_through_the_assertion_key_set(
        moved: tuple[World, FrozenClock], env: dict[str, str]) -> None:
    world, clock = moved
    services = world.services
    assert world.gateway is not None
    base = f"http://127.0.0.1:{world.gateway.port}"
    upstream = Upstream(base, services.settings.issuer, clock)
    async with Served(upstream.app) as served:
        world.built.state_applier().apply({"systems": [
            {"code": "helped", "name": "helped", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{served.port}"}]})
        world.built.proxy.systems.invalidate()

        async def call() -> str:
            token = access_token(services, sub="zhang.san", department="jgswj")
            r = await world.request("GET", "/s/helped/api/me", token=token)
            assert r.status == 200, r.body
            return upstream.seen[-1]

        old = _kid(await call())
        assert upstream.fetched == [base + ASSERTION_JWKS]  # the new document, not the OP's

        result = CliRunner().invoke(keys_group, ["rotate", "--use", "assertion"], env=env)
        assert result.exit_code == 0 and "pending" in result.output, result.output
        pending = next(i for i in services.keys.list_keys()
                       if i.use == "assertion" and i.state == "pending")
        new = pending.kid
        due = pending.created_at + timedelta(seconds=services.settings.key_prepublish_seconds)
        # the next key is published before it signs, beside the active one
        assert await _published(world, ASSERTION_JWKS, {old, new}) == [old, new]
        assert not {old, new} & set(await _kids(world, OP_JWKS))

        clock.now = due - timedelta(seconds=30)  # just before: the old key still signs
        before = await call()
        assert _kid(before) == old and len(upstream.fetched) == 1
        clock.now = due + timedelta(seconds=1)  # the first signature after it promotes
        assert _kid(await call()) == new
        # an unknown kid made the upstream fetch the document again, which now holds
        # the active key and the previous one, in its window
        assert upstream.fetched == [base + ASSERTION_JWKS] * 2
        assert await _kids(world, ASSERTION_JWKS) == [new, old]
        assert not {old, new} & set(await _kids(world, OP_JWKS))
        # the assertion the old key signed a moment ago is still good at the upstream
        r = await raw_request(served.port, "GET", "/api/me", [("X-Govgate-Assertion", before)])
        assert r.status == 200, r.body

        retired = next(i for i in services.keys.list_keys() if i.kid == old)
        assert retired.state == "retired" and retired.leaves_jwks_at is not None
        clock.now = retired.leaves_jwks_at
        assert await _kids(world, ASSERTION_JWKS) == [new]  # out of its window


async def test_an_upstream_reading_the_op_key_set_fails_closed(
        moved: tuple[World, FrozenClock], caplog: pytest.LogCaptureFixture) -> None:
    """A system that still fetches ``/.well-known/jwks.json`` (an old copy of the helper,
    or its own code) finds no assertion key there: every assertion is refused; the helper
    of today says where the keys are, and refuses that URL when configured with it."""
    world, clock = moved
    services = world.services
    assert world.gateway is not None
    base = f"http://127.0.0.1:{world.gateway.port}"
    r = await world.request("GET", "/s/echo/api/me", token=access_token(
        services, sub="zhang.san", department="jgswj"))
    assert r.status == 200, r.body
    sent = dict(world.echo.seen[-1]["headers"])["x-govgate-assertion"]
    op_keys = await asyncio.to_thread(fetch_json, base + OP_JWKS)
    old = AssertionVerifier(issuer=services.settings.issuer, audience="echo", jwks=op_keys,
                            clock=lambda: clock().timestamp())
    with pytest.raises(InvalidAssertion) as refused:
        old.verify(sent, method="GET", path="/api/me")
    assert ASSERTION_JWKS in refused.value.reason
    with pytest.raises(ValueError, match="OpenID Provider's key set"):
        AssertionVerifier(gateway=base, audience="echo", jwks_url=base + OP_JWKS)
    # the OP's set served where the assertion keys should be (a mirror gone wrong): the
    # fetch is logged as holding none, and the assertion refused
    mirrored = AssertionVerifier(gateway=base, audience="echo", fetch=lambda url: op_keys,
                                 issuer=services.settings.issuer)
    with caplog.at_level(logging.WARNING, "govgate_upstream"), \
            pytest.raises(InvalidAssertion, match="invalid govgate assertion"):
        mirrored.verify(sent, method="GET", path="/api/me")
    assert f"holds no assertion key; the gateway publishes them at {ASSERTION_JWKS}" \
        in caplog.text
    # the same assertion against the document that holds it: taken
    own = await asyncio.to_thread(fetch_json, base + ASSERTION_JWKS)
    claims = AssertionVerifier(issuer=services.settings.issuer, audience="echo", jwks=own,
                               clock=lambda: clock().timestamp()).verify(
        sent, method="GET", path="/api/me")
    assert claims["username"] == "zhang.san"
