"""Who may ask ``/auth/verify`` (review of 2026-12-05, fourth session, "Found and
left"): its answer (the user's roles and department, the signed assertion, the
request's cookies repeated in ``X-Govgate-Cookie``) is for the front proxy only. A
peer outside ``forward_auth_from`` (loopback and ``trusted_proxies`` when unset) is
refused 403 ``forward_auth_peer``, audited, with nothing of the user in the answer; the
connection's PEER decides, not ``X-Forwarded-For``. The app called in process with
the peer address a server would hand it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from gateway.app import create_app
from gateway.services import Services
from tests.in_process import AsgiUpstreams, Resp, call
from tests.proxy.conftest import (
    IN_PROCESS_ECHO,
    WORLD_PROXY,
    Echo,
    World,
    echo_app,
    world_systems,
)
from tests.proxy.test_forward_auth import verify_headers
from tests.tokens import access_token, own_client
from tests.wiring import gateway_for

# a browser's cookies: the system's HttpOnly session among them
COOKIE = "JSESSIONID=secret-of-another-app; app_pref=dark"


async def _ask(app: object, token: str, peer: str, *extra: tuple[str, str]) -> Resp:
    return await call(app, "GET", "/auth/verify", [  # type: ignore[arg-type]
        ("Authorization", f"Bearer {token}"), ("Cookie", COOKIE),
        *verify_headers("/s/echo/api/x"), *extra], client=(peer, 40000))


def _refused(r: Resp) -> None:
    """403 ``forward_auth_peer`` and nothing of the user or the request."""
    assert r.status == 403, r.body
    assert r.json()["type"] == "urn:govgate:error:forward_auth_peer"
    assert not [k for k in r.headers if k.startswith("x-govgate-")], r.headers
    assert b"zhang.san" not in r.body and b"secret-of-another-app" not in r.body
    assert r.headers["cache-control"] == "no-store"


async def test_only_loopback_may_ask_by_default(quick_world: World) -> None:
    token = quick_world.token()
    for peer in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
        r = await _ask(quick_world.app, token, peer)
        assert r.status == 200, (peer, r.body)
        assert r.headers["x-govgate-roles"] == "staff"
    # a relying party holding the user's token, calling the gateway directly
    for peer in ("192.0.2.7", "10.0.0.5", "::ffff:192.0.2.7", "2001:db8::1", "testclient"):
        r = await _ask(quick_world.app, token, peer)
        _refused(r)
        record = quick_world.audit.records[-1]
        assert (record.event_type, record.outcome) == ("forward_auth", "deny")
        assert record.extra["peer"] == peer
        assert "forward_auth_from" in (record.reason or "")
        assert "secret-of-another-app" not in str(record.extra)
    # in the caller's language (Chinese by default)
    assert "前端代理" in r.json()["detail"]
    r = await _ask(quick_world.app, token, "192.0.2.7", ("Accept-Language", "en"))
    _refused(r)
    assert "front proxy only" in r.json()["detail"]


Build = Callable[[tuple[str, ...], tuple[str, ...]], Awaitable[object]]


@pytest.fixture
async def built_with(base_services: Services) -> AsyncIterator[Build]:
    """``await built_with(trusted_proxies, forward_auth_from)``: the app built from
    settings saying so (once per test: the app reads ``trusted_proxies`` at its first
    request, so the settings stay until the test ends)."""
    original = base_services.settings
    built = []

    async def build(trusted: tuple[str, ...], allowed: tuple[str, ...]) -> object:
        assert not built, "one configuration per test"
        base_services.settings = dataclasses.replace(
            original, trusted_proxies=trusted, forward_auth_from=allowed)
        made = gateway_for(base_services, upstream_client=AsgiUpstreams(
            {IN_PROCESS_ECHO: echo_app(Echo())}))
        made.state_applier().apply({"systems": world_systems(f"http://{IN_PROCESS_ECHO}")})
        built.append(made)
        return create_app(made)

    yield build
    base_services.settings = original
    for made in built:
        await made.aclose()


def _token(services: Services) -> str:
    """zhang.san of jgswj (staff) through a client of his department, as ``World``."""
    return access_token(services, typ="at+jwt", sub="zhang.san", department="jgswj",
                        roles=["staff"], client_id=own_client("jgswj"))


async def test_trusted_proxies_may_ask_when_forward_auth_from_is_unset(
        base_services: Services, built_with: Build) -> None:
    app = await built_with(("10.0.0.5",), ())
    token = _token(base_services)
    assert (await _ask(app, token, "10.0.0.5", ("X-Forwarded-For", "203.0.113.4"))).status == 200
    assert (await _ask(app, token, "127.0.0.1")).status == 200
    _refused(await _ask(app, token, "10.0.0.6"))
    # X-Forwarded-For from a peer that is not trusted names nobody
    _refused(await _ask(app, token, "203.0.113.4", ("X-Forwarded-For", "10.0.0.5")))


async def test_the_peer_decides_not_x_forwarded_for(
        base_services: Services, built_with: Build) -> None:
    """``forward_auth_from = ["10.0.0.9"]`` (nginx) beside ``trusted_proxies =
    ["10.0.0.5"]`` (a load balancer serving clients): a client through the load
    balancer naming nginx's address in ``X-Forwarded-For`` is still refused, although
    the load balancer is trusted to name the client address the audit records."""
    app = await built_with(("10.0.0.5",), ("10.0.0.9",))
    token = _token(base_services)
    _refused(await _ask(app, token, "10.0.0.5", ("X-Forwarded-For", "10.0.0.9")))
    r = await _ask(app, token, "10.0.0.9", ("X-Forwarded-For", "203.0.113.4"))
    assert r.status == 200 and r.headers["x-govgate-user"] == "zhang.san"
    # set, it names exactly the peers: loopback is no longer among them
    _refused(await _ask(app, token, "127.0.0.1"))


async def test_a_real_server_hands_the_peer_over(world: World) -> None:
    """Over a real socket from 127.0.0.1: answered by default; refused by a gateway
    whose ``forward_auth_from`` names only another address (the server's peer is what
    decides, the same request otherwise)."""
    headers = [("Cookie", COOKIE), *verify_headers("/s/echo/api/x")]
    r = await world.request("GET", "/auth/verify", token=world.token(), headers=headers)
    assert r.status == 200 and r.headers["x-govgate-cookie"] == COOKIE
    async with world.rebuilt(proxy_config=dataclasses.replace(
            WORLD_PROXY, forward_auth_from=("192.0.2.1",))):
        r = await world.request("GET", "/auth/verify", token=world.token(), headers=headers)
        _refused(r)
        assert world.audit.records[-1].extra["peer"] == "127.0.0.1"
