"""Real use (实绩) from known records: exact counts per day, system and resource, the
window's edges in China Standard Time, idle targets and unused grants."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from audit import AuditLog
from audit.use import (
    DAY_MS,
    ConsumerDay,
    Figures,
    GrantRef,
    Window,
    consumer_days,
    daily_total,
    grant_use,
    idle,
    last_use,
    target_use,
)
from tests.audit.conftest import rec

# 2027-01-15 12:00 CST (04:00 UTC)
NOW = int(datetime(2027, 1, 15, 4, 0, tzinfo=UTC).timestamp() * 1000)
WINDOW = Window.ending_at(NOW, 30)
TODAY, YESTERDAY = "2027-01-15", "2027-01-14"


def at(day_offset: int, hour_cst: int = 10) -> int:
    """UTC ms of ``hour_cst`` o'clock China time, ``day_offset`` days from NOW's day."""
    return WINDOW.since_ms + (WINDOW.days - 1 + day_offset) * DAY_MS + hour_cst * 3_600_000


@pytest.fixture
def used(make_log: Callable[..., AuditLog]) -> AuditLog:
    log = make_log(clock=lambda: NOW / 1000)
    log.append_many_sync([
        # today: three grant calls of czt on JG-0001 (two users), two items each
        rec(1, ts=at(0), actor_user="u1", items=("a", "b"), status=200),
        rec(2, ts=at(0, 11), actor_user="u1", items=("a", "b"), status=200),
        rec(3, ts=at(0, 12), actor_user="u2", items=("a", "b"), status=304),
        # today: a call of jgswj on vehicles, no resource, no items
        rec(4, ts=at(0), actor_user="u3", department="jgswj", resource=None, status=200),
        # refused, failed and sign-in records count for nothing
        rec(5, ts=at(0), outcome="deny", status=403),
        rec(6, ts=at(0), outcome="error", status=502),
        rec(7, ts=at(0), event_type="login", outcome="success", system=None, resource=None),
        # nor do a call the system answered with an error, a forward-auth allow (its
        # answer never seen) and an allow without a status (no answer known)
        rec(11, ts=at(0), status=404),
        rec(12, ts=at(0), event_type="forward_auth", status=200),
        rec(13, ts=at(0)),
        # yesterday: the finance client (no user), one item whose name holds '","'
        rec(8, ts=at(-1), actor_user=None, actor_client="finance-system", items=('x","y',),
            status=200),
        # the first minute of the window counts; the minute before does not
        rec(9, ts=WINDOW.since_ms, system="offices", resource="JG-0002",
            department="nn-jgsw", actor_user="u4", items=("room_id",), status=200),
        rec(10, ts=WINDOW.since_ms - 1, system="assets", resource="CZ-0001", status=200),
    ])
    return log


def test_window_is_local_days_ending_today() -> None:
    assert WINDOW.labels()[0] == "2026-12-17" and WINDOW.labels()[-1] == TODAY
    assert len(WINDOW.labels()) == 30
    # 16:00 UTC on the 14th is midnight of the 15th in China
    assert WINDOW.label(WINDOW.day_of(int(datetime(2027, 1, 14, 16, 0, tzinfo=UTC)
                                          .timestamp() * 1000))) == TODAY
    assert datetime.fromtimestamp(WINDOW.until_ms / 1000, UTC) == datetime(
        2027, 1, 15, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        Window.ending_at(NOW, 0)


def test_systems_day_by_day(used: AuditLog, audit_engine: sa.Engine) -> None:
    by = {u.code: u for u in target_use(audit_engine, WINDOW, kind="system")}
    assert set(by) == {"vehicles", "offices"}
    v = by["vehicles"]
    assert len(v.days) == 30
    today = v.days[-1]
    assert (today.day, today.calls, today.departments, today.users, today.items) == (
        TODAY, 4, 2, 3, 6)
    yesterday = v.days[-2]
    assert (yesterday.day, yesterday.calls, yesterday.departments, yesterday.users,
            yesterday.items) == (YESTERDAY, 1, 1, 0, 1)
    assert all(d.calls == 0 for d in v.days[:-2])
    # over the window: departments and users distinct across days
    assert v.total == Figures(calls=5, departments=2, users=3, items=7, unseen=1)
    first = by["offices"].days[0]
    assert (first.day, first.calls, first.items) == ("2026-12-17", 1, 1)


def test_resources_named_listed_in_order_used_or_not(used: AuditLog,
                                                     audit_engine: sa.Engine) -> None:
    found = target_use(audit_engine, WINDOW, kind="resource",
                       codes=["CZ-0001", "JG-0001", "JG-0002"])
    assert [u.code for u in found] == ["CZ-0001", "JG-0001", "JG-0002"]
    assert found[0].total == Figures() and all(d.calls == 0 for d in found[0].days)
    assert found[1].total == Figures(calls=4, departments=1, users=2, items=7, unseen=1)
    assert target_use(audit_engine, WINDOW, kind="resource", codes=[]) == []
    # one consumer's calls only
    (jg,) = target_use(audit_engine, WINDOW, kind="resource", codes=["JG-0002"],
                       consumers=["czt"])
    assert jg.total.calls == 0
    with pytest.raises(ValueError):
        target_use(audit_engine, WINDOW, kind="department")


def test_total_across_targets(used: AuditLog, audit_engine: sa.Engine) -> None:
    all_systems = daily_total(audit_engine, WINDOW, kind="system")
    assert all_systems.total == Figures(calls=6, departments=3, users=4, items=8, unseen=1)
    assert all_systems.days[-1].calls == 4 and all_systems.days[0].calls == 1
    czt = daily_total(audit_engine, WINDOW, kind="system", codes=["vehicles"],
                      consumers=["czt"])
    assert czt.total == Figures(calls=4, departments=1, users=2, items=7, unseen=1)
    nothing = daily_total(audit_engine, WINDOW, kind="system", codes=[])
    assert nothing.total == Figures() and len(nothing.days) == 30


def test_last_use_and_idle(used: AuditLog, audit_engine: sa.Engine) -> None:
    last = last_use(audit_engine, kind="system")
    assert last == {"vehicles": at(0, 12), "offices": WINDOW.since_ms,
                    "assets": WINDOW.since_ms - 1}
    assert last_use(audit_engine, kind="resource", codes=["CZ-0001"]) == {
        "CZ-0001": WINDOW.since_ms - 1}
    used_systems = target_use(audit_engine, WINDOW, kind="system")
    assert idle(["assets", "offices", "vehicles", "parking"], used_systems) == [
        "assets", "parking"]


def test_consumers_by_day(used: AuditLog, audit_engine: sa.Engine) -> None:
    rows = consumer_days(audit_engine, WINDOW, resources=["JG-0001"])
    assert rows == [
        ConsumerDay(YESTERDAY, "JG-0001", "czt", "finance-system", 1),
        ConsumerDay(TODAY, "JG-0001", "czt", None, 3, unseen=1),  # the forward-auth allow
    ]


def test_grants_never_or_rarely_used(used: AuditLog, audit_engine: sa.Engine) -> None:
    long_ago = WINDOW.since_ms - 60 * DAY_MS
    grants = [
        GrantRef(1, "JG-0001", "czt", None, long_ago),              # 4 calls
        GrantRef(2, "JG-0001", "czt", "finance-system", long_ago),  # 1 call, its client's
        GrantRef(3, "JG-0002", "nn-jgsw", None, at(-1)),            # new, its call before it
        GrantRef(4, "JG-0002", "jgswj", None, long_ago),            # never
        GrantRef(5, "JG-0001", "czt", None, at(0, 11)),             # active since 11:00 today
    ]
    uses = consumer_days(audit_engine, WINDOW)
    found = {g.grant.id: g for g in grant_use(grants, uses, WINDOW, rare_below=5)}
    assert set(found) == {1, 2, 3, 4, 5}
    assert (found[1].calls, found[1].status, found[1].last_day) == (4, "rare", TODAY)
    assert (found[2].calls, found[2].status, found[2].last_day) == (1, "rare", YESTERDAY)
    assert (found[3].calls, found[3].status, found[3].suggest_revoke) == (0, "never", False)
    assert (found[4].calls, found[4].status, found[4].suggest_revoke) == (0, "never", True)
    # counted by day: today's calls count for a grant active since today
    assert found[5].calls == 3 and not found[5].suggest_revoke
    assert {g.grant.id for g in grant_use(grants, uses, WINDOW, rare_below=4)} == {2, 3, 4, 5}
