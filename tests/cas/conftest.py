"""A gateway with the demo organisation and one CAS-speaking system (``offices``)."""

from __future__ import annotations

import atexit
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.clock import FrozenClock
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
