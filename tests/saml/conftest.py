"""A live gateway (the demo organisation) and a real pysaml2 SP registered with it as
the system ``archives``, both on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.live import live_gateway
from tests.saml.sp import TestSp, serving


@dataclass
class World:
    gateway: str
    services: Services
    sp: TestSp


def register(services: Services, sp: TestSp, code: str = "archives", **saml: Any) -> None:
    services.state_applier().apply({"systems": [{
        "code": code, "name": "档案管理系统", "department": "jgswj", "upstream": sp.base,
        "saml_sp": {"metadata": sp.metadata(), **saml}}]})


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    with live_gateway(settings) as (gateway, services):
        idp_metadata = httpx.get(f"{gateway}/saml/metadata", timeout=10).text
        with serving(TestSp(tmp_path, idp_metadata=idp_metadata)) as sp:
            register(services, sp)
            yield World(gateway, services, sp)
