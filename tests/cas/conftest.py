"""A gateway with the demo organisation and one CAS-speaking system (``offices``)."""

from __future__ import annotations

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

SERVICE = "http://127.0.0.1:9102/cas/app/"
EXACT = "http://127.0.0.1:9102/exact"
CAS_SYSTEM = {"code": "offices", "name": "办公用房管理系统", "department": "jgswj",
              "upstream": "http://127.0.0.1:9102",
              "cas_services": ["http://127.0.0.1:9102/cas/*", EXACT],
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
