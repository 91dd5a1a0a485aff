"""Department scope: an admin of a department sees and manages that department and
those below it; a province-level admin (a top department of a top region) sees all.
Table-driven over the API (the pages call the same operations; one page check at the
end)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from gateway.department_scope import department_scope
from gateway.services import Services
from gateway.tables import users
from tests.admin.conftest import as_session, bearer
from tests.oauth2.helpers import consented

ALL_DEPARTMENTS = {"platform", "jgswj", "jgswj-it", "czt", "nn-jgsw", "nn-fleet"}


@pytest.mark.parametrize(("department", "province", "covered"), [
    ("platform", True, ALL_DEPARTMENTS),
    ("jgswj", True, ALL_DEPARTMENTS),       # a top department of the top region
    ("jgswj-it", False, {"jgswj-it"}),      # below another department
    ("nn-jgsw", False, {"nn-jgsw", "nn-fleet"}),  # a city's (its region has a parent)
    ("nn-fleet", False, {"nn-fleet"}),
])
def test_who_is_province_level(world: tuple[Services, TestClient], department: str,
                               province: bool, covered: set[str]) -> None:
    services, _ = world
    scope = department_scope(services.engine, department)
    assert scope.province is province
    assert {d for d in ALL_DEPARTMENTS if scope.covers(d)} == covered


def _listed(client: TestClient, headers: dict[str, str], what: str, key: str) -> set[str]:
    r = client.get(f"/api/v1/admin/{what}", headers=headers)
    assert r.status_code == 200, r.text
    return {row[key] for row in r.json()[what]}


def test_lists_are_cut_to_the_admins_departments(world: tuple[Services, TestClient]) -> None:
    services, client = world
    nn, it, top = (bearer(services, u) for u in ("sys.nn", "sys.it", "sysadmin"))
    assert _listed(client, nn, "departments", "code") == {"nn-jgsw", "nn-fleet"}
    assert _listed(client, it, "departments", "code") == {"jgswj-it"}
    assert _listed(client, top, "departments", "code") == ALL_DEPARTMENTS
    assert _listed(client, nn, "users", "username") == {"sys.nn", "sec.nn", "aud.nn",
                                                        "nn.driver", "wang.wu"}
    assert "li.si" in _listed(client, top, "users", "username")
    assert _listed(client, nn, "systems", "code") == set()
    assert _listed(client, top, "systems", "code") == {"vehicles", "offices", "assets"}
    assert _listed(client, nn, "clients", "client_id") == set()
    sec_nn, sec = bearer(services, "sec.nn"), bearer(services, "secadmin")
    assert _listed(client, sec_nn, "grants", "id") == set()  # czt's grant from jgswj
    assert _listed(client, sec, "grants", "id") == {1}


# (admin, method, path, body, status): what a department's admin may and may not do
CASES: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("sys.nn", "POST", "/users", {"username": "nn.new", "name": "新司机",
                                  "department": "nn-fleet"}, 201),
    ("sys.nn", "POST", "/users", {"username": "cz.new", "name": "某人",
                                  "department": "czt"}, 403),
    ("sys.nn", "POST", "/users/nn.driver/reset-password", {}, 200),
    ("sys.nn", "POST", "/users/li.si/disable", {}, 403),
    ("sys.nn", "POST", "/departments", {"code": "nn-office", "name": "市办公室",
                                        "parent": "nn-jgsw"}, 201),
    ("sys.nn", "POST", "/departments", {"code": "cz-sub", "name": "某处",
                                        "parent": "czt"}, 403),
    ("sys.nn", "POST", "/departments", {"code": "nn-top", "name": "某局",
                                        "region": "gx-nn"}, 403),
    ("sys.nn", "POST", "/departments/nn-fleet/rename", {"name": "市公务用车队"}, 200),
    ("sys.nn", "POST", "/departments/czt/rename", {"name": "某厅"}, 403),
    ("sys.nn", "POST", "/departments/nn-fleet/move", {"parent": None}, 403),
    ("sys.nn", "POST", "/departments/nn-jgsw/move", {"parent": "nn-fleet"}, 400),  # a cycle
    ("sys.nn", "POST", "/systems", {"code": "nn-cars", "name": "市公车系统",
                                    "department": "nn-jgsw",
                                    "upstream": "http://127.0.0.1:9301"}, 201),
    ("sys.nn", "POST", "/systems/assets", {"upstream": "http://127.0.0.1:9999"}, 403),
    ("sys.nn", "POST", "/systems/nn-cars", {"department": "czt"}, 403),
    # another department's upstream (vehicles': jgswj's, http://127.0.0.1:9101), under
    # any spelling that connects there: the gateway would carry nn-jgsw's callers to
    # it past jgswj's policy lines and catalogue (a system trusting the gateway's plain
    # headers, or only its network, answers them)
    *(("sys.nn", "POST", "/systems", {"code": f"nn-copy{i}", "name": "复制",
                                      "department": "nn-jgsw", "upstream": up}, 403)
      for i, up in enumerate(("http://127.0.0.1:9101", "http://localhost:9101/api",
                              "http://2130706433:9101", "http://127.0.0.2:9101",
                              "http://[::ffff:127.0.0.1]:9101", "http://0.0.0.0:9101"))),
    ("sys.nn", "POST", "/systems/nn-cars", {"upstream": "http://127.0.0.1:9103/x"}, 403),
    ("sys.nn", "POST", "/systems/nn-cars", {"upstream": "http://127.0.0.1:9302"}, 200),
    ("sys.nn", "POST", "/systems", {"code": "nn-cars2", "name": "市公车系统二",
                                    "department": "nn-fleet",  # its own department's
                                    "upstream": "http://localhost:9302"}, 201),
    ("sys.nn", "POST", "/clients", {"client_id": "nn-app", "name": "市应用",
                                    "department": "nn-jgsw",
                                    "grant_types": ["client_credentials"]}, 201),
    ("sys.nn", "POST", "/clients/office-web/disable", {}, 403),
    ("sys.it", "POST", "/users", {"username": "it.new", "name": "某人",
                                  "department": "jgswj"}, 403),  # the parent: not below
    ("sys.it", "POST", "/departments/jgswj-it/rename", {"name": "信息化处"}, 200),
    ("sysadmin", "POST", "/departments/nn-fleet/move", {"parent": None}, 200),
    ("sysadmin", "POST", "/departments", {"code": "fgw", "name": "发展改革委",
                                          "region": "gx"}, 201),
    ("sysadmin", "POST", "/departments", {"code": "no-region", "name": "某委"}, 400),
    ("sysadmin", "POST", "/users/li.si/disable", {}, 200),
    ("sec.nn", "POST", "/policies", {"subject": "role:staff", "department": "nn-jgsw",
                                     "object": "/s/nn-cars/*", "action": "GET"}, 201),
    ("sec.nn", "POST", "/policies", {"subject": "role:staff", "department": "czt",
                                     "object": "/s/assets/*", "action": "GET"}, 403),
    ("sec.nn", "POST", "/policies", {"subject": "role:staff", "department": "*",
                                     "object": "/s/nn-cars/*", "action": "GET"}, 403),
    ("sec.nn", "POST", "/grants/1/revoke", {"reason": "不再需要"}, 403),
    ("sec.nn", "POST", "/keys/rotate", {}, 403),
    ("secadmin", "POST", "/keys/rotate", {"uses": ["assertion"]}, 200),
]


def test_department_admins_manage_their_departments_only(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    wrong = []
    for admin, method, path, body, expected in CASES:
        r = client.request(method, "/api/v1/admin" + path, headers=bearer(services, admin),
                           json=body)
        if r.status_code != expected:
            wrong.append(f"{admin} {method} {path} {body}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong)
    # what a city's security admin sees of the lines: their own and every department's
    r = client.get("/api/v1/admin/policies", headers=bearer(services, "sec.nn"))
    assert {line["department"] for line in r.json()["lines"]} <= {"nn-jgsw", "nn-fleet", "*"}
    # the decision test of another department's caller is refused
    r = client.get("/api/v1/admin/policies/test", headers=bearer(services, "sec.nn"),
                   params={"subject": "user:li.si", "system": "offices", "path": "/",
                           "method": "GET"})
    assert r.status_code == 403


def test_a_city_auditor_sees_the_city_admins_only(world: tuple[Services, TestClient]) -> None:
    services, client = world
    client.post("/api/v1/admin/users/nn.driver/unlock", headers=bearer(services, "sys.nn"))
    client.post("/api/v1/admin/users/li.si/unlock", headers=bearer(services, "sysadmin"))
    seen = client.get("/api/v1/admin/activity", headers=bearer(services, "aud.nn")).json()
    assert {r["actor_user"] for r in seen["records"]} == {"sys.nn"}
    seen = client.get("/api/v1/admin/activity", headers=bearer(services, "auditor")).json()
    assert {r["actor_user"] for r in seen["records"]} == {"sys.nn", "sysadmin"}


def test_pages_follow_the_same_scope(world: tuple[Services, TestClient]) -> None:
    services, client = world
    as_session(services, client, "sys.nn")
    page = client.get("/portal/admin/users").text
    assert 'data-user="nn.driver"' in page and 'data-user="li.si"' not in page
    assert "本部门及下级部门" in page
    page = client.get("/portal/admin/departments").text
    assert 'data-department="nn-fleet"' in page and 'data-department="czt"' not in page
    r = client.get("/portal/admin/systems/assets")
    assert r.status_code == 403 and "部门管理员只能管理本部门" in r.text


def test_a_department_admins_client_does_not_act_for_people_beyond_its_department(
        world: tuple[Services, TestClient]) -> None:
    """There is no consent screen (clients are first-party systems) and the scope is
    the client's registration, which a department's system administrator sets. sys.nn
    registered nn-jgsw's client for ``admin audit:read ...``; the province system
    administrator, signed in to the portal, opened one link to its authorization
    request, and nn-jgsw's system had a token acting for them at the admin API: it
    disabled li.si of jgswj (200), outside nn-jgsw's reach. The API scopes (the gateway
    acting as the person) now hold only for people of the departments the client's
    department reaches; the proxy's own rule for a user through another department's
    client is unchanged (docs/proxy.md)."""
    services, client = world
    apis = "admin audit:read account catalogue:read catalogue:write stats:read"
    r = client.post("/api/v1/admin/clients", headers=bearer(services, "sys.nn"), json={
        "client_id": "nn-app2", "name": "市应用二", "department": "nn-jgsw",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.nn.example/cb"], "scope": "openid " + apis})
    assert r.status_code == 201, r.text
    secret = r.json()["client_secret"]

    def signed_in_through(username: str) -> dict[str, str]:
        # the person says yes on the consent page (or was led to): the scopes that act
        # as them are stripped whatever they answer
        consented(services, username, "nn-app2")
        as_session(services, client, username)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        r = client.get("/oauth2/authorize", follow_redirects=False, params={
            "client_id": "nn-app2", "response_type": "code", "state": "s",
            "redirect_uri": "https://app.nn.example/cb", "scope": "openid " + apis,
            "code_challenge": challenge, "code_challenge_method": "S256"})
        code = parse_qs(urlparse(r.headers["location"]).query)["code"][0]
        client.cookies.clear()
        r = client.post("/oauth2/token", auth=("nn-app2", secret), data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": "https://app.nn.example/cb", "code_verifier": verifier})
        assert r.status_code == 200, r.text
        return {"Authorization": "Bearer " + r.json()["access_token"]}

    province = signed_in_through("sysadmin")
    r = client.post("/api/v1/admin/users/li.si/disable", headers=province, json={})
    assert r.status_code == 403, r.text
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert client.get("/api/v1/admin/users", headers=province).status_code == 403
    assert client.get("/api/v1/account", headers=province).status_code == 403
    assert services.engine.connect().execute(sa.select(users.c.status).where(
        users.c.username == "li.si")).scalar() == "active"
    auditor = signed_in_through("auditor")  # the province's audit administrator
    assert client.get("/api/v1/audit/records", headers=auditor).status_code == 403
    assert client.get("/api/v1/stats/overview", headers=auditor).status_code == 403
    # jgswj's data steward: the published catalogue and what the proxy would release
    # to nn-jgsw's system for them, never jgswj's applications and grants
    steward = signed_in_through("zhang.san")
    for path in ("/catalogue/inbox", "/catalogue/applications", "/catalogue/applications/1",
                 "/catalogue/applications/overdue", "/catalogue/grants",
                 "/catalogue/grants/provided"):
        r = client.get("/api/v1" + path, headers={**steward, "Accept-Language": "en"})
        assert r.status_code == 403, (path, r.text)
        assert "does not read your department's applications" in r.json()["detail"]
    assert client.get("/api/v1/catalogue/allowed", headers=steward).status_code == 200
    assert client.get("/api/v1/catalogue/resources", headers=steward).status_code == 200
    assert client.get("/api/v1/catalogue/inbox", headers=bearer(  # through its own
        services, "zhang.san", scope="openid catalogue:read")).status_code == 200
    # the department's own people, as before
    own = signed_in_through("sys.nn")
    r = client.post("/api/v1/admin/users/nn.driver/disable", headers=own, json={})
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/account", headers=own).status_code == 200
