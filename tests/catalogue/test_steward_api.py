"""The data stewards' API in process, with real access tokens: an application's whole
timeline on ``GET /applications/{id}``; the inbox (overdue first, time limits in
working days of the calendar, 403 for staff); a referral; our grants with their use
from the audit log; the calendar."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from audit import AuditRecord
from gateway.clock import FrozenClock
from gateway.services import Services
from tests.catalogue.test_api import SEC, STAFF_JG, STEWARD_CZT, STEWARD_JG, WANG, Api
from tests.tokens import access_token
from tests.wiring import parts

P = "/api/v1/catalogue"
HEAD_JG = ("zhou.ling", "jgswj", ("staff", "dept_head"))


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    from gateway.app import create_app

    # the tests read the English of the refusals
    with TestClient(create_app(parts(services)), headers={"Accept-Language": "en"}) as client:
        yield Api(services, client)


def _apply(api: Api, items: list[str], purpose: str = "核算") -> int:
    r = api.client.post(f"{P}/applications", headers=api.token(*WANG), json={
        "resource": "JG-0001", "items": items, "purpose": purpose, "until": "2026-12-31"})
    assert r.status_code == 201, r.text
    return int(r.json()["application"]["id"])


def test_the_timeline_keeps_every_step_and_reason(api: Api) -> None:
    c = api.client
    first = _apply(api, ["plate_number", "brand", "driver_phone"])
    url = f"{P}/applications/{first}"
    r = c.post(f"{url}/approve", headers=api.token(*STEWARD_JG),
               json={"items": ["plate_number", "brand"], "until": "2026-06-30",
                     "note": "手机号不予提供"})
    grant = r.json()["grant"]
    c.post(f"{P}/grants/{grant['id']}/revoke", headers=api.token(*SEC),
           json={"reason": "核算结束"})
    history = c.get(url, headers=api.token(*WANG)).json()["application"]["history"]
    assert [(h["kind"], h["by"], h["reason"]) for h in history] == [
        ("submitted", "wang.wu", None), ("approved", "zhang.san", "手机号不予提供"),
        ("revoked", "sec.admin", "核算结束")]
    approved = history[1]
    assert approved["items"] == ["plate_number", "brand"] and approved["removed"] == [
        "driver_phone"]
    assert approved["until"] == "2026-06-30" and approved["narrowed"] is True
    assert approved["grant"] == grant["id"] and approved["department"] == "jgswj"

    second = _apply(api, ["mileage_km"])
    url = f"{P}/applications/{second}"
    c.post(f"{url}/reject", headers=api.token(*STEWARD_JG), json={"reason": "与用途无关"})
    c.post(f"{url}/escalate", headers=api.token(*WANG), json={"reason": "里程用于核算"})
    app = c.get(url, headers=api.token(*STEWARD_JG)).json()["application"]
    assert app["reason"] == "里程用于核算"  # the latest; the timeline keeps both
    assert [(h["kind"], h["status"], h["reason"]) for h in app["history"]] == [
        ("submitted", "submitted", None), ("rejected", "rejected", "与用途无关"),
        ("escalated", "escalated", "里程用于核算")]
    assert c.get(url, headers=api.token(*STEWARD_CZT)).status_code == 403


def test_the_inbox_puts_overdue_first_with_working_days(api: Api, clock: FrozenClock) -> None:
    c = api.client
    old = _apply(api, ["plate_number"], "早")  # Monday 2026-03-02 09:00 CST
    clock.now = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
    new = _apply(api, ["brand"], "晚")  # due 2026-03-23
    clock.now = datetime(2026, 3, 17, 1, 0, tzinfo=UTC)  # old: due 03-16, one day past
    r = c.get(f"{P}/inbox", headers=api.token(*STEWARD_JG))
    found = r.json()["applications"]
    assert [a["id"] for a in found] == [old, new]
    assert found[0]["deadline"] == {"due_at": "2026-03-16T01:00:00+00:00", "overdue": True,
                                    "working_days_left": 0, "working_days_overdue": 1}
    assert found[1]["deadline"]["working_days_left"] == 4  # 18, 19, 20, 23 March
    assert found[0]["referred"] is False
    assert [a["id"] for a in c.get(f"{P}/inbox", headers=api.token(*HEAD_JG)).json()[
        "applications"]] == [old, new]
    assert c.get(f"{P}/inbox", headers=api.token(*STEWARD_CZT)).json()["applications"] == []
    assert c.get(f"{P}/inbox", headers=api.token(*STAFF_JG)).status_code == 403
    assert c.get(f"{P}/inbox", headers=api.token(*WANG)).status_code == 403

    # a referral by hand: reason required, stewards only, once
    refer = f"{P}/applications/{new}/refer"
    assert c.post(refer, headers=api.token(*STEWARD_JG), json={}).status_code == 400
    assert c.post(refer, headers=api.token(*HEAD_JG), json={"reason": "x"}).status_code == 403
    # a department without a head: nobody to refer to (it was referred, then waited
    # "with the department head" for no one); the steward is told to decide it
    api.services.org.set_roles("zhou.ling", ["staff"])
    r = c.post(refer, headers=api.token(*STEWARD_JG), json={"reason": "请负责人定"})
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == ("jgswj has no department head (role dept_head) to refer it "
                                  "to: decide it yourself, or have a person given the role")
    assert c.get(f"{P}/applications/{new}", headers=api.token(*STEWARD_JG)).json()[
        "application"]["head_escalated_at"] is None
    api.services.org.set_roles("zhou.ling", ["staff", "dept_head"])
    r = c.post(refer, headers=api.token(*STEWARD_JG), json={"reason": "请负责人定"})
    assert r.status_code == 200 and r.json()["application"]["head_escalated_at"]
    assert c.post(refer, headers=api.token(*STEWARD_JG),
                  json={"reason": "again"}).status_code == 409
    found = c.get(f"{P}/inbox", headers=api.token(*HEAD_JG)).json()["applications"]
    assert [(a["id"], a["referred"]) for a in found] == [(old, False), (new, True)]


def test_our_grants_with_their_use(api: Api, services: Services, clock: FrozenClock) -> None:
    c = api.client
    app_id = _apply(api, ["plate_number"])
    grant = c.post(f"{P}/applications/{app_id}/approve", headers=api.token(*STEWARD_JG),
                   json={}).json()["grant"]
    used = datetime(2026, 3, 3, 2, 30, tzinfo=UTC)
    for _ in range(3):  # what the proxy writes when it lets a call through
        services.audit.append_sync(AuditRecord(
            event_type="proxy_request", outcome="allow", department="nn-jgsw",
            system="vehicles", resource="JG-0001", items=("plate_number",), status=200,
            ts=int(used.timestamp() * 1000)))
    services.audit.append_sync(AuditRecord(  # refused: no use
        event_type="proxy_request", outcome="deny", department="nn-jgsw", system="vehicles",
        resource="JG-0001", status=403, ts=int(used.timestamp() * 1000) + 1))
    r = c.get(f"{P}/grants/provided", headers=api.token(*STEWARD_JG))
    by_id = {g["id"]: g for g in r.json()["grants"]}
    assert set(by_id) == {1, grant["id"]}  # the demo's grant to czt, and this one
    assert by_id[grant["id"]]["usage"] == {"calls": 3, "last_used": used.isoformat(),
                                           "not_delivered": 0, "unconfirmed": 0}
    assert by_id[1]["usage"] == {"calls": 0, "last_used": None, "not_delivered": 0,
                                 "unconfirmed": 0}
    assert c.get(f"{P}/grants/provided", headers=api.token(*STEWARD_CZT)).json()[
        "grants"] == []
    assert len(c.get(f"{P}/grants/provided", headers=api.token(*SEC)).json()["grants"]) == 2
    assert c.get(f"{P}/grants/provided", headers=api.token(*WANG)).status_code == 403


def test_the_calendar_is_readable(api: Api) -> None:
    token = access_token(api.services, sub="wang.wu", department="nn-jgsw")
    r = api.client.get(f"{P}/calendar", params={"year": "2026"},
                       headers={"Authorization": f"Bearer {token}"})
    (year,) = r.json()["years"]
    national = next(h for h in year["holidays"] if h["name"] == "国庆节")
    assert national == {"name": "国庆节", "from": "2026-10-01", "to": "2026-10-07",
                        "workdays": ["2026-09-20", "2026-10-10"]}
    assert api.client.get(f"{P}/calendar", params={"year": "x"},
                          headers={"Authorization": f"Bearer {token}"}).status_code == 400
