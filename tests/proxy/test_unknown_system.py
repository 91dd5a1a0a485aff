"""The proxy and forward-auth authenticate before they route: a caller without valid
credentials gets the same answer for a system code that does not exist as for one
that does (no enumeration of codes), and only an authenticated caller with the scope
for that code learns that it does not exist (404).

The gateway and the echo upstream in process: this is about answers and audit
records, not the wire (tests/proxy/test_forward_auth_bytes.py has the wire)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.in_process import Resp
from tests.proxy.conftest import WORLD_PROXY, World

NAVIGATE = [("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
            ("Sec-Fetch-Mode", "navigate")]


@pytest.fixture
def world(quick_world: World) -> World:
    return quick_world


def expired(world: World) -> str:
    now = int(world.services.clock().timestamp())
    return world.token(iat=now - 1200, nbf=now - 1200, exp=now - 600)


def credentials(world: World) -> dict[str, list[tuple[str, str]]]:
    return {"none": [], "garbage": [("Authorization", "Bearer not-a-token")],
            "expired": [("Authorization", f"Bearer {expired(world)}")],
            "no session": [("Cookie", f"{SESSION_COOKIE}=forged")]}


def outward(r: Resp) -> tuple[Any, ...]:
    """All a caller can tell about the answer: status, the headers that are not per
    request, and the problem without its request id."""
    body = json.loads(r.body) if r.body else None
    if isinstance(body, dict):
        body.pop("request_id", None)
    return (r.status, r.headers.get("content-type"), r.headers.get("www-authenticate"),
            r.headers.get("location"), body)


async def verify(world: World, uri: str, headers: list[tuple[str, str]],
                 system: str | None = None) -> Resp:
    front = [("X-Original-URI", uri), ("X-Original-Method", "GET")]
    if system is not None:
        front.append(("X-Govgate-System", system))
    return await world.request("GET", "/auth/verify", headers=[*front, *headers])


async def test_strangers_get_one_answer_for_known_and_unknown_systems(world: World) -> None:
    for name, headers in credentials(world).items():
        known = await world.request("GET", "/s/echo/api/x", headers=headers)
        unknown = await world.request("GET", "/s/nosuch/api/x", headers=headers)
        assert known.status == 401, (name, known.body)
        assert outward(known) == outward(unknown), name
        assert json.loads(unknown.body)["type"].endswith("unauthorized"), name
        assert unknown.headers["www-authenticate"] == 'Bearer realm="govgate"'
        a, b = world.audit.records[-2:]
        assert (a.event_type, a.outcome, a.status, a.system) == (
            "proxy_request", "deny", 401, "echo"), name
        # the same record, except that it names no system that does not exist
        assert (b.event_type, b.outcome, b.status, b.system) == (
            "proxy_request", "deny", 401, None), name
        assert (a.reason, a.actor_user, a.extra["path"]) == (
            b.reason, None, "/s/echo/api/x"), name
        assert b.extra["path"] == "/s/nosuch/api/x"

        # forward-auth: the system in the URI or in X-Govgate-System
        for args in (("/s/echo/api/x",), ("/api/x", "echo")):
            other = ("/s/nosuch/api/x",) if len(args) == 1 else ("/api/x", "nosuch")
            known = await verify(world, args[0], headers, *args[1:])
            unknown = await verify(world, other[0], headers, *other[1:])
            assert known.status == 401, (name, args, known.body)
            assert outward(known) == outward(unknown), (name, args)
            a, b = world.audit.records[-2:]
            assert (a.event_type, a.status, a.system, b.event_type, b.status, b.system) == (
                "forward_auth", 401, "echo", "forward_auth", 401, None), (name, args)
            assert a.reason == b.reason


async def test_a_browser_without_a_session_is_sent_to_sign_in_for_any_code(
        world: World) -> None:
    for cookie in ([], [("Cookie", f"{SESSION_COOKIE}=forged")]):
        known = await world.request("GET", "/s/echo/api/x?a=1", headers=[*NAVIGATE, *cookie])
        unknown = await world.request("GET", "/s/nosuch/api/x?a=1",
                                      headers=[*NAVIGATE, *cookie])
        assert known.status == unknown.status == 303
        assert known.headers["location"].replace("echo", "nosuch") == \
            unknown.headers["location"]
        assert "/portal/login" in unknown.headers["location"]
        assert [r.status for r in world.audit.records[-2:]] == [401, 401]


async def test_an_authenticated_caller_learns_of_unknown_systems_only_in_scope(
        world: World) -> None:
    r = await world.request("GET", "/s/nosuch/api/x", token=world.token())
    assert r.status == 404 and json.loads(r.body)["type"].endswith("unknown_system")
    record = world.audit.records[-1]
    assert (record.outcome, record.status, record.system, record.actor_user) == (
        "error", 404, None, "zhang.san")
    assert record.reason == "no system nosuch"
    # scoped to one system: every other code, known or not, is out of its scope
    narrow = world.token(scope="openid proxy:echo")
    assert (await world.request("GET", "/s/echo/api/x", token=narrow)).status == 200
    down = await world.request("GET", "/s/down/api/x", token=narrow)
    nosuch = await world.request("GET", "/s/nosuch/api/x", token=narrow)
    assert down.status == 403
    assert repr(outward(down)).replace("down", "nosuch") == repr(outward(nosuch))
    assert 'error="insufficient_scope"' in nosuch.headers["www-authenticate"]
    # forward-auth answers 403 for every refusal (nginx's only one) and keeps the 404
    r = await verify(world, "/api/x", [("Authorization", f"Bearer {world.token()}")],
                     "nosuch")
    assert r.status == 403 and json.loads(r.body)["type"].endswith("unknown_system")
    assert world.audit.records[-1].extra["refused_as"] == 404
    # a portal session, navigating: the not-found page
    world.services.org.add_user("wang.wu", "王五", "jgswj", ["staff"], "Very-long-pass-123",
                                must_change=False)
    session, _ = world.built.provider.store.create_session(
        "wang.wu", "active", amr="pwd", absolute_seconds=3600)
    r = await world.request("GET", "/s/nosuch/x",
                            headers=[*NAVIGATE, ("Cookie", f"{SESSION_COOKIE}={session}")])
    assert r.status == 404 and world.audit.records[-1].actor_user == "wang.wu"
    assert r.headers["content-type"].startswith("text/html")


async def test_strangers_cannot_spend_a_clients_bucket_and_probes_spend_their_own(
        world: World) -> None:
    async with world.rebuilt(proxy_config=replace(WORLD_PROXY, rate=0.001, burst=2)):
        # tokens of office-web that do not verify: no bucket is touched
        for _ in range(3):
            for headers in ([("Authorization", f"Bearer {expired(world)}")],
                            [("Authorization", "Bearer not-a-token")]):
                for path in ("/s/echo/x", "/s/nosuch/x"):
                    r = await world.request("GET", path, headers=headers)
                    assert r.status == 401
        token = world.token()
        assert (await world.request("GET", "/s/nosuch/x", token=token)).status == 404
        assert (await world.request("GET", "/s/echo/x", token=token)).status == 200
        r = await world.request("GET", "/s/nosuch/x", token=token)
        assert r.status == 429 and "retry-after" in r.headers
        assert world.audit.records[-1].system is None
