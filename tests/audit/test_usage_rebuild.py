"""``govgate audit stats --rebuild``: the usage rollup recomputed from the records, day by
day, after it went wrong (rows lost, a count off, a day that had no records); audited as
an admin change; idempotent; days whose records were purged keep their rows; bad input
a one-line usage error; an unreadable purge seal refuses (fails closed)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audit import AuditLog, AuditRecord
from audit.tables import anchors, records, usage
from audit.usage_rebuild import rebuild_usage
from audit.writer import usage_statement
from gateway.cli.main import cli
from gateway.services import Services, key_service, master_key
from gateway.settings import Settings
from keys import FileMasterKey
from tests.audit.conftest import rec
from tests.oauth2.helpers import audit_events, close_services, make_services

DAY_MS = 86_400_000


def label(day: int) -> str:
    """``YYYY-MM-DD`` of a day number (UTC days since 1970-01-01)."""
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[Services, int]]:
    services = make_services(settings)
    today = int(services.clock().timestamp() * 1000) // DAY_MS
    first = (today - 3) * DAY_MS + 3_600_000  # three days ago, 01:00 UTC
    services.audit.append_many_sync([
        rec(1, ts=first, status=200), rec(2, ts=first + 1, status=404),
        rec(3, ts=first + 2, event_type="forward_auth", status=200),
        rec(4, ts=first + 3, outcome="deny", status=403, department=None),
        rec(5, ts=first + DAY_MS, status=200), rec(6, ts=first + DAY_MS + 1, status=500),
    ])
    yield services, today
    close_services(services)


def kinds(services: Services) -> list[tuple[Any, ...]]:
    with services.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(sa.select(usage)))


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, ["audit", "stats", *args], env=env)


def test_rebuild_recomputes_each_day_from_the_records(
        world: tuple[Services, int], env: dict[str, str]) -> None:
    services, today = world
    right = kinds(services)
    d0, d1, gap = label(today - 3), label(today - 2), label(today - 1)
    with services.engine.begin() as conn:  # what a restore or a bug leaves
        conn.execute(sa.delete(usage).where(usage.c.day == d0))
        conn.execute(sa.update(usage).where(usage.c.day == d1).values(count=99))
        conn.execute(sa.insert(usage).values(
            day=gap, system="vehicles", resource="", department="czt",
            event_type="proxy_request", outcome="allow", status_class="2xx", count=5))
    assert kinds(services) != right
    out = run(env, "--rebuild", "--until", gap)
    assert out.exit_code == 0, out.output
    assert f"{d0}: rebuilt from the records (0 before, 4 now)" in out.output
    assert f"{d1}: rebuilt from the records (198 before, 2 now)" in out.output
    assert f"{gap}: rebuilt from the records (5 before, 0 now)" in out.output
    rows = [r for r in kinds(services) if r[0] <= gap]
    assert rows == [r for r in right if r[0] <= gap]
    # the figures people read, by kind
    stats = run(env, "--by", "day,kind", "--since", d0, "--until", d1, "--format", "jsonl")
    assert [json.loads(line) for line in stats.output.splitlines()] == [
        {"day": d0, "kind": "delivered", "count": 1},
        {"day": d0, "kind": "not_delivered", "count": 1},
        {"day": d0, "kind": "unconfirmed", "count": 1},
        {"day": d0, "kind": "unauthenticated", "count": 1},
        {"day": d1, "kind": "delivered", "count": 1},
        {"day": d1, "kind": "not_delivered", "count": 1}]
    (change,) = [json.loads(e["extra"]) for e in audit_events(services, "admin_change")
                 if json.loads(e["extra"]).get("change") == "usage_rebuilt"]
    assert change["rebuilt"] == [d0, d1, gap] and change["kept"] == []
    assert (change["before"], change["after"]) == (5 + 198, 6)

    again = run(env, "--rebuild", "--since", d0, "--until", gap)  # idempotent
    assert again.exit_code == 0, again.output
    assert "rebuilt from" not in again.output and "0 rebuilt, 3 unchanged" in again.output
    assert [r for r in kinds(services) if r[0] <= gap] == rows
    zh = CliRunner().invoke(cli, ["audit", "stats", "--rebuild", "--since", d0, "--until", d0],
                            env={**env, "LANG": "zh_CN.UTF-8"})
    assert "重算 0 天，无变化 1 天" in zh.output, zh.output


def test_purged_days_keep_their_rows_and_an_unreadable_seal_refuses(
        world: tuple[Services, int], env: dict[str, str]) -> None:
    services, today = world
    d0, d1 = label(today - 3), label(today - 2)
    until = (today - 2) * DAY_MS + 3_600_000 + 1  # the purge cut into d1
    # the state a purge leaves: records before --until gone, a signed seal naming it, an
    # anchor pointing at the seal (audit.archive.purge)
    seal = services.audit.append_sync(AuditRecord(
        event_type="audit_purge", outcome="success", reason="purged",
        extra={"until": until, "anchors": {}}))
    with services.engine.begin() as conn:
        conn.execute(sa.delete(records).where(records.c.ts < until))
        conn.execute(sa.insert(anchors).values(
            chain_id=seal.chain_id, seq=1, hash="h", seal_chain=seal.chain_id,
            seal_seq=seal.seq, archive="a" * 64, created_at=0))
    def rollup() -> list[tuple[Any, ...]]:  # the days before today (the CLI's own
        return [r for r in kinds(services) if r[0] <= d1]  # audit records count today)

    right = rollup()
    assert right
    out = run(env, "--rebuild", "--since", d0, "--until", d1)
    assert out.exit_code == 0, out.output
    assert f"{d0}: kept as it was, 4 (its records were purged" in out.output
    assert f"{d1}: kept as it was, 2" in out.output
    assert "2 kept (records purged)" in out.output
    assert rollup() == right  # d1 still counts the purged 200

    with services.engine.begin() as conn:  # the seal unreadable: which days are whole?
        conn.execute(sa.update(anchors).values(seal_seq=seal.seq + 1000))
    refused = run(env, "--rebuild")
    assert refused.exit_code == 1
    assert "cannot be read" in refused.output and len(refused.output.splitlines()) == 1
    assert rollup() == right


def test_bad_input_is_one_line(env: dict[str, str]) -> None:
    for args in (("--rebuild", "--since", "2026-02-30"),
                 ("--rebuild", "--since", "2026-12-05", "--until", "2026-12-01"),
                 ("--rebuild", "--system", "vehicles")):
        out = run(env, *args)
        assert out.exit_code == 2, out.output
        assert "Traceback" not in out.output and out.output.count("Error") == 1


def test_a_writer_committing_meanwhile_is_counted_once(engine: sa.Engine) -> None:
    """A writer's transaction (a record and its +1 to the rollup) open while a wrong day
    is rebuilt: the rebuild waits for it and counts its record; without the wait, its
    +1 would be deleted with the wrong row and its record never counted."""
    now = int(time.time() * 1000)
    today = label(now // DAY_MS)
    up = usage_statement(engine.dialect)
    key = {"day": today, "system": "vehicles", "resource": "", "department": "czt",
           "event_type": "proxy_request", "outcome": "allow", "status_class": "2xx"}

    def write(conn: sa.Connection, seq: int) -> None:
        conn.execute(sa.insert(records).values(
            chain_id="c1", seq=seq, prev_hash="0", hash=str(seq), ckpt=0, ts=now,
            event_type="proxy_request", outcome="allow", department="czt",
            system="vehicles", status=200, items="[]", extra="{}"))
        conn.exec_driver_sql(up.sql, [up.params({**key, "count": 1})])

    with engine.begin() as conn:
        write(conn, 1)
        conn.execute(sa.update(usage).values(count=99))  # what a bug left
    writer = engine.execution_options(govgate_write=True).connect()
    tx = writer.begin()
    write(writer, 2)
    done: list[Any] = []
    rebuild = threading.Thread(target=lambda: done.append(
        rebuild_usage(engine, since=today, until=today)))
    rebuild.start()
    deadline = time.monotonic() + 5
    if engine.dialect.name == "postgresql":  # until the rebuild waits for the writer
        with engine.connect() as conn:
            while not conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%audit_usage_daily%'")).scalar_one():
                assert time.monotonic() < deadline
                conn.rollback()  # pg_stat_activity is read once per transaction
                time.sleep(0.01)
    else:  # SQLite: its writer transaction waits on ours (busy timeout)
        time.sleep(0.1)
    tx.commit()
    writer.close()
    rebuild.join(5)
    assert done and [d.state for d in done[0]] == ["rebuilt"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(usage.c["count"])).scalars().all() == [2]


def test_after_a_real_purge_the_days_it_cut_keep_their_rows(
        settings: Settings, engine: sa.Engine, env: dict[str, str], tmp_path: Path) -> None:
    """``govgate audit export`` and ``purge`` up to 05:00 of a day 299 days ago: that day
    and the one before keep their rows (nothing left to recompute them from), the day
    after is rebuilt from its records."""
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, engine, master_key(settings, env))
    ks.bootstrap()
    first = (int(time.time() * 1000) // DAY_MS - 300) * DAY_MS + 10 * 3_600_000  # 10:00
    now = [first / 1000]
    log = AuditLog(engine, keys=ks, writer_id="gw-1", checkpoint_every=3,
                   clock=lambda: now[0])
    for day in range(3):  # three records a day, each day signed by its checkpoint
        now[0] = (first + day * DAY_MS) / 1000
        log.append_many_sync([rec(3 * day + i, status=200) for i in range(3)])
    log.close_sync()
    days = [label((first + n * DAY_MS) // DAY_MS) for n in range(3)]
    with engine.begin() as conn:  # a bug: every count doubled
        conn.execute(sa.update(usage).values(count=usage.c["count"] * 2))
    until = f"{days[1]}T05:00:00Z"
    r = CliRunner().invoke(cli, ["audit", "export", "--until", until, "--to",
                                 str(tmp_path / "arc")], env=env)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["audit", "purge", "--until", until, "--archive",
                                 str(tmp_path / "arc")], env=env)
    assert r.exit_code == 0, r.output
    out = run(env, "--rebuild", "--since", days[0], "--until", days[2])
    assert out.exit_code == 0, out.output
    assert f"{days[0]}: kept as it was, 6" in out.output
    assert f"{days[1]}: kept as it was, 6" in out.output
    assert f"{days[2]}: rebuilt from the records (6 before, 3 now)" in out.output
    with engine.connect() as conn:
        counts = dict(conn.execute(sa.select(usage.c.day, sa.func.sum(usage.c["count"]))
                                   .where(usage.c.day.in_(days)).group_by(usage.c.day)).all())
    assert {d: int(n) for d, n in counts.items()} == {days[0]: 6, days[1]: 6, days[2]: 3}
