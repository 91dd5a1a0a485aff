"""Auditors' query, CSV safety, usage figures."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from audit import AuditLog, AuditQueryError
from audit.export import neutralise, write_csv, write_jsonl, write_table
from audit.query import parse_filters, query_records
from audit.stats import usage_stats
from tests.audit.conftest import rec

T0 = 1_800_000_000.0


@pytest.fixture
def log50(make_log: Callable[..., AuditLog]) -> AuditLog:
    now = [T0]
    log = make_log(clock=lambda: now[0])
    batch = []
    for i in range(50):
        batch.append(rec(i, ts=int(now[0] * 1000) + i * 3_600_000,
                         outcome="deny" if i % 5 == 0 else "allow",
                         system="vehicles" if i % 2 else "assets",
                         department="czt" if i < 25 else "jgswj",
                         reason=f"grant {i} 100%_done" if i == 7 else f"policy line {i}"))
    log.append_many_sync(batch)
    return log


def test_filters_and_pagination(log50: AuditLog, audit_engine: sa.Engine) -> None:
    f = parse_filters({"system": "vehicles", "limit": "10"})
    seen: list[int] = []
    while True:
        page = query_records(audit_engine, f)
        seen += [r["seq"] for r in page.records]
        if page.next_cursor is None:
            break
        f = parse_filters({"system": "vehicles", "limit": "10", "cursor": page.next_cursor})
    assert seen == sorted(seen, reverse=True) and len(seen) == 25
    assert len(set(seen)) == 25
    p = query_records(audit_engine, parse_filters({"outcome": "deny", "department": "czt"}))
    assert [r["seq"] for r in p.records] == [21, 16, 11, 6, 1]
    p = query_records(audit_engine, parse_filters({"text": "100%_"}))
    assert [r["seq"] for r in p.records] == [8]
    p = query_records(audit_engine, parse_filters({"request_id": "req-3"}))
    assert [r["request_id"] for r in p.records] == ["req-3"]
    since = "2027-01-15T09:00:00Z"  # T0 is 2027-01-15T08:00:00Z
    p = query_records(audit_engine, parse_filters({"since": since, "until": "1800010800000"}))
    assert [r["seq"] for r in p.records] == [3, 2]
    assert p.records[0]["items"] == [] and isinstance(p.records[0]["extra"], dict)


@pytest.mark.parametrize("params,field", [
    ({"since": "yesterday"}, "since"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit"),
    ({"outcome": "meh"}, "outcome"), ({"cursor": "!!"}, "cursor"), ({"bogus": "1"}, "bogus"),
    ({"user": "a b"}, "user"), ({"since": "2027-01-02", "until": "2027-01-01"}, "until"),
])
def test_malformed_filters_name_the_field(params: dict, field: str) -> None:
    with pytest.raises(AuditQueryError) as e:
        parse_filters(params)
    assert e.value.field == field


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_neutralises_formulas(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    out = io.StringIO()
    write_csv([{"reason": cell, "actor_user": "ok"}], out)
    row = next(iter(csv.DictReader(io.StringIO(out.getvalue()))))
    assert row["reason"] == "'" + cell and row["actor_user"] == "ok"


def test_other_formats(log50: AuditLog, audit_engine: sa.Engine) -> None:
    rows = query_records(audit_engine, parse_filters({"limit": "3"})).records
    out = io.StringIO()
    assert write_jsonl(rows, out) == 3 and out.getvalue().count("\n") == 3
    out = io.StringIO()
    assert write_table(rows, out) == 3 and out.getvalue().startswith("time")


def test_usage_stats(log50: AuditLog, audit_engine: sa.Engine) -> None:
    by_system = usage_stats(audit_engine, group_by=["system"])
    assert by_system == [{"system": "assets", "count": 25}, {"system": "vehicles", "count": 25}]
    by_dept_day = usage_stats(audit_engine, group_by=["day", "department"],
                              since_day="2027-01-16", until_day="2027-01-16")
    assert sum(r["count"] for r in by_dept_day) == 24
    with pytest.raises(AuditQueryError):
        usage_stats(audit_engine, group_by=["password"])
    assert usage_stats(audit_engine, group_by=["outcome"], event_type=None) == [
        {"outcome": "allow", "count": 40}, {"outcome": "deny", "count": 10}]


def test_usage_stats_total_of_nothing_and_impossible_days(audit_engine: sa.Engine) -> None:
    """No dimensions (``--by ""``, ``?by=,``) on a log with no data use summed NULL:
    TypeError, a traceback in the CLI and a 500 in the API. And 2026-02-30 matched the
    day pattern and was used as a bound."""
    assert usage_stats(audit_engine, group_by=[]) == [{"count": 0}]
    for day in ("2026-02-30", "2026-13-01"):
        with pytest.raises(AuditQueryError, match="YYYY-MM-DD"):
            usage_stats(audit_engine, since_day=day)


def test_secrets_never_stored(make_log: Callable[..., AuditLog],
                              audit_engine: sa.Engine) -> None:
    log = make_log()
    log.append_sync(rec(1, extra={"password": "hunter2", "headers": {"Cookie": "sid=abc123"},
                                  "client_secret": "s3cr3t-value"},
                        reason="Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"))
    with audit_engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(sa.text("SELECT * FROM audit_records"))
                        for v in row)
    for secret in ("hunter2", "sid=abc123", "s3cr3t-value", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in dump




def test_usage_by_kind_tells_deliveries_from_refusals(make_log: Callable[..., AuditLog],
                                                       audit_engine: sa.Engine) -> None:
    log = make_log(clock=lambda: T0)
    log.append_many_sync([
        rec(0, status=200), rec(1, status=200),                    # delivered
        rec(6, status=404),                                        # let through, no data
        rec(7, event_type="forward_auth", status=200),             # answer not seen
        rec(2, outcome="deny"),                                    # refused (known caller)
        rec(3, outcome="deny", department=None, actor_user=None),  # 401: no one
        rec(4, outcome="error"),                                   # upstream failed
        rec(5, event_type="application_submitted", outcome="success"),
    ])
    assert usage_stats(audit_engine, group_by=["kind"]) == [
        {"kind": "delivered", "count": 2}, {"kind": "not_delivered", "count": 1},
        {"kind": "unconfirmed", "count": 1}, {"kind": "refused", "count": 1},
        {"kind": "unauthenticated", "count": 1}, {"kind": "failed", "count": 1},
        {"kind": "other", "count": 1}]
    by_dept = usage_stats(audit_engine, group_by=["department", "kind"])
    assert {"department": "", "kind": "unauthenticated", "count": 1} in by_dept
    assert {"department": "czt", "kind": "delivered", "count": 2} in by_dept


def test_table_shows_items_and_the_whole_reason() -> None:
    reason = "catalogue grant 7 (费用核算): " + "driver_phone encrypted to the client; " * 3
    out = io.StringIO()
    write_table([{"event_type": "proxy_request", "items": ["plate_number", "driver_name"],
                  "reason": reason}], out)
    header, row = out.getvalue().splitlines()
    assert header.split()[-3:] == ["items", "status", "reason"]
    assert "plate_number,driver_name" in row and row.endswith(reason.strip())
