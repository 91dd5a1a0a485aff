"""One world per module for the hostile-input tests (tests/hostile): a database, the
gateway built once (``gateway.root.build_gateway``, not through ``tests.wiring``,
whose per-test clean-up would stop it after the first test) and, for the proxy, the
real echo upstream and the gateway on real uvicorn servers.

A module that uses an async world marks its tests
``pytestmark = pytest.mark.asyncio(loop_scope="module")``: the servers live on the
module's event loop."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from audit.writer import AuditLog
from gateway import passwords
from gateway.app import browser_seams, create_app
from gateway.clock import FrozenClock
from gateway.demo import DEMO_STATE
from gateway.demo.apps import create_upstream
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.proxy.endpoint import ProxyConfig
from gateway.root import Gateway, Seams, build_gateway, state_applier
from gateway.services import Services, open_services
from gateway.settings import Settings, load_settings
from gateway.setup import initialise
from gateway.statefile import load_file
from gateway.web.http_server import HeadLimits
from tests.cas.conftest import CAS_SYSTEM
from tests.catalogue.conftest import MONDAY, LaxPaths
from tests.catalogue.conftest import World as CatWorld
from tests.conftest import fresh_database
from tests.oauth2.helpers import frozen_now, make_services
from tests.proxy.conftest import ORG, Echo, RecordingAudit, Served, World, echo_app


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy_ports(proxy_world: World) -> AsyncIterator[dict[str, int]]:
    """The world's gateway (httptools, as ``govgate serve`` runs) and a second server
    over the same gateway on uvicorn's other protocol, h11."""
    limits = HeadLimits.from_settings(proxy_world.services.settings)
    async with Served(create_app(proxy_world.built), http="h11", limits=limits) as h11:
        yield {"httptools": proxy_world.gateway.port, "h11": h11.port}


@pytest.fixture(params=["httptools", "h11"])
def port(request: pytest.FixtureRequest, proxy_ports: dict[str, int]) -> int:
    """The port of the gateway on each protocol in turn."""
    return proxy_ports[request.param]


def build(services: Services, **seams: Any) -> Gateway:
    """A gateway of ``services`` as ``create_app`` builds it, for the whole module."""
    return build_gateway(services, browser_seams(Seams(**seams)))


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings over a database of this module's own (SQLite, or a PostgreSQL schema)."""
    directory = tmp_path_factory.mktemp("hostile")
    home = directory / "home"
    home.mkdir()
    with fresh_database(directory) as url:
        yield load_settings({"GOVGATE_HOME": str(home), "GOVGATE_DATABASE_URL": url,
                             "LANG": "C.UTF-8"})


@pytest.fixture(scope="module")
def cheap_hashes() -> Iterator[None]:
    """argon2 at its lowest cost for the module's accounts (tests/conftest.py does it per
    test; a module's world signs its accounts up before any test runs)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                        parallelism=1))
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def proxy_world(module_settings: Settings, cheap_hashes: None) -> AsyncIterator[World]:
    """tests/proxy/conftest.py's ``world`` (the echo upstream behind the gateway, both
    real servers), built once for the module."""
    initialise(module_settings, password_factory=lambda: secrets.token_urlsafe(16))
    services = open_services(module_settings)
    state_applier(services).apply(ORG)
    echo = Echo()
    log = AuditLog(services.engine, writer_id="hostile-proxy")
    audit = RecordingAudit(log)
    services.audit = audit  # type: ignore[assignment]
    built = build(services, proxy_config=ProxyConfig(
        max_body_bytes=64 * 1024, read_timeout=2.0, connect_timeout=5.0, rate=10_000,
        burst=10_000))
    async with Served(echo_app(echo)) as upstream:
        built.state_applier().apply({"systems": [
            {"code": "echo", "name": "回显系统", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}"}]})
        built.proxy.systems.invalidate()
        limits = HeadLimits.from_settings(services.settings)
        async with Served(create_app(built), limits=limits) as gateway:
            yield World(services, echo, upstream, gateway, audit, built)
        await built.aclose()
    await log.close()
    services.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalogue_world(module_settings: Settings, cheap_hashes: None
                          ) -> AsyncIterator[CatalogueWorld]:
    """tests/catalogue/conftest.py's ``world`` (the demo organisation and catalogue, the
    demo's systems and ``cheliang``, a vehicle system behind a lax path reader, on real
    servers) built once for the module, with a frozen clock."""
    clock = FrozenClock(MONDAY)
    initialise(module_settings,
               password_factory=lambda: secrets.token_urlsafe(16) + "-Aa1!")
    services = open_services(module_settings, clock=clock)
    services.audit = AuditLog(services.engine, keys=services.keys, writer_id="hostile-cat",
                              clock=lambda: clock().timestamp())
    state_applier(services).apply(load_file(DEMO_STATE))
    upstreams = Starlette(routes=[
        *(Mount(f"/{code}", create_upstream(code)) for code in ("vehicles", "assets")),
        Mount("/cheliang", LaxPaths(create_upstream("vehicles")))])
    async with Served(upstreams) as up:
        owners = {"vehicles": "jgswj", "assets": "czt", "cheliang": "jgswj"}
        state_applier(services).apply({"systems": [
            {"code": code, "name": code, "department": owner,
             "upstream": f"http://127.0.0.1:{up.port}/{code}"}
            for code, owner in owners.items()]})
        built = build(services, proxy_config=ProxyConfig(rate=10_000, burst=10_000,
                                                         read_timeout=5, connect_timeout=2))
        async with Served(create_app(built)) as gw, httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{gw.port}") as http:
            yield CatalogueWorld(services, http, clock, built=built, port=gw.port)
        await built.aclose()
    await services.audit.close()
    services.close()


@dataclass
class CatalogueWorld(CatWorld):
    """Over real sockets (``app`` stays None: no in-process client)."""

    built: Gateway | None = None
    port: int = 0


@dataclass
class IdpWorld:
    """The identity provider's world (tests/oauth2/helpers.py's ``make_services``: the
    demo organisation and clients) with ``offices`` speaking CAS, a frozen clock, and
    an in-process client of its app."""

    services: Services
    built: Gateway
    client: TestClient
    clock: FrozenClock

    def fresh(self, address: str = "testclient") -> TestClient:
        """Another browser (no cookies), from ``address``."""
        return TestClient(self.client.app, base_url="http://127.0.0.1:8080",
                          client=(address, 40000))

    def session_cookie(self, username: str, stage: str = "active") -> str:
        """A new portal session of ``username`` (signed in with a password and a code)."""
        cookie, _ = self.built.provider.store.create_session(
            username, stage, amr="pwd otp", absolute_seconds=3600)
        return cookie

    def signed_in(self, username: str) -> TestClient:
        """Another browser, signed in to the portal as ``username``."""
        client = self.fresh()
        client.cookies.set(SESSION_COOKIE, self.session_cookie(username))
        return client


@pytest.fixture(scope="module")
def idp_world(module_settings: Settings, cheap_hashes: None) -> Iterator[IdpWorld]:
    clock = frozen_now()
    services = make_services(module_settings, clock=clock)
    state_applier(services).apply({"systems": [CAS_SYSTEM]})
    built = build(services)
    with TestClient(create_app(built), base_url="http://127.0.0.1:8080") as client:
        yield IdpWorld(services, built, client, clock)
    built.policies.close()
    services.audit.close_sync()
    services.close()
