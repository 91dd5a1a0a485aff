"""A live gateway (uvicorn on 127.0.0.1, the demo organisation on the module's own
database) and SCIM clients registered with the ``scim`` scope: one of the platform
department (sees every department), one of a city's department (nn-jgsw only), and a
client without the scope. Tokens come from the gateway's token endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.conftest import settings_of_its_own
from tests.oauth2.helpers import EXTRA_CLIENTS
from tests.oauth2.live import live_gateway

SECRET = "scim-client-secret-" + "x" * 16
CLIENTS = [
    {"client_id": "scim-platform", "name": "统一身份同步", "department": "platform",
     "grant_types": ["client_credentials"], "secret": SECRET, "scope": "scim"},
    {"client_id": "scim-city", "name": "市局身份同步", "department": "nn-jgsw",
     "grant_types": ["client_credentials"], "secret": SECRET, "scope": "scim"},
    {"client_id": "no-scim", "name": "无同步权限", "department": "platform",
     "grant_types": ["client_credentials"], "secret": SECRET, "scope": "catalogue:read"},
]


@dataclass
class World:
    issuer: str
    services: Services

    @property
    def base(self) -> str:
        return f"{self.issuer}/scim/v2"

    def token(self, client_id: str, scope: str = "scim") -> str:
        answer = httpx.post(f"{self.issuer}/oauth2/token", auth=(client_id, SECRET),
                            data={"grant_type": "client_credentials", "scope": scope},
                            timeout=10)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    def http(self, client_id: str = "scim-platform", scope: str = "scim") -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=20, headers={
            "Authorization": f"Bearer {self.token(client_id, scope)}"})


@pytest.fixture(scope="package")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with settings_of_its_own(tmp_path_factory) as settings:
        yield settings


@pytest.fixture(scope="package")
def world(module_settings: Settings, monkeypatch_package: pytest.MonkeyPatch
          ) -> Iterator[World]:
    monkeypatch_package.setattr("tests.oauth2.helpers.EXTRA_CLIENTS",
                               [*EXTRA_CLIENTS, *CLIENTS])
    with live_gateway(module_settings) as (issuer, services):
        yield World(issuer, services)


@pytest.fixture(scope="package")
def monkeypatch_package() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch
