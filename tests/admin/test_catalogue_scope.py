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
from tests.admin.conftest import as_session, bearer
from tests.wiring import parts

CAT = "/api/v1/catalogue"
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
        refused = conn.execute(sa.select(records.c.event_type).where(
            records.c.actor_user == "sec.nn", records.c.outcome == "deny")).all()
    assert refused, "the refusal is audited"
    assert {g["id"] for g in client.get(f"{CAT}/grants", headers=sec).json()["grants"]} == {1}
    r = client.post(f"{CAT}/grants/1/revoke", headers=sec, json={"reason": "不再需要"})
    assert r.status_code == 200, r.text


def test_the_portal_shows_a_city_secadmin_its_departments_grants_only(
        world: tuple[Services, TestClient]) -> None:
    services, client = world
    as_session(services, client, "sec.nn")
    page = client.get("/portal/catalogue/grants")
    assert page.status_code == 200 and "JG-0001" not in page.text
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
