"""What the auditor console reads from the audit package: free text over the reason,
purpose and extra fields, a fixed set of records to export, one record's place in
its chain, and the checkpoints with their signatures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from audit import AuditLog
from audit.checkpoints import list_checkpoints, signature_ok
from audit.position import record_position
from audit.query import count_matching, iter_matching, newest_id, parse_filters, query_records
from keys import KeyService
from tests.audit.conftest import rec

T0 = 1_800_000_000.0


def test_free_text_searches_reason_purpose_and_extra(make_log: Callable[..., AuditLog],
                                                     audit_engine: sa.Engine) -> None:
    log = make_log(clock=lambda: T0)
    log.append_many_sync([
        rec(0, reason="grant 7 (费用核算)"),
        rec(1, purpose="车辆费用核算", reason="provider"),
        rec(2, extra={"target": "/api/Vehicles?plate=桂A"}, reason="provider"),
        rec(3, reason="nothing to see"),
    ])

    def found(text: str) -> list[str]:
        return [r["request_id"] for r in
                query_records(audit_engine, parse_filters({"text": text})).records]

    assert found("费用核算") == ["req-1", "req-0"]
    assert found("/API/VEHICLES") == ["req-2"]  # without case
    assert found("桂A") == ["req-2"]
    assert found("%") == [] and found("_") == []  # wildcards are text


def test_export_reads_a_fixed_set_newest_first(make_log: Callable[..., AuditLog],
                                               audit_engine: sa.Engine) -> None:
    log = make_log(clock=lambda: T0)
    log.append_many_sync([rec(i, ts=int(T0 * 1000) + (i % 7) * 1000,
                              system="vehicles" if i % 2 else "assets") for i in range(25)])
    ceiling = newest_id(audit_engine)
    log.append_many_sync([rec(100, system="vehicles")])  # after the export began
    f = parse_filters({"system": "vehicles"})
    assert count_matching(audit_engine, f, ceiling) == 12
    rows = list(iter_matching(audit_engine, f, ceiling, batch=5))
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    assert "req-100" not in {r["request_id"] for r in rows}
    keys = [(r["ts"], r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)  # the console's order, across batches
    # the same records as the console's pages, in the same order
    pages: list[Any] = []
    page = query_records(audit_engine, parse_filters({"system": "vehicles", "limit": "5"}))
    while True:
        pages += [r["id"] for r in page.records if r["id"] <= ceiling]
        if page.next_cursor is None:
            break
        page = query_records(audit_engine, parse_filters(
            {"system": "vehicles", "limit": "5", "cursor": page.next_cursor}))
    assert pages == [r["id"] for r in rows]
    assert newest_id(audit_engine) == ceiling + 1
    assert count_matching(audit_engine, f, 0) == 0


def test_record_position_links_and_checkpoint(make_log: Callable[..., AuditLog],
                                              audit_engine: sa.Engine) -> None:
    log = make_log(clock=lambda: T0, writer_id="gw-test")
    log.append_many_sync([rec(i) for i in range(3)])
    log.checkpoint_sync()
    log.append_many_sync([rec(3)])
    ids = [r["id"] for r in query_records(audit_engine, parse_filters({})).records][::-1]
    first, second, _, last = (record_position(audit_engine, i) for i in ids)
    assert first is not None and second is not None and last is not None
    assert first.writer == "gw-test" and first.hash_name == "sha256"
    assert first.record["seq"] == 1 and first.previous is None and first.prev_ok is None
    assert first.hash_ok and first.next_ok is True and first.next is not None
    assert second.prev_ok is True and second.previous is not None
    assert second.previous.hash == first.record["hash"] == second.record["prev_hash"]
    assert second.checkpoint is not None and second.checkpoint["head_seq"] == 3
    assert last.next is None and last.next_ok is None and last.checkpoint is None
    assert record_position(audit_engine, 10_000) is None

    # a changed field: the stored hash no longer matches; a changed hash breaks both links
    with audit_engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET outcome='deny' WHERE id=:i"),
                     {"i": ids[1]})
    changed = record_position(audit_engine, ids[1])
    assert changed is not None and not changed.hash_ok and changed.prev_ok
    with audit_engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET hash='00' WHERE id=:i"), {"i": ids[0]})
    after = record_position(audit_engine, ids[1])
    assert after is not None and after.prev_ok is False
    assert after.to_dict()["previous"]["id"] == ids[0]


def test_checkpoints_listed_newest_first_with_their_signatures(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, keys: KeyService) -> None:
    log = make_log(clock=lambda: T0)
    for i in range(4):
        log.append_many_sync([rec(i)])
        log.checkpoint_sync()
    cps = list_checkpoints(audit_engine, limit=3)
    assert [c.seq for c in cps] == [4, 3, 2]
    assert [c.seq for c in list_checkpoints(audit_engine, before=2)] == [1]
    assert all(signature_ok(c, keys) for c in cps)
    with audit_engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_checkpoints SET signature='AAAA' WHERE seq=3"))
        conn.execute(sa.text("UPDATE audit_checkpoints SET payload=payload || ' ' WHERE seq=2"))
    by_seq = {c.seq: signature_ok(c, keys) for c in list_checkpoints(audit_engine)}
    assert by_seq == {4: True, 3: False, 2: False, 1: True}
