"""Real use (实绩) as the gateway composes it: the demo's systems, resources and grant,
delivered calls written as the proxy writes them, exact figures; who sees which
departments; and the ``/api/v1/stats`` API's role boundaries (refusals audited)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from audit import AuditRecord
from catalogue.service import operator
from gateway.app import create_app
from gateway.services import Services
from gateway.settings import Settings
from gateway.web.real_use import (
    Department,
    Scope,
    overview,
    read_departments,
    read_sources,
    summary,
    viewer_scope,
)
from tests.oauth2.helpers import audit_events, close_services, make_services
from tests.tokens import access_token
from tests.wiring import parts


def delivered(user: str | None, department: str, system: str, resource: str | None,
              items: tuple[str, ...] = (), outcome: str = "allow",
              client: str | None = None) -> AuditRecord:
    return AuditRecord(event_type="proxy_request", outcome=outcome, actor_user=user,
                       actor_client=client, department=department, system=system,
                       resource=resource, items=items, status=200 if outcome == "allow" else 403)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = make_services(settings)
    services.audit.append_many_sync([
        delivered("zhao.min", "czt", "vehicles", "JG-0001", ("plate_number", "brand")),
        delivered("zhao.min", "czt", "vehicles", "JG-0001", ("plate_number", "brand")),
        delivered(None, "czt", "vehicles", "JG-0001", ("plate_number",),
                  client="finance-system"),
        delivered("li.si", "jgswj", "vehicles", "JG-0001", ("plate_number", "brand", "mileage_km")),
        delivered("wang.wu", "nn-jgsw", "offices", "JG-0002", ("room_id",)),
        delivered("wang.wu", "nn-jgsw", "vehicles", "JG-0001", outcome="deny"),
        delivered("li.si", "jgswj", "vehicles", None),  # the landing page: no resource
    ])
    yield services
    close_services(services)


def test_overview_counts_exactly_and_finds_idle_and_unused(services: Services) -> None:
    parts(services).catalogue.save(operator("test"), {
        "code": "CZ-0002", "name": "驾驶员补贴名册", "provider": "czt", "system": "assets",
        "share_type": "conditional", "conditions": "核算", "status": "published",
        "route": {"method": "GET", "path": "/api/cars", "records": "items"},
        "items": [{"name": "plate_number", "title": "车牌号", "level": 1}]})
    src = read_sources(parts(services), services.clock())
    o = overview(src, Scope(True), 30)
    systems = {t.code: t for t in o.systems}
    assert set(systems) == {"vehicles", "offices", "assets"}
    v = systems["vehicles"].use.total
    assert (v.calls, v.departments, v.users, v.items) == (5, 2, 2, 8)
    assert systems["vehicles"].use.days[-1].calls == 5 and len(o.window.labels()) == 30
    assert systems["assets"].use.total.calls == 0 and systems["assets"].last_ts is None
    resources = {t.code: t for t in o.resources}
    assert resources["JG-0001"].use.total.calls == 4
    assert resources["JG-0002"].use.total.users == 1
    assert {(t.kind, t.code) for t in o.idle} == {
        ("system", "assets"), ("resource", "CZ-0001"), ("resource", "CZ-0002")}
    (grant,) = o.grants  # czt's grant on JG-0001: 3 calls, just approved
    assert (grant.grant.resource, grant.grant.consumer, grant.provider) == (
        "JG-0001", "czt", "jgswj")
    assert (grant.use.calls, grant.use.status, grant.use.suggest_revoke) == (3, "rare", False)
    assert [(d.resource, d.item, d.source_resource) for d in o.duplicates] == [
        ("CZ-0002", "plate_number", "JG-0001")]
    assert [d.code for d in o.departments] == ["czt", "jgswj", "nn-jgsw", "platform"]


def test_scope_of_each_role() -> None:
    tree = {
        "prov": Department("prov", "省局", None, True),
        "city": Department("city", "市局", "prov", False),
        "street": Department("street", "街道", "city", False),
        "other": Department("other", "他市", None, False),  # no parent, city region
    }
    # a department's auditor: that department's part, like its other admins (it was
    # every department's until the attack of 2026-12-05, docs/seams.md)
    assert viewer_scope({"auditor"}, "street", tree) == Scope(False, frozenset({"street"}))
    assert viewer_scope({"auditor"}, "prov", tree) == Scope(True)
    assert viewer_scope({"sysadmin"}, "prov", tree) == Scope(True)
    assert viewer_scope({"secadmin"}, "city", tree) == Scope(False, frozenset({"city", "street"}))
    assert viewer_scope({"secadmin"}, "other", tree) == Scope(False, frozenset({"other"}))
    assert viewer_scope({"staff", "data_steward"}, "prov", tree) == Scope(
        False, frozenset({"prov", "city", "street"}))
    assert viewer_scope({"staff"}, "prov", tree) is None
    assert viewer_scope({"data_steward"}, "gone", tree) is None


def test_department_summary_and_a_steward_sees_their_own(services: Services) -> None:
    src = read_sources(parts(services), services.clock())
    departments = read_departments(services.engine)
    assert departments["platform"].top and departments["jgswj"].top
    assert not departments["nn-jgsw"].top  # its region has a parent
    czt = summary(src, "czt", 90)
    assert czt.consumed.total.calls == 3 and czt.provided.total.calls == 0
    assert [(t.code, t.use.total.calls, t.use.total.items) for t in czt.consumed_resources] == [
        ("JG-0001", 3, 5)]
    assert [t.code for t in czt.idle] == ["assets", "CZ-0001"]
    assert [g.grant.consumer for g in czt.grants] == ["czt"]
    jgswj = summary(src, "jgswj", 30)
    assert jgswj.provided.total.calls == 6 and jgswj.provided.total.departments == 3
    assert {t.code for t in jgswj.systems} == {"vehicles", "offices"}
    steward = viewer_scope({"staff", "data_steward"}, "czt", departments)
    assert steward is not None
    o = overview(src, steward, 30)
    assert [t.code for t in o.systems] == ["assets"] and [t.code for t in o.resources] == [
        "CZ-0001"]
    assert [g.grant.consumer for g in o.grants] == ["czt"]  # the grant it holds
    assert [d.code for d in o.departments] == ["czt"]


def test_stats_api_role_boundaries(services: Services) -> None:
    def bearer(sub: str, department: str, roles: list[str], scope: str = "openid stats:read"
               ) -> dict[str, str]:
        return {"Authorization": "Bearer " + access_token(
            services, sub=sub, department=department, roles=roles, scope=scope)}

    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as client:
        auditor = bearer("auditor", "platform", ["auditor"])
        r = client.get("/api/v1/stats/overview", params={"days": "90"}, headers=auditor)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["window"]["days"] == 90 and len(body["systems"]) == 3
        vehicles = next(s for s in body["systems"] if s["code"] == "vehicles")
        assert vehicles["total"] == {"calls": 5, "departments": 2, "users": 2, "items": 8,
                                     "unseen": 0, "acting": 0}
        assert sum(d["calls"] for d in vehicles["days"]) == 5
        assert {i["code"] for i in body["idle"]} == {"assets", "CZ-0001"}
        r = client.get("/api/v1/stats/departments/czt", headers=auditor)
        assert r.status_code == 200 and r.json()["consumed"]["total"]["calls"] == 3

        steward = bearer("zhao.min", "czt", ["staff", "data_steward"])
        r = client.get("/api/v1/stats/overview", headers=steward)
        assert [s["code"] for s in r.json()["systems"]] == ["assets"]
        r = client.get("/api/v1/stats/departments/jgswj", headers=steward)
        assert r.status_code == 403 and r.headers["content-type"].startswith(
            "application/problem+json")
        assert client.get("/api/v1/stats/departments/nope", headers=auditor).status_code == 404
        staff = bearer("li.si", "jgswj", ["staff"])
        assert client.get("/api/v1/stats/overview", headers=staff).status_code == 403
        no_scope = bearer("auditor", "platform", ["auditor"], scope="openid audit:read")
        r = client.get("/api/v1/stats/overview", headers=no_scope)
        assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
        for bad in ({"days": "7"}, {"days": "x"}, {"since": "2026-01-01"}):
            r = client.get("/api/v1/stats/overview", params=bad, headers=auditor)
            assert r.status_code == 400 and r.json()["field"] in ("days", "since")
        assert client.get("/api/v1/stats/overview").status_code == 401
    reads = [(e["actor_user"], e["outcome"], e["status"]) for e in
             audit_events(services, "stats_query")]
    assert reads == [("auditor", "success", 200), ("auditor", "success", 200),
                     ("zhao.min", "success", 200), ("zhao.min", "deny", 403),
                     ("auditor", "failure", 404), ("li.si", "deny", 403),
                     ("auditor", "deny", 403)]
    assert json.loads(audit_events(services, "stats_query")[3]["extra"])[
        "department_asked"] == "jgswj"
