from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.services import Services, open_services
from gateway.settings import Settings
from tests.conftest import UNKNOWN_PASSWORD, initialised
from tests.wiring import apply_state, parts

ORG = {
    "regions": [{"code": "gx", "name": "某省"}],
    "departments": [
        {"code": "jgswj", "name": "机关事务管理局", "region": "gx"},
        {"code": "czt", "name": "财政厅", "region": "gx"},
    ],
    "systems": [
        {"code": "assets", "name": "资产管理系统", "department": "jgswj",
         "upstream": "http://127.0.0.1:9"},
    ],
}


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    initialised(settings, UNKNOWN_PASSWORD)
    svc = open_services(settings)
    apply_state(svc, ORG)
    yield svc
    parts(svc).policies.close()
    svc.close()
