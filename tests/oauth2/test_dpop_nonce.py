"""DPoP's server nonces (RFC 9449 sections 8 and 9, ``dpop_nonce = "all"``), the URL a
request came in on behind a trusted front proxy, and the rate limit before a proof's
write, through the real token endpoint, proxy, forward-auth, userinfo and the API with
a real upstream on a socket; the client does the nonce retry as the RFC describes
(``tests.dpop_proofs.NonceClient``)."""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.idp.dpop import NONCE_PURPOSE, NONCE_SLOT, Nonces
from gateway.idp.oauth2.tables import dpop_jtis
from gateway.services import open_services
from gateway.settings import Settings
from tests.dpop_proofs import Holder, NonceClient
from tests.oauth2.test_dpop import ALGS, BOUND, FORM, ISSUER, call, register
from tests.proxy import conftest as proxy
from tests.proxy.conftest import WORLD_PROXY, World, raw_request
from tests.proxy.test_forward_auth import nginx  # noqa: F401 - the fixture
from tests.proxy.test_forward_auth_caddy import caddy  # noqa: F401 - the fixture

base_services = proxy.base_services
world = proxy.world

ITEMS = f"{ISSUER}/s/echo/api/items"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the tests' client connects from 127.0.0.1: a trusted front proxy here
    return dataclasses.replace(settings, dpop_nonce="all", trusted_proxies=("127.0.0.1",))


def _token_sender(world: World) -> Any:
    basic = base64.b64encode(f"{BOUND[0]}:{BOUND[1]}".encode()).decode()

    async def send(headers: list[tuple[str, str]]) -> Any:
        return await raw_request(world.gateway.port, "POST", "/oauth2/token",  # type: ignore[union-attr]
                                 [("Authorization", f"Basic {basic}"), FORM, *headers],
                                 body=b"grant_type=client_credentials")
    return send


def _sender(world: World, target: str, token: str, method: str = "GET") -> Any:
    async def send(headers: list[tuple[str, str]]) -> Any:
        return await world.request(method, target,
                                   headers=[("Authorization", f"DPoP {token}"), *headers])
    return send


@pytest.fixture
def jti_inserts(world: World) -> Iterator[list[str]]:
    """The INSERTs into the replay table the gateway's engine runs, as they run."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT") and "idp_dpop_jtis" in statement:
            seen.append(statement)

    engine = world.services.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", count)


async def test_a_client_retries_with_the_servers_nonce_at_every_endpoint(
        world: World, jti_inserts: list[str]) -> None:
    register(world)
    holder = Holder()
    client = NonceClient(holder)
    # the token endpoint: 400 use_dpop_nonce with the nonce (audited), then the token,
    # with the nonce for the next proofs (section 8.2)
    r = await client.call(_token_sender(world), "POST", f"{ISSUER}/oauth2/token")
    assert r.status == 200 and r.json()["token_type"] == "DPoP", r.body
    assert client.retried == 1 and r.headers["dpop-nonce"]
    denied = [rec for rec in world.audit.records if rec.event_type == "token_denied"]
    assert [rec.reason for rec in denied] == [
        "use_dpop_nonce: the DPoP proof has no current server nonce"]
    token = str(r.json()["access_token"])
    r = await client.call(_token_sender(world), "POST", f"{ISSUER}/oauth2/token")
    assert r.status == 200 and client.retried == 1, r.body  # its nonce remembered

    # a resource: 401 with the DPoP challenge asking for a nonce, and the nonce
    r = await call(world, "/s/echo/api/items", token, holder.proof("GET", ITEMS, token=token))
    assert r.status == 401, r.body
    assert r.headers["www-authenticate"] == f'DPoP realm="govgate", error="use_dpop_nonce", {ALGS}'
    assert r.headers["dpop-nonce"]
    forged = "A" * 32
    keys = world.services.keys

    def nonce_of(ago: float) -> str:  # as any process sharing the database makes one
        return Nonces(lambda data: keys.mac(NONCE_PURPOSE, data),
                      lambda: time.time() - ago).current()

    for stale in (forged, nonce_of(2 * NONCE_SLOT), nonce_of(3 * NONCE_SLOT)):
        r = await call(world, "/s/echo/api/items", token, holder.proof(
            "GET", ITEMS, token=token, nonce=stale))
        assert r.status == 401 and 'error="use_dpop_nonce"' in r.headers["www-authenticate"]
    # the previous slot's is still good, and so is another process's (its key is the
    # key ring's, in the shared database)
    r = await call(world, "/s/echo/api/items", token, holder.proof(
        "GET", ITEMS, token=token, nonce=nonce_of(NONCE_SLOT)))
    assert r.status == 200, r.body
    other = open_services(world.services.settings)
    try:
        elsewhere = Nonces(lambda data: other.keys.mac(NONCE_PURPOSE, data), time.time)
        r = await call(world, "/s/echo/api/items", token, holder.proof(
            "GET", ITEMS, token=token, nonce=elsewhere.current()))
        assert r.status == 200, r.body
    finally:
        other.close()

    # every resource, each answered after the client's one retry
    front = [("X-Original-URI", "/s/echo/api/x"), ("X-Original-Method", "GET"),
             ("X-Forwarded-Host", "apps.example.gov"), ("X-Forwarded-Proto", "https")]
    for target, url, headers, status in (
            ("/s/echo/api/items", ITEMS, [], 200),
            ("/auth/verify", "https://apps.example.gov/s/echo/api/x", front, 200),
            # a client's token: past authentication, then refused for what it is
            ("/oauth2/userinfo", f"{ISSUER}/oauth2/userinfo", [], 403),
            ("/api/v1/account", f"{ISSUER}/api/v1/account", [], 403),
            ("/scim/v2/Users", f"{ISSUER}/scim/v2/Users", [], 403)):
        fresh = NonceClient(holder)
        r = await fresh.call(_sender(world, target, token), "GET", url, token=token,
                             headers=headers)
        assert (r.status, fresh.retried) == (status, 1), (target, r.status, r.body)
        if status == 403:  # in the token's scheme (Bearer on the base)
            assert r.headers["www-authenticate"].startswith(
                'DPoP realm="govgate", error="insufficient_scope"'), (target, r.headers)
    asked = [rec.event_type for rec in world.audit.records if rec.status == 401
             and rec.reason == "the DPoP proof has no current server nonce"]
    assert asked == ["proxy_request", "proxy_request", "forward_auth", "userinfo",
                     "api_request"], asked  # SCIM's
    assert [rec.reason for rec in world.audit.records if rec.status == 401].count(
        "the DPoP proof's nonce is not a current one") == 3

    # the front proxy trusted (trusted_proxies): the URL the client called it by,
    # X-Forwarded-Proto and X-Forwarded-Host (on the base only the issuer's was taken)
    there = "https://apps.example.gov/s/echo/api/items"
    r = await client.call(_sender(world, "/s/echo/api/items", token), "GET", there,
                          token=token, headers=[("X-Forwarded-Host", "apps.example.gov"),
                                                ("X-Forwarded-Proto", "https")])
    assert r.status == 200, r.body

    # a replay to this process is refused without a write (the shared table stays the
    # truth for the others: tests/oauth2/test_dpop.py)
    proof = holder.proof("GET", ITEMS, token=token, nonce=client.nonce)
    assert (await call(world, "/s/echo/api/items", token, proof)).status == 200
    before = len(jti_inserts)
    for _ in range(3):
        r = await call(world, "/s/echo/api/items", token, proof)
        assert r.status == 401 and 'error="invalid_dpop_proof"' in r.headers["www-authenticate"]
    assert len(jti_inserts) == before, "a replay wrote to the replay table"


async def test_the_rate_limit_comes_before_a_proofs_write(
        world: World, jti_inserts: list[str]) -> None:
    """A client holding its own key and token flooding the proxy: past its burst it is
    refused 429 before its proofs are written (on the base every request wrote one)."""
    register(world)
    holder = Holder()
    client = NonceClient(holder)
    r = await client.call(_token_sender(world), "POST", f"{ISSUER}/oauth2/token")
    assert r.status == 200, r.body
    token = str(r.json()["access_token"])
    async with world.rebuilt(proxy_config=dataclasses.replace(WORLD_PROXY, rate=0.01,
                                                              burst=2)):
        before = len(jti_inserts)
        statuses = [(await client.call(_sender(world, "/s/echo/api/items", token), "GET",
                                       ITEMS, token=token)).status for _ in range(5)]
        assert statuses == [200, 200, 429, 429, 429], statuses
        assert len(jti_inserts) - before == 2
    with world.services.engine.connect() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(dpop_jtis)
                            .where(dpop_jtis.c.jkt == holder.jkt)).scalar()
    # the token request (its first try, refused for want of a nonce, wrote none), two calls
    assert rows == 3
    limited = [rec for rec in world.audit.records if rec.status == 429]
    assert len(limited) == 3 and {rec.actor_client for rec in limited} == {BOUND[0]}

    # dpop_nonce = "token": the token endpoint asks for one, the resources do not
    world.services.settings = dataclasses.replace(world.services.settings, dpop_nonce="token")
    async with world.rebuilt():
        r = await call(world, "/s/echo/api/items", token, holder.proof("GET", ITEMS, token=token))
        assert r.status == 200, r.body
        r = await _token_sender(world)([("DPoP", holder.proof("POST", f"{ISSUER}/oauth2/token"))])
        assert r.status == 400 and r.json()["error"] == "use_dpop_nonce", r.body
        assert r.headers["dpop-nonce"]


async def test_userinfo_the_api_and_scim_limit_fresh_proofs_before_their_write(
        world: World, jti_inserts: list[str]) -> None:
    """The proxy's per-client limit (``proxy_rate``, ``proxy_burst``) before a proof's
    write at userinfo, the API and SCIM too, one bucket for the three: past the burst
    429 with ``Retry-After`` and no row. On the base each fresh proof wrote one."""
    register(world)
    holder = Holder()
    client = NonceClient(holder)
    r = await client.call(_token_sender(world), "POST", f"{ISSUER}/oauth2/token")
    token = str(r.json()["access_token"])
    world.services.settings = dataclasses.replace(world.services.settings, proxy_rate=0.01,
                                                  proxy_burst=2)
    async with world.rebuilt():
        before = len(jti_inserts)
        answers = []
        for target in ("/oauth2/userinfo", "/oauth2/userinfo", "/oauth2/userinfo",
                       "/api/v1/account", "/scim/v2/Users"):
            answers.append(await client.call(_sender(world, target, token), "GET",
                                             f"{ISSUER}{target}", token=token))
        # a client's token: past authentication (its proof written), refused for what it is
        assert [a.status for a in answers] == [403, 403, 429, 429, 429], [
            (a.status, a.body) for a in answers]
        assert len(jti_inserts) - before == 2
        for a in answers[2:]:
            assert int(a.headers["retry-after"]) >= 1
        assert answers[2].json()["error"] == "rate_limited"
        problem = answers[3].json()
        assert problem["type"] == "urn:govgate:error:rate_limited", problem
        assert "DPoP" in problem["detail"] and "秒后重试" in problem["detail"]
        assert answers[4].json()["status"] == "429"
    limited = [(rec.event_type, rec.actor_client) for rec in world.audit.records
               if rec.status == 429]
    assert limited == [("userinfo", BOUND[0]), ("api_request", BOUND[0])], limited


async def test_behind_the_shipped_nginx_conf_the_client_gets_the_nonce(
        world: World, nginx: int) -> None:  # noqa: F811 - the fixture
    """docs/nginx-forward-auth.conf hands forward-auth's 401 challenge and DPoP-Nonce to
    the client (the refusal page's Bearer challenge and no nonce on the base: a DPoP
    client behind nginx could never learn the nonce)."""
    await _retried_through(world, nginx)


async def test_behind_the_shipped_caddyfile_the_client_gets_the_nonce(
        world: World, caddy: int) -> None:  # noqa: F811 - the fixture
    """Caddy's forward_auth hands forward-auth's 401 on as it is, DPoP-Nonce included."""
    await _retried_through(world, caddy)


async def _retried_through(world: World, port: int) -> None:
    register(world)
    holder = Holder()
    client = NonceClient(holder)
    r = await client.call(_token_sender(world), "POST", f"{ISSUER}/oauth2/token")
    token = str(r.json()["access_token"])
    fresh = NonceClient(holder)

    async def send(headers: list[tuple[str, str]]) -> Any:
        return await raw_request(port, "GET", "/api/items",
                                 [("Authorization", f"DPoP {token}"), *headers])

    url = f"http://127.0.0.1:{port}/api/items"
    r = await fresh.call(send, "GET", url, token=token)
    assert (r.status, fresh.retried) == (200, 1), r.body
    assert world.echo.seen[-1]["raw_path"] == "/api/items"
