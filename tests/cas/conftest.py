"""A gateway with the demo organisation and one CAS-speaking system (``offices``)."""

from __future__ import annotations

import atexit
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.cli.main import cli
from gateway.clock import FrozenClock
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.org import Org
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import close_services, frozen_now, make_services
from tests.wiring import apply_state, parts

# The CAS services' address: a port of 127.0.0.1 bound for the session and never
# listened on, so the single logout's posts to it are refused at once and no other
# program can take it meanwhile. It was 9102, the port of the demo's 办公用房管理系统:
# with `govgate demo` running on the machine, the gateway's posts reached the demo.
_HELD = socket.socket()
_HELD.bind(("127.0.0.1", 0))
atexit.register(_HELD.close)
ORIGIN = f"http://127.0.0.1:{_HELD.getsockname()[1]}"
SERVICE = ORIGIN + "/cas/app/"
EXACT = ORIGIN + "/exact"
CAS_SYSTEM = {"code": "offices", "name": "办公用房管理系统", "department": "jgswj",
              "upstream": ORIGIN,
              "cas_services": [ORIGIN + "/cas/*", EXACT],
              "cas_attributes": ["name", "department", "region", "roles"]}


def register_cas(services: Services, system: dict[str, Any] | None = None) -> None:
    apply_state(services, {"systems": [system or CAS_SYSTEM]})


@pytest.fixture
def clock() -> FrozenClock:
    return frozen_now()


@pytest.fixture
def idp(settings: Settings, clock: FrozenClock) -> Iterator[Services]:
    services = make_services(settings, clock=clock)
    register_cas(services)
    yield services
    close_services(services)


@pytest.fixture
def client(idp: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(idp)), base_url="http://127.0.0.1:8080") as c:
        yield c


def signed_in(client: TestClient, idp: Services, username: str) -> TestClient:
    """A browser on the portal with a session of ``username`` (two factors)."""
    browser = TestClient(client.app, base_url="http://127.0.0.1:8080")
    token, _ = parts(idp).provider.store.create_session(
        username, "active", amr="pwd otp", absolute_seconds=3600)
    browser.cookies.set(SESSION_COOKIE, token)
    return browser


def sysadmin_console(client: TestClient, idp: Services) -> TestClient:
    """The system administrator's browser on the console (its first password changed)."""
    Org(idp.engine, clock=idp.clock).change_password("sysadmin", "Brand-New-Passw0rd-2026!")
    return signed_in(client, idp, "sysadmin")


def govgate_cli(idp: Services) -> Callable[..., tuple[int, str]]:
    """``govgate ARGS`` on ``idp``'s database: its exit code and output (``lang``: LANG)."""
    env = {"GOVGATE_HOME": str(idp.settings.home),
           "GOVGATE_DATABASE_URL": idp.settings.database_url}

    def run(*args: str, lang: str = "C.UTF-8") -> tuple[int, str]:
        done = CliRunner().invoke(cli, list(args), env={**env, "LANG": lang},
                                  catch_exceptions=False)
        return done.exit_code, done.output

    return run
