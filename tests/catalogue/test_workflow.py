"""Applications and grants: apply, approve (narrowing), reject, escalate, overdue
(frozen clock, working days), revoke; every transition in the audit log."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from catalogue import Actor, Caller, InvalidInput, NotAllowed, WorkflowConflict
from gateway.clock import FrozenClock
from gateway.services import Services
from tests.catalogue.conftest import audit_rows
from tests.wiring import parts

ZHAO = Actor("zhao.min", "czt", frozenset({"staff", "data_steward"}))
ZHANG = Actor("zhang.san", "jgswj", frozenset({"staff", "data_steward"}))
LI = Actor("li.si", "jgswj", frozenset({"staff"}))
SEC = Actor("sec", "jgswj", frozenset({"secadmin"}))
WANG = Actor("wang.wu", "nn-jgsw", frozenset({"staff"}))


def test_apply_approve_with_narrowing_then_use(services: Services) -> None:
    wf = parts(services).workflow
    app = wf.apply(WANG, "JG-0001", items=["plate_number", "brand", "driver_phone"],
                   purpose="车辆统计", until="2026-12-31", basis="统计制度")
    assert app.status == "submitted" and app.consumer == "nn-jgsw"
    assert app.due_at == datetime(2026, 3, 16, 1, 0, tzinfo=UTC)
    cat = parts(services).catalogue
    res = cat.get("JG-0001")
    assert not cat.decide(res, Caller("nn-jgsw")).allowed
    with pytest.raises(NotAllowed):
        wf.approve(LI, app.id)  # staff, not data steward
    with pytest.raises(NotAllowed):
        wf.approve(ZHAO, app.id)  # data steward of another department
    with pytest.raises(InvalidInput, match="only narrow"):
        wf.approve(ZHANG, app.id, items=["plate_number", "driver_id_number"])
    with pytest.raises(InvalidInput, match="only shorten"):
        wf.approve(ZHANG, app.id, until="2027-06-30")
    grant = wf.approve(ZHANG, app.id, items=["plate_number", "brand"], until="2026-06-30")
    assert grant.items == ("plate_number", "brand") and grant.until.isoformat() == "2026-06-30"
    assert grant.approved_by == "zhang.san" and grant.application_id == app.id
    d = cat.decide(res, Caller("nn-jgsw"))
    assert d.allowed and d.items == ("plate_number", "brand") and d.grant_ids == (grant.id,)
    assert wf.get(app.id).status == "approved"
    with pytest.raises(WorkflowConflict):
        wf.approve(ZHANG, app.id)
    rows = audit_rows(services, ("application_", "grant_"))
    events = [(r["event_type"], r["actor_user"]) for r in rows]
    assert events == [("application_submitted", "wang.wu"),
                      ("application_approved", "zhang.san"),
                      ("grant_created", "zhang.san")]
    approved = audit_rows(services, "application_approved")[0]
    assert approved["extra"]["narrowed"] is True
    assert approved["extra"]["granted_items"] == ["plate_number", "brand"]


def test_application_rules(services: Services) -> None:
    wf = parts(services).workflow
    with pytest.raises(WorkflowConflict, match="unconditionally"):
        wf.apply(WANG, "JG-0002", items=["room_id"], purpose="x", until="2026-12-31")
    with pytest.raises(WorkflowConflict, match="no application needed"):
        wf.apply(ZHANG, "JG-0001", items=["brand"], purpose="x", until="2026-12-31")
    with pytest.raises(NotAllowed):
        wf.apply(WANG, "JG-0001", consumer="czt", items=["brand"], purpose="x",
                 until="2026-12-31")
    with pytest.raises(InvalidInput) as info:
        wf.apply(WANG, "JG-0001", items=["ghost"], purpose=" ", until="2020-01-01",
                 client_id="finance-system")
    assert len(info.value.problems) == 4


def test_reject_with_reason_then_escalate_then_secadmin_decides(services: Services) -> None:
    wf = parts(services).workflow
    app = wf.apply(WANG, "JG-0001", items=["driver_id_number"], purpose="核对",
                   until="2026-12-31")
    with pytest.raises(InvalidInput, match="reason"):
        wf.reject(ZHANG, app.id, "  ")
    rejected = wf.reject(ZHANG, app.id, "身份证号不属于核对所需")
    assert rejected.status == "rejected" and rejected.reason == "身份证号不属于核对所需"
    with pytest.raises(NotAllowed):
        wf.escalate(ZHAO, app.id, "不同意")  # another department
    escalated = wf.escalate(WANG, app.id, "请协调")
    assert escalated.status == "escalated"
    with pytest.raises(NotAllowed):
        wf.approve(ZHANG, app.id)  # escalated: the security admin decides
    closed = wf.close(SEC, app.id, "协商后不予共享")
    assert closed.status == "closed"
    kinds = [r["event_type"] for r in audit_rows(services, ("application_", "grant_"))]
    assert kinds == ["application_submitted", "application_rejected",
                     "application_escalated", "application_closed"]
    assert audit_rows(services, "application_rejected")[0]["reason"] == \
        "身份证号不属于核对所需"


def test_none_resource_goes_straight_to_coordination(services: Services) -> None:
    wf = parts(services).workflow
    app = wf.apply(ZHANG, "CZ-0001", items=["asset_code"], purpose="资产清查",
                   until="2026-12-31")
    assert app.status == "escalated"
    grant = wf.approve(SEC, app.id)
    # a none resource stays provider-only whatever the grant says
    d = parts(services).catalogue.decide(parts(services).catalogue.get("CZ-0001"), Caller("jgswj"))
    assert not d.allowed and grant.id


def test_overdue_after_ten_working_days(services: Services, clock: FrozenClock) -> None:
    wf = parts(services).workflow
    a = wf.apply(WANG, "JG-0001", items=["brand"], purpose="统计", until="2026-12-31")
    clock.advance(3600)
    b = wf.apply(WANG, "JG-0001", items=["plate_number"], purpose="统计2", until="2026-12-31")
    friday = datetime(2026, 3, 13, 9, 0, tzinfo=UTC)  # 9 working days later
    assert wf.overdue(friday) == []
    monday = datetime(2026, 3, 16, 1, 30, tzinfo=UTC)  # a is due at 01:00, b at 02:00
    assert [x.id for x in wf.overdue(monday)] == [a.id]
    assert [x.id for x in wf.overdue(datetime(2026, 3, 16, 3, 0, tzinfo=UTC))] == [a.id, b.id]
    wf.approve(ZHANG, a.id)
    assert [x.id for x in wf.overdue(datetime(2026, 3, 17, tzinfo=UTC))] == [b.id]
    assert wf.overdue(datetime(2026, 3, 17, tzinfo=UTC), provider="czt") == []


def test_grant_expires_and_revocation_reaches_other_processes(services: Services,
                                                              clock: FrozenClock) -> None:
    from catalogue import Catalogue
    from gateway.catalogue_wiring import LOOKUPS, record_for

    wf = parts(services).workflow
    other_process = Catalogue(services.engine, record=record_for(services), lookups=LOOKUPS,
                              clock=clock)  # default: checks the version every 0.5 s
    res = parts(services).catalogue.get("JG-0001")
    caller = Caller("czt", "finance-system")
    assert other_process.decide(res, caller).allowed
    grant = wf.grants(consumer="czt")[0]
    with pytest.raises(NotAllowed):
        wf.revoke(ZHAO, grant.id, "no")  # the consumer cannot revoke
    with pytest.raises(InvalidInput):
        wf.revoke(ZHANG, grant.id, "")
    wf.revoke(ZHANG, grant.id, "用途已完成")
    revoked_at = time.monotonic()
    while other_process.decide(res, caller).allowed:
        assert time.monotonic() - revoked_at < 1.0, "revocation took longer than 1 s"
        time.sleep(0.02)
    assert "revoked" in other_process.decide(res, caller).reason
    revoked = audit_rows(services, "grant_revoked")[0]
    assert revoked["reason"] == "用途已完成" and revoked["department"] == "czt"
    with pytest.raises(WorkflowConflict):
        wf.revoke(SEC, grant.id, "again")
    # expiry: a fresh grant until today ends at midnight CST
    app = wf.apply(WANG, "JG-0001", items=["brand"], purpose="x", until="2026-03-02")
    wf.approve(ZHANG, app.id)
    other_process.invalidate()
    assert other_process.decide(res, Caller("nn-jgsw")).allowed
    clock.now = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)  # 2026-03-03 00:00 CST
    d = other_process.decide(res, Caller("nn-jgsw"))
    assert not d.allowed and "expired after 2026-03-02" in d.reason
    assert wf.grants(consumer="nn-jgsw", active_only=True) == []


def test_workflow_steps_begin_as_writers_on_sqlite(services: Services) -> None:
    """Each step reads the application, then writes: on SQLite it must hold the write
    lock from the start, or a commit by the audit writer in between fails it."""
    import sqlalchemy as sa

    if services.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    begins: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        if statement.startswith("BEGIN"):
            begins.append(statement)

    sa.event.listen(services.engine, "before_cursor_execute", seen)
    try:
        wf = parts(services).workflow
        app = wf.apply(WANG, "JG-0001", items=["plate_number"], purpose="车辆统计",
                       until="2026-12-31", basis="统计制度")
        begins.clear()
        wf.approve(ZHANG, app.id)
    finally:
        sa.event.remove(services.engine, "before_cursor_execute", seen)
    assert begins and begins[0] == "BEGIN IMMEDIATE", begins
