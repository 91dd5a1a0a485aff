"""The admin consoles' test world: the demo organisation, its three admins (signed in
with a new password), and a second level of departments with their own admins, so
that the department-scope rule has something to cut:

    platform (local, top)          sysadmin, secadmin, auditor       province level
    jgswj (gx, top)                                                   province level
    └── jgswj-it                   sys.it                             this one only
    nn-jgsw (gx-nn, a city)        sys.nn, sec.nn, aud.nn             nn-jgsw and nn-fleet
    └── nn-fleet                   nn.driver (staff)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.app import create_app
from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.org import Org
from gateway.services import Services
from gateway.settings import Settings
from tests.oauth2.helpers import DEMO_PASSWORD, close_services, csrf_of, make_services
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - a fixture
from tests.tokens import access_token
from tests.wiring import apply_state, parts

NEW_PASSWORD = "Brand-New-Passw0rd-2026!"
DEPARTMENT_ADMINS = {"sys.nn": "sysadmin", "sec.nn": "secadmin", "aud.nn": "auditor",
                     "sys.it": "sysadmin"}
NAMES = {"sys.nn": "市系统管理员", "sec.nn": "市安全管理员", "aud.nn": "市审计管理员",
         "sys.it": "信息中心系统管理员"}
WORLD: dict[str, Any] = {
    "departments": [
        {"code": "jgswj-it", "name": "信息中心", "region": "gx", "parent": "jgswj"},
        {"code": "nn-fleet", "name": "市公务车队", "region": "gx-nn", "parent": "nn-jgsw"},
    ],
    "users": [
        *({"username": u, "name": NAMES[u], "roles": [r], "password": DEMO_PASSWORD,
           "must_change": False, "department": "jgswj-it" if u == "sys.it" else "nn-jgsw"}
          for u, r in DEPARTMENT_ADMINS.items()),
        {"username": "nn.driver", "name": "车队司机", "department": "nn-fleet",
         "roles": ["staff"], "password": DEMO_PASSWORD, "must_change": False},
    ],
}
# who is who: username → (department, roles)
PEOPLE: dict[str, tuple[str, list[str]]] = {
    "sysadmin": ("platform", ["sysadmin"]), "secadmin": ("platform", ["secadmin"]),
    "auditor": ("platform", ["auditor"]), "li.si": ("jgswj", ["staff"]),
    "zhang.san": ("jgswj", ["staff", "data_steward"]),
    "sys.nn": ("nn-jgsw", ["sysadmin"]), "sec.nn": ("nn-jgsw", ["secadmin"]),
    "aud.nn": ("nn-jgsw", ["auditor"]), "sys.it": ("jgswj-it", ["sysadmin"]),
    "nn.driver": ("nn-fleet", ["staff"]),
}


def make_world(settings: Settings) -> Services:
    services = make_services(settings)
    apply_state(services, WORLD)
    # their first sign-in's change, before the test: not among the actions it watches
    # (a person's own change is an admin_change of theirs, which the auditor's activity
    # view lists)
    quiet = Org(services.engine, clock=services.clock, on_change=lambda *_: None)
    for admin in ("sysadmin", "secadmin", "auditor"):
        quiet.change_password(admin, NEW_PASSWORD)
    return services


@pytest.fixture
def world(settings: Settings, fast_hashes: None  # noqa: F811
          ) -> Iterator[tuple[Services, TestClient]]:
    services = make_world(settings)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        yield services, c
    close_services(services)


def as_session(services: Services, client: TestClient, username: str) -> None:
    """``client`` signed in to the portal as ``username`` (a full session)."""
    token, _ = parts(services).provider.store.create_session(
        username, "active", amr="pwd otp", absolute_seconds=3600)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, token)


def bearer(services: Services, username: str, scope: str = "openid admin") -> dict[str, str]:
    department, roles = PEOPLE[username]
    return {"Authorization": "Bearer " + access_token(
        services, sub=username, department=department, roles=roles, scope=scope)}


def csrf(client: TestClient) -> str:
    """A CSRF token of the portal (any page that renders sets the cookie)."""
    page = client.get("/portal/login")
    return csrf_of(page.text)
from tests.browser import browser  # noqa: F401, E402 - one Chromium per module
