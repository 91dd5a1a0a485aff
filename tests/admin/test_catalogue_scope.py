"""Department scope in the catalogue's API: a city's security admin (sec.nn, nn-jgsw)
reads and decides only its departments' applications and grants; the demo's grant 1
(jgswj's, on a province resource) is neither listed nor revocable by them, while the
province's security admin keeps every department (attack of 2026-12-05)."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from catalogue import Actor
from gateway.services import Services
from tests.admin.conftest import as_session, bearer, csrf
from tests.wiring import parts

CAT = "/api/v1/catalogue"
ORIGIN = "http://127.0.0.1:8080"
SCOPE = "openid catalogue:read catalogue:write"


def test_a_city_secadmin_keeps_to_its_departments_grants(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    sec_nn, sec = bearer(services, "sec.nn", SCOPE), bearer(services, "secadmin", SCOPE)
    assert client.get(f"{CAT}/grants", headers=sec_nn).json()["grants"] == []
    assert client.get(f"{CAT}/applications", headers=sec_nn).json()["applications"] == []
    assert client.get(f"{CAT}/grants/provided",
                      headers=sec_nn).json()["grants"] == []
    r = client.post(f"{CAT}/grants/1/revoke", headers=sec_nn, json={"reason": "不再需要"})
    assert r.status_code == 403, r.text
    with services.engine.connect() as conn:
        refused = conn.execute(sa.select(records.c.extra).where(
            records.c.actor_user == "sec.nn", records.c.event_type == "catalogue_refused",
            records.c.outcome == "deny")).scalars().all()
    assert len(refused) == 1 and "/grants/1/revoke" in refused[0]
    assert {g["id"] for g in client.get(f"{CAT}/grants", headers=sec).json()["grants"]} == {1}
    r = client.post(f"{CAT}/grants/1/revoke", headers=sec, json={"reason": "不再需要"})
    assert r.status_code == 200, r.text


def test_the_portal_shows_and_revokes_a_city_secadmins_grants_only(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    as_session(services, client, "sec.nn")
    page = client.get("/portal/catalogue/grants")
    assert page.status_code == 200 and "JG-0001" not in page.text
    r = client.post("/portal/catalogue/grants/1/revoke", headers={"Origin": ORIGIN},
                    data={"csrf_token": csrf(client), "reason": "不再需要"})
    assert r.status_code == 403, r.text[-600:]
    assert parts(services).workflow.get_grant(1).status != "revoked"
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(records.c.status).where(
            records.c.actor_user == "sec.nn", records.c.event_type == "catalogue_refused",
            records.c.outcome == "deny")).scalar() == 403
    as_session(services, client, "secadmin")
    assert "JG-0001" in client.get("/portal/catalogue/grants").text


def test_a_city_secadmin_does_not_decide_a_province_resources_escalation(
        world: tuple[Services, TestClient]) -> None:
    """nn-jgsw applies for jgswj's JG-0001, is refused and escalates: the city's
    security admin sees the application (their department is the consumer) but the
    provider's side decides it, so approving or closing it is the province's."""
    services, client = world
    wf = parts(services).workflow
    wang = Actor("wang.wu", "nn-jgsw", frozenset({"staff"}))
    app = wf.apply(wang, "JG-0001", items=["brand"], purpose="核对", until="2026-12-31")
    wf.reject(Actor("zhang.san", "jgswj", frozenset({"data_steward"})), app.id, "不需要")
    wf.escalate(wang, app.id, "请协调")
    sec_nn, sec = bearer(services, "sec.nn", SCOPE), bearer(services, "secadmin", SCOPE)
    inbox = client.get(f"{CAT}/inbox", headers=sec_nn).json()["applications"]
    assert inbox == []
    assert client.get(f"{CAT}/applications/{app.id}", headers=sec_nn).status_code == 200
    for step, body in (("approve", {}), ("close", {"reason": "不予共享"})):
        r = client.post(f"{CAT}/applications/{app.id}/{step}", headers=sec_nn, json=body)
        assert r.status_code == 403, r.text
    assert [a["id"] for a in client.get(f"{CAT}/inbox", headers=sec).json()["applications"]
            ] == [app.id]
    r = client.post(f"{CAT}/applications/{app.id}/close", headers=sec,
                    json={"reason": "不予共享"})
    assert r.status_code == 200, r.text


def test_reading_another_departments_application_is_refused_and_audited(
        world: tuple[Services, TestClient]) -> None:
    """czt applies for jgswj's JG-0001: neither side is nn-jgsw's, so the city's
    security admin may not read it by id; the attempt is a refusal in the audit log
    like a refused step (an id walked through is what an auditor looks for)."""
    services, client = world
    app = parts(services).workflow.apply(Actor("zhao.min", "czt", frozenset({"staff"})),
                                         "JG-0001", items=["brand"], purpose="核对",
                                         until="2026-12-31")
    r = client.get(f"{CAT}/applications/{app.id}", headers=bearer(services, "sec.nn", SCOPE))
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    with services.engine.connect() as conn:
        refused = conn.execute(sa.select(records.c.extra).where(
            records.c.actor_user == "sec.nn", records.c.event_type == "catalogue_refused",
            records.c.outcome == "deny")).scalars().all()
    assert len(refused) == 1 and f"/applications/{app.id}" in refused[0]
    assert client.get(f"{CAT}/applications/{app.id}",
                      headers=bearer(services, "secadmin", SCOPE)).status_code == 200


def test_the_portal_audits_a_refused_look_at_another_departments_application(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    app = parts(services).workflow.apply(Actor("zhao.min", "czt", frozenset({"staff"})),
                                         "JG-0001", items=["brand"], purpose="核对",
                                         until="2026-12-31")
    as_session(services, client, "sec.nn")
    page = client.get(f"/portal/catalogue/applications/{app.id}")
    assert page.status_code == 403 and "核对" not in page.text
    with services.engine.connect() as conn:
        refused = conn.execute(sa.select(records.c.extra).where(
            records.c.actor_user == "sec.nn", records.c.event_type == "catalogue_refused",
            records.c.outcome == "deny")).scalars().all()
    assert len(refused) == 1 and f"/portal/catalogue/applications/{app.id}" in refused[0]
