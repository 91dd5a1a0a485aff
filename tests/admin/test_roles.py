"""三员分立 at every console: each admin role reaches its own pages and API endpoints
and is refused (403, audited) on the other two consoles'; a business user is refused
on all of them; a system's token, a token without the ``admin`` scope and no
credential at all are refused too. Table-driven: role × endpoint → status, on the API
(bearer token and portal session) and on the pages."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from gateway.services import Services
from tests.admin.conftest import as_session, bearer, csrf
from tests.tokens import access_token

SYS, SEC, AUD = "sysadmin", "secadmin", "auditor"

# (method, path, JSON body, the console's role, what its own admin gets)
API: list[tuple[str, str, dict[str, Any] | None, str, int]] = [
    ("GET", "/users", None, SYS, 200),
    ("POST", "/users", {}, SYS, 400),
    ("POST", "/users/li.si/unlock", None, SYS, 200),
    ("GET", "/departments", None, SYS, 200),
    ("POST", "/departments", {}, SYS, 400),
    ("POST", "/departments/czt/rename", {"name": "财政厅"}, SYS, 200),
    ("GET", "/systems", None, SYS, 200),
    ("GET", "/systems/assets", None, SYS, 200),
    ("POST", "/systems", {}, SYS, 400),
    ("POST", "/systems/assets", {"name": "资产管理系统"}, SYS, 200),
    ("GET", "/clients", None, SYS, 200),
    ("GET", "/clients/office-web", None, SYS, 200),
    ("POST", "/clients", {}, SYS, 400),
    ("POST", "/clients/office-web", {"name": "办公用房管理系统"}, SYS, 200),
    ("POST", "/clients/office-web/enable", None, SYS, 200),
    ("GET", "/policies", None, SEC, 200),
    ("POST", "/policies", {}, SEC, 400),
    ("POST", "/policies/999/remove", None, SEC, 404),
    ("GET", "/policies/test?subject=role:staff&department=czt&system=assets&path=/&method=GET",
     None, SEC, 200),
    ("GET", "/grants", None, SEC, 200),
    ("POST", "/grants/1/revoke", {}, SEC, 400),
    ("GET", "/keys", None, SEC, 200),
    ("POST", "/keys/rotate", {"uses": ["nope"]}, SEC, 400),
    ("GET", "/security-policy", None, SEC, 200),
    ("GET", "/activity", None, AUD, 200),
]
PAGES: list[tuple[str, str, str, int]] = [
    ("GET", "/users", SYS, 200), ("POST", "/users", SYS, 400),
    ("POST", "/users/li.si/unlock", SYS, 303),
    ("GET", "/departments", SYS, 200), ("POST", "/departments/czt/rename", SYS, 400),
    ("GET", "/systems", SYS, 200), ("GET", "/systems/assets", SYS, 200),
    ("POST", "/systems", SYS, 400),
    ("GET", "/clients", SYS, 200), ("GET", "/clients/office-web", SYS, 200),
    ("POST", "/clients/office-web/enable", SYS, 303),
    ("GET", "/policies", SEC, 200), ("POST", "/policies", SEC, 400),
    ("POST", "/policies/999/remove", SEC, 404),
    ("GET", "/grants", SEC, 200), ("POST", "/grants/1/revoke", SEC, 400),
    ("GET", "/keys", SEC, 200), ("GET", "/security", SEC, 200),
    ("GET", "/activity", AUD, 200),
]
# username → the console role they hold (None: a business user)
WHO = {"sysadmin": SYS, "secadmin": SEC, "auditor": AUD, "li.si": None, "zhang.san": None}


def refusals(services: Services) -> int:
    with services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(records).where(
            records.c.event_type == "admin_change", records.c.outcome == "deny")).scalar())


@pytest.mark.parametrize("via", ["bearer", "session"])
def test_api_role_by_endpoint(world: tuple[Services, TestClient], via: str) -> None:
    services, client = world
    wrong: list[str] = []
    refused = 0
    for username, role in WHO.items():
        if via == "bearer":
            client.cookies.clear()
            headers = bearer(services, username)
        else:
            as_session(services, client, username)
            headers = {}
        for method, path, body, owner, ok in API:
            expected = ok if role == owner else 403
            r = client.request(method, "/api/v1/admin" + path, headers=headers,
                               json=(body or {}) if method == "POST" else None)
            if r.status_code != expected:
                wrong.append(f"{username} {method} {path}: {r.status_code} {r.text[:160]}")
            elif expected == 403:
                refused += 1
                assert r.headers["content-type"] == "application/problem+json"
                assert "三员分立" in r.json()["detail"]
    assert not wrong, "\n".join(wrong)
    assert refused == sum(1 for role in WHO.values() for e in API if e[3] != role)
    assert refusals(services) == refused  # every one of them audited


def test_pages_role_by_page(world: tuple[Services, TestClient]) -> None:
    services, client = world
    wrong: list[str] = []
    refused = 0
    for username, role in WHO.items():
        as_session(services, client, username)
        token = csrf(client)
        for method, path, owner, ok in PAGES:
            expected = ok if role == owner else 403
            r = client.request(method, "/portal/admin" + path, follow_redirects=False,
                               data={"csrf_token": token} if method == "POST" else None)
            if r.status_code != expected:
                wrong.append(f"{username} {method} {path}: {r.status_code} {r.text[:300]}")
            elif expected == 403:
                refused += 1
                assert 'id="title"' in r.text and "三员分立" in r.text
            assert r.headers["x-frame-options"] == "DENY"
        index = client.get("/portal/admin", follow_redirects=False)
        if role is None:
            refused += 1
            assert index.status_code == 403 and "三员分立" in index.text
        else:
            assert index.status_code == 303
            first = {SYS: "users", SEC: "policies", AUD: "activity"}[role]
            assert index.headers["location"] == f"/portal/admin/{first}"
    assert not wrong, "\n".join(wrong)
    assert refusals(services) == refused


def test_who_is_refused_before_any_console(world: tuple[Services, TestClient]) -> None:
    """No credential: 401 (a page: the sign-in). A system's token, or a person's token
    without the admin scope: 403, audited with who asked."""
    services, client = world
    assert client.get("/api/v1/admin/users").status_code == 401
    r = client.get("/portal/admin/users", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/portal/login?next=")
    system = access_token(services, sub=None, department="czt", client_id="finance-system",
                          scope="proxy admin")
    r = client.get("/api/v1/admin/users", headers={"Authorization": f"Bearer {system}",
                                                   "Accept-Language": "en"})
    assert r.status_code == 403 and "person" in r.json()["detail"]
    r = client.get("/api/v1/admin/users", headers=bearer(services, "sysadmin", "openid proxy"))
    assert r.status_code == 403 and r.json()["type"] == "urn:govgate:error:insufficient_scope"
    assert 'scope="admin"' in r.headers["www-authenticate"]
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(records.c.actor_user, records.c.actor_client,
                                      records.c.reason)
                            .where(records.c.event_type == "admin_change",
                                   records.c.outcome == "deny")
                            .order_by(records.c.id)).all()
    assert [(r.actor_user, r.actor_client) for r in rows] == [
        (None, "finance-system"), ("sysadmin", "office-web")]
    assert "scope admin" in rows[1].reason
