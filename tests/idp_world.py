"""The identity provider's test world, shared by tests/oauth2 and tests/portal: the
demo organisation and clients (``idp``) and an in-process client of its app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import close_services, make_services
from tests.wiring import parts


@pytest.fixture
def idp(settings: Settings) -> Iterator[Services]:
    services = make_services(settings)
    yield services
    close_services(services)


@pytest.fixture
def client(idp: Services) -> Iterator[TestClient]:
    with TestClient(create_app(parts(idp)), base_url="http://127.0.0.1:8080") as c:
        yield c
