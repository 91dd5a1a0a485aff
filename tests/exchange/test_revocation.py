"""A revoked subject token takes the tokens exchanged from it (RFC 8693) with it: the
proxy, forward-auth and introspection refuse them as soon as they refuse the subject
token itself, and a revoked token stays refused while a verifier's clock skew would
still take it after its ``exp``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.idp.oauth2.deny_list import SUBJECT_JTI
from tests.exchange.conftest import ISSUER, SECRET, World, claims_of
from tests.in_process import AsgiTransport
from tests.wiring import gateway_for

AUTH = ("fin-portal", SECRET)


async def _introspect(world: World, token: str) -> dict[str, Any]:
    r = await world.http.post("/oauth2/introspect", data={"token": token}, auth=AUTH)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _verify(world: World, token: str) -> httpx.Response:
    return await world.http.get("/auth/verify", headers={
        "X-Original-URI": "/s/echo/shared/x", "X-Original-Method": "GET",
        "Authorization": f"Bearer {token}"})


async def test_revoking_the_subject_token_revokes_what_was_exchanged_from_it(
        world: World, clock: FrozenClock) -> None:
    parent = world.user_token("zhao.min", "czt", roles=("staff", "data_steward"))
    other = world.user_token("zhao.min", "czt", roles=("staff", "data_steward"))
    children = []
    for subject in (parent, parent, other):
        r = await world.exchange(subject, audience="echo")
        assert r.status_code == 200, r.text
        children.append(r.json()["access_token"])
    child, sibling, unrelated = children
    assert claims_of(child)[SUBJECT_JTI] == claims_of(parent)["jti"]
    for token in children:  # each works, and is cached by the proxy as it works
        assert (await world.get("/s/echo/shared/x", token)).status_code == 200
        assert (await _verify(world, token)).status_code == 200
        assert (await _introspect(world, token))["active"] is True

    r = await world.http.post("/oauth2/revoke", data={"token": parent}, auth=AUTH)
    assert r.status_code == 200, r.text

    for token in (child, sibling):
        r = await world.get("/s/echo/shared/x", token)
        assert r.status_code == 401, r.text
        refused = world.records("proxy_request")[-1]
        assert (refused["outcome"], refused["reason"]) == ("deny", "token revoked")
        assert (await _verify(world, token)).status_code == 401
        assert world.records("forward_auth")[-1]["reason"] == "token revoked"
        assert await _introspect(world, token) == {"active": False}
        looked = world.records("token_introspected")[-1]
        assert looked["reason"] == "inactive: revoked"
        assert looked["extra"]["jti"] == claims_of(token)["jti"]
    # what was exchanged from another token of the same user and client still works
    assert (await world.get("/s/echo/shared/x", unrelated)).status_code == 200
    assert (await _introspect(world, unrelated))["active"] is True
    # and the revoked subject token exchanges nothing more
    r = await world.exchange(parent, audience="echo")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    await _revoked_stays_revoked_within_the_clock_skew_after_exp(world, clock)


async def _revoked_stays_revoked_within_the_clock_skew_after_exp(
        world: World, clock: FrozenClock) -> None:
    """The deny entry of a revoked token lasts past its ``exp`` as long as a verifier
    would still take the token (``clock_skew_seconds``): it never comes back."""
    now = int(clock().timestamp())
    parent = world.user_token("zhao.min", "czt", roles=("staff",), exp=now + 60)
    r = await world.exchange(parent, audience="echo")
    assert r.status_code == 200, r.text
    child = r.json()["access_token"]
    assert claims_of(child)["exp"] == now + 60
    r = await world.http.post("/oauth2/revoke", data={"token": parent}, auth=AUTH)
    assert r.status_code == 200, r.text
    skew = world.services.settings.clock_skew_seconds
    assert skew > 2
    clock.advance(60 + skew - 1)  # past exp and its deny row, within the skew
    for token in (parent, child):
        assert await _introspect(world, token) == {"active": False}
    # the maintenance round's purge keeps the row as long: a process started now (its
    # deny list read afresh from the table) refuses them too
    fresh = gateway_for(world.services)
    await asyncio.to_thread(fresh.provider.store.purge)
    async with httpx.AsyncClient(transport=AsgiTransport(create_app(fresh)),
                                 base_url=ISSUER) as other:
        for token in (parent, child):
            r = await other.post("/oauth2/introspect", data={"token": token}, auth=AUTH)
            assert r.json() == {"active": False}, r.text
    clock.advance(2)  # past the skew: expired, whatever the deny list says
    for token in (parent, child):
        assert await _introspect(world, token) == {"active": False}
        assert world.records("token_introspected")[-1]["reason"] == "inactive: expired"
