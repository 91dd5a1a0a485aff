"""The /api/v1/catalogue API in process, with real access tokens: roles and
departments (403 for the wrong ones), the workflow, and /allowed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.services import Services
from tests.catalogue.conftest import audit_rows
from tests.tokens import access_token
from tests.wiring import parts

P = "/api/v1/catalogue"


class Api:
    def __init__(self, services: Services, client: TestClient) -> None:
        self.services = services
        self.client = client

    def token(self, sub: str | None, department: str, roles: tuple[str, ...] = ("staff",),
              client_id: str = "office-web") -> dict[str, str]:
        token = access_token(self.services, sub=sub, department=department, roles=roles,
                             client_id=client_id)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    from gateway.app import create_app

    # the tests read the English of the refusals
    with TestClient(create_app(parts(services)), headers={"Accept-Language": "en"}) as client:
        yield Api(services, client)


STEWARD_JG = ("zhang.san", "jgswj", ("staff", "data_steward"))
STAFF_JG = ("li.si", "jgswj", ("staff",))
STEWARD_CZT = ("zhao.min", "czt", ("staff", "data_steward"))
WANG = ("wang.wu", "nn-jgsw", ("staff",))
SEC = ("sec.admin", "jgswj", ("secadmin",))


def test_authentication_required(api: Api) -> None:
    r = api.client.get(f"{P}/resources")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = api.client.get(f"{P}/allowed", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_read_and_search(api: Api) -> None:
    h = api.token(*WANG)
    codes = [r["code"] for r in api.client.get(f"{P}/resources", headers=h).json()["resources"]]
    assert codes == ["CZ-0001", "JG-0001", "JG-0002"]
    r = api.client.get(f"{P}/resources", params={"q": "车辆", "level": "3"}, headers=h)
    assert [x["code"] for x in r.json()["resources"]] == ["JG-0001"]
    assert api.client.get(f"{P}/resources?level=x", headers=h).status_code == 400
    one = api.client.get(f"{P}/resources/JG-0001", headers=h).json()["resource"]
    assert one["items"][0] == {"name": "plate_number", "title": "车牌号", "level": 1,
                               "authoritative": True}
    assert api.client.get(f"{P}/resources/NOPE", headers=h).status_code == 404


def test_save_and_publish_only_by_the_providers_steward(api: Api) -> None:
    entry = {
        "code": "CZ-0002", "name": "公务用车费用台账", "provider": "czt", "system": "assets",
        "share_type": "conditional", "conditions": "费用核算",
        "route": {"method": "GET", "path": "/api/vehicle-costs", "records": "items"},
        "items": [{"name": "plate_number", "title": "车牌号"}, {"name": "cost", "title": "费用"}],
    }
    assert api.client.post(f"{P}/resources", json=entry,
                           headers=api.token(*STEWARD_JG)).status_code == 403
    bad = api.client.post(f"{P}/resources", json={**entry, "share_type": "x"},
                          headers=api.token(*STEWARD_CZT))
    assert bad.status_code == 400 and any("share_type" in e for e in bad.json()["errors"])
    r = api.client.post(f"{P}/resources", json=entry, headers=api.token(*STEWARD_CZT))
    assert r.status_code == 200 and r.json()["resource"]["status"] == "draft"
    r = api.client.post(f"{P}/resources/CZ-0002/publish", headers=api.token(*STEWARD_JG))
    assert r.status_code == 403
    r = api.client.post(f"{P}/resources/CZ-0002/publish", headers=api.token(*STEWARD_CZT))
    assert r.status_code == 200 and r.json()["resource"]["status"] == "published"
    assert "already provided as authoritative by jgswj in JG-0001" in r.json()["warnings"][0]
    dup = api.client.get(f"{P}/duplicates", headers=api.token(*WANG)).json()["overlaps"]
    assert [(d["resource"], d["item"], d["source_resource"]) for d in dup] == [
        ("CZ-0002", "plate_number", "JG-0001")]
    r = api.client.post(f"{P}/resources/CZ-0002/publish", headers=api.token(*STEWARD_CZT))
    assert r.status_code == 409
    published = audit_rows(api.services, "resource_published")[0]
    assert published["actor_user"] == "zhao.min"


def test_application_workflow_with_roles(api: Api) -> None:
    c = api.client
    body = {"resource": "JG-0001", "items": ["plate_number", "brand", "driver_phone"],
            "purpose": "车辆统计", "until": "2026-12-31", "basis": "统计制度"}
    assert c.post(f"{P}/applications", json=body,
                  headers=api.token(None, "nn-jgsw", client_id="x")).status_code == 403
    assert c.post(f"{P}/applications", json={"resource": "JG-0001"},
                  headers=api.token(*WANG)).status_code == 400
    r = c.post(f"{P}/applications", json=body, headers=api.token(*WANG))
    assert r.status_code == 201, r.text
    app = r.json()["application"]
    assert app["status"] == "submitted" and app["due_at"] == "2026-03-16T01:00:00+00:00"
    url = f"{P}/applications/{app['id']}"
    # the wrong role, the wrong department, another department's eyes
    assert c.post(f"{url}/approve", json={}, headers=api.token(*STAFF_JG)).status_code == 403
    assert c.post(f"{url}/approve", json={}, headers=api.token(*STEWARD_CZT)).status_code == 403
    assert c.get(url, headers=api.token(*STEWARD_CZT)).status_code == 403
    assert c.get(url, headers=api.token(*STAFF_JG)).status_code == 200
    r = c.post(f"{url}/approve", json={"items": ["plate_number", "fuel"]},
               headers=api.token(*STEWARD_JG))
    assert r.status_code == 400 and "only narrow" in r.json()["errors"][0]
    r = c.post(f"{url}/approve", json={"items": ["plate_number"], "until": "2026-06-30"},
               headers=api.token(*STEWARD_JG))
    assert r.status_code == 201
    grant = r.json()["grant"]
    assert grant["items"] == ["plate_number"] and grant["until"] == "2026-06-30"
    mine = c.get(f"{P}/grants", headers=api.token(*WANG)).json()["grants"]
    assert [g["id"] for g in mine] == [grant["id"]] and mine[0]["state"] == "active"
    assert len(c.get(f"{P}/grants", headers=api.token(*STEWARD_JG)).json()["grants"]) == 2
    assert c.get(f"{P}/grants", headers=api.token(*STEWARD_CZT)).json()["grants"][0][
        "consumer"] == "czt"
    assert c.post(f"{P}/grants/{grant['id']}/revoke", json={"reason": "x"},
                  headers=api.token(*WANG)).status_code == 403
    r = c.post(f"{P}/grants/{grant['id']}/revoke", json={"reason": "统计结束"},
               headers=api.token(*SEC))
    assert r.status_code == 200 and r.json()["grant"]["status"] == "revoked"


def test_reject_escalate_close_and_overdue(api: Api) -> None:
    c = api.client
    body = {"resource": "JG-0001", "items": ["driver_id_number"], "purpose": "核对",
            "until": "2026-12-31"}
    app_id = c.post(f"{P}/applications", json=body, headers=api.token(*WANG)).json()[
        "application"]["id"]
    url = f"{P}/applications/{app_id}"
    assert c.post(f"{url}/reject", json={}, headers=api.token(*STEWARD_JG)).status_code == 400
    r = c.post(f"{url}/reject", json={"reason": "不属于必要项"}, headers=api.token(*STEWARD_JG))
    assert r.json()["application"]["status"] == "rejected"
    assert c.post(f"{url}/escalate", json={"reason": "请协调"},
                  headers=api.token(*STEWARD_CZT)).status_code == 403
    r = c.post(f"{url}/escalate", json={"reason": "请协调"}, headers=api.token(*WANG))
    assert r.json()["application"]["status"] == "escalated"
    assert c.post(f"{url}/close", json={"reason": "x"},
                  headers=api.token(*STEWARD_JG)).status_code == 403
    # overdue: ten working days later the escalation is still open
    from datetime import UTC, datetime

    api.services.clock.now = datetime(2026, 3, 17, tzinfo=UTC)  # type: ignore[attr-defined]
    r = c.get(f"{P}/applications/overdue", headers=api.token(*SEC))
    assert [a["id"] for a in r.json()["applications"]] == [app_id]
    assert c.get(f"{P}/applications/overdue",
                 headers=api.token(*STEWARD_CZT)).json()["applications"] == []
    r = c.post(f"{url}/close", json={"reason": "协商后不予共享"}, headers=api.token(*SEC))
    assert r.json()["application"]["status"] == "closed"
    listed = c.get(f"{P}/applications", headers=api.token(*WANG)).json()["applications"]
    assert [a["status"] for a in listed] == ["closed"]
    assert [h["status"] for h in listed[0]["history"]] == [
        "submitted", "rejected", "escalated", "closed"]


def test_allowed_tells_a_system_its_rights(api: Api) -> None:
    r = api.client.get(f"{P}/allowed", headers=api.token(None, "czt",
                                                        client_id="finance-system"))
    assert r.status_code == 200
    body = r.json()
    assert body["department"] == "czt" and body["client"] == "finance-system"
    by_code = {a["resource"]: a for a in body["allowed"]}
    assert set(by_code) == {"JG-0001", "JG-0002", "CZ-0001"}
    jg = by_code["JG-0001"]
    assert jg["path"] == "/s/vehicles/api/vehicles" and jg["method"] == "GET"
    assert [i["name"] for i in jg["items"]] == ["plate_number", "brand", "driver_name",
                                                "driver_phone"]
    assert jg["items"][2]["mask"] == "keep_first_char" and jg["items"][3]["encrypt"]
    assert jg["until"] == "2027-12-31T16:00:00+00:00" and jg["purpose"] == "费用核算"
    assert by_code["CZ-0001"]["reason"].startswith("provider department czt")
    other = api.client.get(f"{P}/allowed", headers=api.token(*WANG)).json()["allowed"]
    assert [a["resource"] for a in other] == ["JG-0002"]


def test_wrong_json_types_and_huge_ids_are_problems_not_500s(api: Api) -> None:
    """Bodies with numbers or objects where names and text belong, and ids past 64 bits,
    got a 500 (or were stored as their Python repr); now a 400 or 404 problem, and the
    application is left as it was."""
    c = api.client
    body = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
            "until": "2026-12-31"}

    def problem(r: Any, status: int) -> dict[str, Any]:
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        return r.json()  # type: ignore[no-any-return]

    for bad in ({"items": [1, {}]}, {"items": [["plate_number"]]}, {"basis": {"a": 1}},
                {"resource": ["JG-0001"]}, {"client": 5}):
        r = c.post(f"{P}/applications", json={**body, **bad}, headers=api.token(*WANG))
        assert "must be" in problem(r, 400)["detail"], bad
    app = c.post(f"{P}/applications", json=body, headers=api.token(*WANG)).json()[
        "application"]
    url = f"{P}/applications/{app['id']}"
    steward = api.token(*STEWARD_JG)
    problem(c.post(f"{url}/approve", json={"items": [1]}, headers=steward), 400)
    problem(c.post(f"{url}/approve", json={"note": ["x"]}, headers=steward), 400)
    problem(c.post(f"{url}/reject", json={"reason": ["不必要"]}, headers=steward), 400)
    assert c.get(url, headers=steward).json()["application"]["status"] == "submitted"
    huge = "9" * 26
    problem(c.get(f"{P}/applications/{huge}", headers=steward), 404)
    problem(c.post(f"{P}/applications/{huge}/reject", json={"reason": "x"},
                   headers=steward), 404)
    problem(c.post(f"{P}/grants/{huge}/revoke", json={"reason": "x"}, headers=steward), 404)


def test_approval_refuses_an_until_in_the_past(api: Api, clock: Any) -> None:
    """A grant born expired is refused (400, with the reason), whether the approval
    names a past ``until`` or the application's own period has passed meanwhile."""
    c = api.client
    body = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
            "until": "2026-03-20"}
    app = c.post(f"{P}/applications", json=body, headers=api.token(*WANG)).json()["application"]
    url = f"{P}/applications/{app['id']}/approve"
    steward = api.token(*STEWARD_JG)
    r = c.post(url, json={"until": "2026-03-01"}, headers=steward)  # today is 2026-03-02
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "until is in the past" in r.json()["errors"]
    assert c.get(f"{P}/applications/{app['id']}", headers=steward).json()[
        "application"]["status"] == "submitted"
    clock.advance(86400 * 19)  # 2026-03-21: the period applied for has ended
    r = c.post(url, json={}, headers=api.token(*STEWARD_JG))
    assert r.status_code == 400 and "until is in the past" in r.json()["errors"]
    assert not audit_rows(api.services, "grant_created")


def test_approval_until_today_is_accepted(api: Api) -> None:
    c = api.client
    body = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
            "until": "2026-03-20"}
    app = c.post(f"{P}/applications", json=body, headers=api.token(*WANG)).json()["application"]
    r = c.post(f"{P}/applications/{app['id']}/approve", json={"until": "2026-03-02"},
               headers=api.token(*STEWARD_JG))
    assert r.status_code == 201 and r.json()["grant"]["until"] == "2026-03-02"


@pytest.mark.parametrize("role", ["sysadmin", "secadmin", "auditor"])
def test_admin_accounts_do_not_apply_for_data(api: Api, role: str) -> None:
    """三员: the platform's admins are not business users; the refusal says so."""
    body = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "车辆统计",
            "until": "2026-12-31"}
    r = api.client.post(f"{P}/applications", json=body,
                        headers=api.token(f"{role}.x", "nn-jgsw", (role,)))
    assert r.status_code == 403, r.text
    assert "admin accounts (sysadmin, secadmin, auditor) do not apply for data" in r.json()[
        "detail"]

    assert parts(api.services).workflow.applications(consumer="nn-jgsw") == []


def test_admin_roles_are_the_organisations() -> None:
    from catalogue.model import ADMIN_ROLES
    from gateway.org import ADMIN_ROLES as ORG_ADMIN_ROLES

    assert ADMIN_ROLES == ORG_ADMIN_ROLES
