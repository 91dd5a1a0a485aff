"""The SAML tests' gateways, one per test module (a gateway with the demo organisation
takes seconds to set up, and the modules' tests share it, each with its own browser):
``world``, a live gateway on 127.0.0.1 and a real pysaml2 SP registered with it as the
system ``archives``."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.clock import utcnow
from gateway.idp.saml import signing
from gateway.idp.saml.tables import signing_keys
from gateway.services import Services
from gateway.settings import Settings
from tests.conftest import settings_of_its_own
from tests.oauth2.live import live_gateway
from tests.saml.sp import TestSp, serving
from tests.wiring import apply_state

ALL_ATTRIBUTES = ["name", "department", "region", "roles"]


@dataclass
class World:
    gateway: str
    services: Services
    sp: TestSp


def register(services: Services, sp: TestSp, code: str = "archives", **saml: Any) -> None:
    apply_state(services, {"systems": [{
        "code": code, "name": "档案管理系统", "department": "jgswj", "upstream": sp.base,
        "saml_sp": {"metadata": sp.metadata(), **saml}}]})


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with settings_of_its_own(tmp_path_factory) as settings:
        yield settings


@pytest.fixture(scope="module")
def world(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    with live_gateway(module_settings) as (gateway, services):
        idp_metadata = httpx.get(f"{gateway}/saml/metadata", timeout=10).text
        with serving(TestSp(tmp_path_factory.mktemp("sp"), idp_metadata=idp_metadata)) as sp:
            register(services, sp, launch_url=f"{sp.base}/login", attributes=ALL_ATTRIBUTES)
            yield World(gateway, services, sp)


@functools.cache
def _idp_pems() -> tuple[str, str]:
    return signing._new("govgate SAML IdP test", utcnow)


def seed_signing_key(services: Services) -> None:
    """The IdP's signing key made once per test run (an RSA 3072 key takes up to
    seconds to make); ``gateway.idp.saml.signing.active_key`` stores it as its own."""
    cert, key = _idp_pems()
    with services.engine.begin() as conn:
        conn.execute(signing_keys.insert().values(
            kid=signing.FIRST_KID, cert_pem=cert, status="active", created_at=utcnow(),
            key_sealed=services.keys.seal(key.encode(), signing.seal_context(signing.FIRST_KID))))
