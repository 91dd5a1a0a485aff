"""Department scope in the catalogue's API: a city's security admin (sec.nn, nn-jgsw)
reads and decides only its departments' applications and grants; the demo's grant 1
(jgswj's, on a province resource) is neither listed nor revocable by them, while the
province's security admin keeps every department (attack of 2026-12-05)."""

from __future__ import annotations

import sqlalchemy as sa
from starlette.testclient import TestClient

from audit.tables import records
from gateway.services import Services
from tests.admin.conftest import bearer

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
