"""Monthly partitions of audit_records on PostgreSQL (migration 0021_audit_partitions,
audit/partitions.py): the migration keeps every row and the chains verify, up and down;
a month with no partition fills DEFAULT until ``govgate audit partitions --ensure``
moves it; a month's query reads that month only; a purge drops whole months."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from audit import AuditLog
from audit.partitions import DEFAULT, is_partitioned, partitions
from audit.query import QueryFilter, build_query, query_records
from audit.tables import records
from audit.verify import keyservice_sigcheck, verify_database
from gateway.cli.main import cli as govgate
from gateway.services import key_service, master_key
from gateway.settings import Settings
from gateway.storage import _alembic_config, create_engine, write_transaction
from keys import FileMasterKey, KeyService, get_profile
from tests.audit.conftest import rec
from tests.conftest import PG_URL

on_postgresql = pytest.mark.skipif(
    not PG_URL, reason="monthly partitions exist on PostgreSQL only; SQLite keeps one table")

# two chains, a record each on these days (noon UTC): March and April 2025 whole,
# May on both sides of the 12th, June
DAYS = ("2025-03-05", "2025-03-20", "2025-04-05", "2025-04-20", "2025-05-05", "2025-05-20",
        "2025-06-05")
MONTHS = ("202503", "202504", "202505", "202506")


def _s(day: str) -> float:
    return datetime.fromisoformat(day + "T12:00:00+00:00").timestamp()


def write_days(engine: sa.Engine, keys: Any) -> None:
    now = [0.0]
    logs = [AuditLog(engine, keys=keys, writer_id=w, checkpoint_every=3, clock=lambda: now[0])
            for w in ("wa", "wb")]
    for i, day in enumerate(DAYS):
        now[0] = _s(day)
        for log in logs:
            log.append_sync(rec(i, actor_user=log.writer_id))
    for log in logs:
        log.close_sync()


def stored(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(records).order_by(records.c.id))]


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(table)))
                   .scalar_one())


def _to(engine: sa.Engine, target: str, down: bool = False) -> None:
    with write_transaction(engine) as conn:
        (command.downgrade if down else command.upgrade)(_alembic_config(conn), target)


@pytest.fixture
def cli(settings: Settings, engine: sa.Engine, env: dict[str, str]) -> dict[str, Any]:
    """The migrated database with DAYS written (into DEFAULT: no month of 2025 has a
    partition), and the CLI's environment."""
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, engine, master_key(settings, env))
    ks.bootstrap()
    write_days(engine, ks)
    return {"env": env, "engine": engine, "keys": ks}


ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"}


def run(cli: dict[str, Any], *args: str, lang: dict[str, str] | None = None) -> Any:
    r = CliRunner().invoke(govgate, ["audit", *args], env={**cli["env"], **(lang or {})},
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def intact(engine: sa.Engine, keys: Any) -> None:
    rep = verify_database(engine, keyservice_sigcheck(keys))
    assert rep.ok, rep.problems


@on_postgresql
def test_migration_up_and_down_keeps_every_record(empty_db_url: str, tmp_path: Path) -> None:
    engine = create_engine(empty_db_url)
    try:
        _to(engine, "0025_audit_usage_status")  # 0008 and the rollup today's writer needs
        keys = KeyService(engine, FileMasterKey.create(tmp_path / "master.key"),
                          get_profile("standard"))
        keys.bootstrap()
        write_days(engine, keys)
        before = stored(engine)
        _to(engine, "0021_audit_partitions")
        with engine.connect() as conn:
            assert is_partitioned(conn)
            names = [p.name for p in partitions(conn)]
        assert {f"audit_records_p{m}" for m in MONTHS} <= set(names)
        assert names[-1] == DEFAULT and count(engine, DEFAULT) == 0
        assert count(engine, "audit_records_p202505") == 4
        assert stored(engine) == before
        intact(engine, keys)
        # the writer goes on: the id sequence is the old one, the chain continues
        log = AuditLog(engine, keys=keys, writer_id="wa", clock=lambda: _s("2025-06-06"))
        log.append_sync(rec(99))
        log.close_sync()
        after = stored(engine)
        assert after[:-1] == before and after[-1][0] > before[-1][0]
        intact(engine, keys)
        _to(engine, "0008_audit_partial_indexes", down=True)
        with engine.connect() as conn:
            assert not is_partitioned(conn) and partitions(conn) == []
            assert sa.inspect(conn).get_unique_constraints("audit_records")[0][
                "column_names"] == ["chain_id", "seq"]
        assert stored(engine) == after
        intact(engine, keys)
    finally:
        engine.dispose()


@on_postgresql
def test_a_month_without_partition_fills_default_until_ensure_moves_it_then_is_read_alone(
        cli: dict[str, Any]) -> None:
    engine = cli["engine"]
    assert count(engine, DEFAULT) == 2 * len(DAYS)
    r = run(cli, "partitions", "--ensure")
    created = ", ".join(f"audit_records_p{m}" for m in MONTHS)
    assert r.output.startswith(f"created 4 month partitions ({created}); moved 14 records out "
                               "of the DEFAULT partition\n"), r.output
    assert "2025-05\taudit_records_p202505\t4\n" in r.output
    assert f"default\t{DEFAULT}\t0\n" in r.output
    assert count(engine, DEFAULT) == 0
    intact(engine, cli["keys"])
    # nothing left to do; the --ensure itself is audited
    assert run(cli, "partitions", "--ensure", lang=ZH).output.startswith(
        "新建了 0 个月分区（-），从 DEFAULT 分区移出 0 条记录\n")
    page = query_records(engine, QueryFilter(event_type="audit_partitions"))
    assert [r["extra"]["moved"] for r in page.records] == [0, 14]

    # a month's query (the auditors' query code: build_query) reads that month only
    may = QueryFilter(since=int(_s("2025-05-01") * 1000) - 12 * 3600_000,
                      until=int(_s("2025-06-01") * 1000) - 12 * 3600_000)
    assert len(query_records(engine, may).records) == 4
    assert read(engine, may) == {"audit_records_p202505"}
    assert read(engine, QueryFilter(since=may.since, until=may.until, system="vehicles",
                                    text="grant")) == {"audit_records_p202505"}
    # and the plan reading does see more than one
    assert read(engine, QueryFilter(since=may.since - 86400_000, until=may.until)) == {
        "audit_records_p202504", "audit_records_p202505"}

    # the weaker key (chain_id, seq, ts) lets a repeated seq in with another ts; verify
    # still refuses the chain
    names = [c.name for c in records.columns if c.name != "id"]
    later = [records.c[n] + 1 if n == "ts" else records.c[n] for n in names]
    with engine.begin() as conn:
        chain, seq = conn.execute(sa.select(records.c.chain_id, records.c.seq)
                                  .where(records.c.actor_user == "wa")
                                  .order_by(records.c.id).offset(1).limit(1)).one()
        conn.execute(sa.insert(records).from_select(names, sa.select(*later).where(
            records.c.chain_id == chain, records.c.seq == seq)))
    assert count(engine, "audit_records") == 17
    rep = verify_database(engine, keyservice_sigcheck(cli["keys"]))
    assert not rep.ok and f"seq={seq}" in str(rep.first_problem), rep.problems


def read(engine: sa.Engine, f: QueryFilter) -> set[str]:
    """The partitions PostgreSQL's plan of the auditors' query ``f`` reads."""
    stmt = build_query(f).compile(engine)
    with engine.connect() as conn:
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(stmt), stmt.params))
    return set(re.findall(r"\bon (audit_records_(?:p\d{6}|default))\b", plan))


@on_postgresql
def test_purge_drops_whole_months_and_the_chains_verify(cli: dict[str, Any],
                                                        tmp_path: Path) -> None:
    run(cli, "partitions", "--ensure")
    engine = cli["engine"]
    arc = str(tmp_path / "arc")
    run(cli, "export", "--until", "2025-05-12", "--to", arc)
    r = run(cli, "purge", "--until", "2025-05-12", "--archive", arc)
    assert r.output.startswith("purged 10 records from 2 chains; sealing record "), r.output
    assert r.output.endswith("dropped 2 whole month partitions: audit_records_p202503, "
                             "audit_records_p202504\n")
    with engine.connect() as conn:
        names = {p.name for p in partitions(conn)}
    assert {"audit_records_p202505", "audit_records_p202506"} <= names
    assert not names & {"audit_records_p202503", "audit_records_p202504"}
    assert count(engine, "audit_records_p202505") == 2  # the 20th stays; the 5th went row-wise
    intact(engine, cli["keys"])
    assert run(cli, "verify").output.startswith("audit log intact: 7 records, 3 chains")


@pytest.mark.skipif(bool(PG_URL), reason="the SQLite answer; PostgreSQL's is tested above")
def test_sqlite_has_nothing_to_partition(cli: dict[str, Any]) -> None:
    r = run(cli, "partitions", "--ensure")
    assert r.output == "SQLite keeps the audit records in one table; nothing to partition\n"
    assert run(cli, "partitions", lang=ZH).output == "SQLite 将审计记录存于一张表中，无需分区\n"
