"""Odd input at the consoles, as a stranger sends it (the attack of 2026-12-05,
docs/seams.md): each was a 500 before its fix."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.testclient import TestClient

from audit import AuditRecord
from audit.tables import records
from gateway.services import Services
from gateway.tables import systems
from tests.admin.conftest import as_session, bearer


def test_the_activity_page_takes_the_last_day_there_is(
        world: tuple[Services, TestClient]) -> None:
    """``until`` a day means up to the end of that day: the day after 9999-12-31 is
    past what a date holds (OverflowError, a 500). It is the page with the filter
    kept, like any other day; a day that does not exist is the API's 400, as a page."""
    services, client = world
    as_session(services, client, "auditor")
    page = client.get("/portal/admin/activity", params={"until": "9999-12-31"})
    assert page.status_code == 200, page.text[:300]
    assert 'value="9999-12-31"' in page.text
    bad = client.get("/portal/admin/activity", params={"until": "2026-02-30"})
    assert bad.status_code == 400 and "until" in bad.text


def test_an_ungoverned_mark_onto_another_departments_system_is_its_admins(
        world: tuple[Services, TestClient]) -> None:
    """A city's security administrator marked a line of their own department onto
    vehicles (机关事务管理局's system, which publishes JG-0001) ``ungoverned`` and so
    opened its routes outside the catalogue (``/api/vehicles/{plate}``, the whole
    record) to their staff, without 机关事务管理局 having a say. The mark is refused
    (403, audited) unless the admin's scope covers the system's department."""
    services, client = world
    line = {"subject": "dept:nn-jgsw", "department": "nn-jgsw", "object": "/s/vehicles/*",
            "action": "GET", "ungoverned": "车辆在线状态，不含个人信息"}
    r = client.post("/api/v1/admin/policies", headers=bearer(services, "sec.nn"), json=line)
    assert r.status_code == 403, r.text
    assert "jgswj" in r.json()["detail"]
    with services.engine.connect() as conn:
        refused = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "admin_change", records.c.outcome == "deny",
            records.c.actor_user == "sec.nn")).all()
    assert len(refused) == 1
    test = client.get("/api/v1/admin/policies/test", headers=bearer(services, "secadmin"),
                      params={"subject": "dept:nn-jgsw", "system": "vehicles",
                              "path": "/api/vehicles/桂A12345", "method": "GET"})
    assert test.json()["decision"]["allowed"] is False
    # the province's security administrator may (docs/proxy.md)
    r = client.post("/api/v1/admin/policies", headers=bearer(services, "secadmin"), json=line)
    assert r.status_code == 201, r.text


def test_a_departments_auditor_reads_its_departments_records_only(
        world: tuple[Services, TestClient]) -> None:
    """The audit log was not cut by department: a city's audit administrator read every
    department's records (who called which system, the items released) and every
    department's real use. Department scope (docs/admin-consoles.md) holds there too:
    a department's auditor reads the records of its departments (the actor's) and of
    its departments' systems; verify, checkpoints and the log's figures, which cover
    every department, are the province-level auditor's; another department's record
    by its number is not found."""
    services, client = world
    with services.engine.begin() as conn:
        conn.execute(sa.insert(systems), [{
            "code": "nn-cars", "name": "市车辆", "department_code": "nn-fleet",
            "upstream": "http://127.0.0.1:9"}])
    for d, sys_, rid in (("nn-fleet", None, "r-nn-own"), ("jgswj", "nn-cars", "r-nn-system"),
                         ("jgswj", "vehicles", "r-province")):
        services.audit.append_sync(AuditRecord(
            event_type="proxy_request", outcome="allow", department=d, system=sys_,
            actor_user="li.si", request_id=rid))
    services.settle_audit()
    with services.engine.connect() as conn:
        ids = dict(conn.execute(sa.select(records.c.request_id, records.c.id).where(
            records.c.request_id.in_(["r-nn-own", "r-province"]))).all())
    scope = "openid audit:read stats:read"
    city, province = bearer(services, "aud.nn", scope), bearer(services, "auditor", scope)

    def seen(headers: dict[str, str]) -> set[str]:
        r = client.get("/api/v1/audit/records", headers=headers, params={"limit": 1000})
        assert r.status_code == 200, r.text
        return {x["request_id"] for x in r.json()["records"]}
    assert {"r-nn-own", "r-nn-system"} <= seen(city) and "r-province" not in seen(city)
    assert {"r-nn-own", "r-nn-system", "r-province"} <= seen(province)
    for rec in client.get("/api/v1/audit/records", headers=city,
                          params={"limit": 1000}).json()["records"]:
        assert rec["department"] in ("nn-jgsw", "nn-fleet") or rec["system"] == "nn-cars", rec
    exported = client.get("/api/v1/audit/export", headers=city, params={"format": "jsonl"})
    assert exported.status_code == 200 and "r-province" not in exported.text
    assert "r-nn-own" in exported.text
    assert client.get(f"/api/v1/audit/records/{ids['r-nn-own']}", headers=city).status_code == 200
    assert client.get(f"/api/v1/audit/records/{ids['r-province']}", headers=city).status_code == 404
    for path in ("/api/v1/audit/verify", "/api/v1/audit/checkpoints", "/api/v1/audit/stats"):
        assert client.get(path, headers=city).status_code == 403, path
        assert client.get(path, headers=province).status_code == 200, path
    assert client.get("/api/v1/stats/departments/jgswj", headers=city).status_code == 403
    assert client.get("/api/v1/stats/departments/nn-jgsw", headers=city).status_code == 200
    assert client.get("/api/v1/stats/departments/jgswj", headers=province).status_code == 200
    as_session(services, client, "aud.nn")
    page = client.get("/portal/audit", params={"limit": "100"})
    assert page.status_code == 200
    assert f'/portal/audit/records/{ids["r-nn-own"]}"' in page.text
    assert f'/portal/audit/records/{ids["r-province"]}"' not in page.text
    assert client.get(f"/portal/audit/records/{ids['r-province']}").status_code == 404
    assert client.get("/portal/audit/verify").status_code == 403
    assert client.get("/portal/admin/activity").status_code == 200
    with services.engine.connect() as conn:
        refused = conn.execute(sa.select(records.c.reason).where(
            records.c.actor_user == "aud.nn", records.c.outcome == "deny")).scalars().all()
    assert len([r for r in refused if "province-level" in r]) == 4, refused  # 3 API, 1 page


def test_a_refusal_does_not_say_where_another_departments_object_is(
        world: tuple[Services, TestClient]) -> None:
    """A city's admin asking for another department's user, system or client, or
    testing another department's caller, was told that department's code ("department
    'jgswj' is not 'nn-jgsw' ..."): whose a username is, for the asking. Still 403 and
    audited (the record keeps the department for the auditor), without the code."""
    services, client = world
    sys_nn, sec_nn = bearer(services, "sys.nn"), bearer(services, "sec.nn")
    for headers, method, path, params in (
            (sys_nn, "POST", "/users/li.si/disable", None),
            (sys_nn, "GET", "/systems/vehicles", None),
            (sys_nn, "GET", "/clients/finance-system", None),
            (sec_nn, "GET", "/policies/test", {"subject": "user:li.si", "system": "vehicles",
                                               "path": "/", "method": "GET"})):
        r = client.request(method, "/api/v1/admin" + path, headers=headers, params=params,
                           json={} if method == "POST" else None)
        assert r.status_code == 403, (path, r.text)
        detail = r.json()["detail"]
        assert "jgswj" not in detail and "czt" not in detail, (path, detail)
        assert "nn-jgsw" in detail, detail
    with services.engine.connect() as conn:
        kept = conn.execute(sa.select(records.c.extra).where(
            records.c.actor_user == "sys.nn", records.c.outcome == "deny")).scalars().all()
    assert any('"department":"jgswj"' in k.replace(' ', '') for k in kept), kept


def test_a_name_with_a_newline_after_it_is_not_a_name(
        world: tuple[Services, TestClient]) -> None:
    """The name rules were ``^...$`` patterns used with ``match``, and ``$`` matches
    before a final newline: ``user:li.si\\n`` passed as a policy subject and was stored
    with its newline (a second spelling of a name, never matched by the real one; the
    other names here were refused by the API's own checks). Each is a 400."""
    services, client = world
    sys_nn, sec_nn = bearer(services, "sys.nn"), bearer(services, "sec.nn")
    for headers, path, body in (
            (sys_nn, "/users", {"username": "nn.new\n", "name": "新司机",
                                "department": "nn-fleet"}),
            (sys_nn, "/departments", {"code": "nn-office\n", "name": "市办公室",
                                      "parent": "nn-jgsw"}),
            (sys_nn, "/systems", {"code": "nn-cars\n", "name": "市公车系统",
                                  "department": "nn-jgsw", "upstream": "http://127.0.0.1:9"}),
            (sec_nn, "/policies", {"subject": "user:li.si\n", "department": "nn-jgsw",
                                   "object": "/s/nn-cars/*", "action": "GET"}),
            (sec_nn, "/policies", {"subject": "role:staff", "department": "nn-jgsw\n",
                                   "object": "/s/nn-cars/*", "action": "GET"})):
        r = client.post("/api/v1/admin" + path, headers=headers, json=body)
        assert r.status_code == 400, (path, body, r.status_code, r.text)
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(systems).where(
            systems.c.code.like("nn-cars%"))).scalar() == 0


def test_break_glass_is_decided_within_the_administrators_departments(
        world: tuple[Services, TestClient]) -> None:
    """A city's security administrator approved and ended a province department's
    user's break-glass onto the province's system, and saw every break-glass; the
    city's auditor reviewed them all. Now the system's department decides (its
    administrators, or the province's): others are refused (403, audited), and lists,
    the single view and the review queue show an administrator their departments' only
    (the system's or the requester's)."""
    services, client = world
    # the test reads the English of the refusals
    li, sec_nn, aud_nn = ({**bearer(services, u), "Accept-Language": "en"}
                          for u in ("li.si", "sec.nn", "aud.nn"))
    r = client.post("/api/v1/break-glass", headers=li, json={
        "system": "vehicles", "reason": "机房故障，需紧急处理", "minutes": 60})
    assert r.status_code == 201, r.text
    bg = r.json()["break_glass"]["id"]
    r = client.post(f"/api/v1/break-glass/{bg}/approve", headers=sec_nn)
    assert r.status_code == 403 and "outside your departments" in r.json()["detail"], r.text
    r = client.post(f"/api/v1/break-glass/{bg}/end", headers=sec_nn, json={"reason": "不需要"})
    assert r.status_code == 403, r.text
    listed = client.get("/api/v1/break-glass", headers=sec_nn).json()["break_glass"]
    assert bg not in {b["id"] for b in listed}
    assert client.get(f"/api/v1/break-glass/{bg}", headers=sec_nn).status_code == 404
    assert client.get("/api/v1/break-glass/review", headers=aud_nn).json() == {"queue": []}
    secadmin = bearer(services, "secadmin")
    assert bg in {b["id"] for b in client.get(
        "/api/v1/break-glass", headers=secadmin).json()["break_glass"]}
    r = client.post(f"/api/v1/break-glass/{bg}/approve", headers=secadmin)
    assert r.status_code == 200 and r.json()["break_glass"]["state"] == "pending", r.text
    with services.engine.connect() as conn:
        refused = conn.execute(sa.select(records.c.reason).where(
            records.c.event_type == "break_glass", records.c.outcome == "deny",
            records.c.actor_user == "sec.nn")).scalars().all()
    assert sorted(refused) == ["break_glass_approved", "break_glass_ended", "break_glass_read"]
    # the city's own system: the city's security administrator decides
    with services.engine.begin() as conn:
        conn.execute(sa.insert(systems), [{
            "code": "nn-cars", "name": "市车辆", "department_code": "nn-fleet",
            "upstream": "http://127.0.0.1:9"}])
    r = client.post("/api/v1/break-glass", headers=bearer(services, "nn.driver"), json={
        "system": "nn-cars", "reason": "车辆调度系统故障", "minutes": 60})
    assert r.status_code == 201, r.text
    city_bg = r.json()["break_glass"]["id"]
    assert client.post(f"/api/v1/break-glass/{city_bg}/approve",
                       headers=sec_nn).status_code == 200
    assert city_bg in {b["id"] for b in client.get(
        "/api/v1/break-glass", headers=sec_nn).json()["break_glass"]}
    # the portal's list for the city's security administrator: the same cut
    as_session(services, client, "sec.nn")
    page = client.get("/portal/break-glass")
    assert page.status_code == 200 and city_bg in page.text and bg not in page.text
