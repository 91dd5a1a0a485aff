"""Audit log benchmark: durable appends (one per transaction vs group commit, 64 writers),
verification rate, and a filtered query page at 1,000,000 records, on SQLite, or on
PostgreSQL (a database of its own, dropped at the end; the records spread over a year:
appends measured in one table and in partitions, then the records in one table,
migrated to the monthly partitions of 0021_audit_partitions and measured again).

    .venv/bin/python bench/bench_audit.py [--records 1000000] [--appends 2000]
    .venv/bin/python bench/bench_audit.py [--skip-appends] \
        --database-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres
    .venv/bin/python bench/bench_audit.py --delegate-filter [--database-url ...]

``--delegate-filter``: only the user filter's pages (the record's user or the delegate
acting for them, ``extra.act.sub``) at head (on PostgreSQL its monthly partitions),
with the delegate's index (0032_edges_act_sub_index) by the page of now (the user's
half and the delegate's each in order, merged: ``audit.query.page_query``) and by the
one before (one ``OR``), then without the index by the one before (the base).
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402

from audit import AuditLog, AuditRecord  # noqa: E402
from audit.chain import RECORD_COLUMNS, hash_function, record_row  # noqa: E402
from audit.checkpoints import b64u, checkpoint_payload  # noqa: E402
from audit.query import parse_filters, query_records  # noqa: E402
from audit.verify import keyservice_sigcheck, verify_database  # noqa: E402
from gateway.storage import (  # noqa: E402
    _alembic_config,
    create_engine,
    upgrade,
    write_transaction,
)
from keys import FileMasterKey, KeyService, get_profile  # noqa: E402

WRITERS = 64
USERS = [f"user{i:03d}" for i in range(200)]
DELEGATES = [f"delegate{i:02d}" for i in range(20)]  # each acting for others only
DEPTS = ["czt", "jgswj", "fgw", "gxt", "sjj", "zjt", "rst", "jtt"]
SYSTEMS = ["vehicles", "assets", "office", "finance", "energy", "procurement"]
EVENTS = ["proxy_request"] * 8 + ["login", "token_issued"]


def sample(i: int, ts: int) -> AuditRecord:
    return AuditRecord(
        event_type=EVENTS[i % len(EVENTS)], outcome="deny" if i % 17 == 0 else "allow", ts=ts,
        actor_user=USERS[i % len(USERS)], actor_client="finance-system",
        department=DEPTS[i % len(DEPTS)], source_ip="10.0.0.7", system=SYSTEMS[i % len(SYSTEMS)],
        resource=f"JG-{i % 50:04d}", items=("plate_number", "driver_phone"), purpose="费用核算",
        reason=f"grant {i % 97}", status=200, latency_ms=12, request_id=f"req-{i}",
        req_hash="ab" * 32, resp_hash="cd" * 32, extra={
            "path": "/api/vehicles", "n": i,
            # one call in 50 a delegate's (委托), acting for the record's user
            **({"act": {"sub": DELEGATES[(i // 50) % len(DELEGATES)]}} if i % 50 == 0
               else {})})


def open_db(path: Path) -> tuple[sa.Engine, KeyService]:
    engine = create_engine(f"sqlite:///{path / 'govgate.db'}")
    upgrade(engine)
    ks = KeyService(engine, FileMasterKey.create(path / "master.key"), get_profile("standard"))
    ks.bootstrap()
    return engine, ks


async def appends(engine: sa.Engine, ks: KeyService, *, total: int, max_batch: int,
                  writer: str) -> float:
    log = AuditLog(engine, keys=ks, writer_id=writer, max_batch=max_batch)
    await log.start()
    per = total // WRITERS
    start = time.perf_counter()

    async def one(w: int) -> None:
        for i in range(per):
            await log.append(sample(w * per + i, int(time.time() * 1000)))

    await asyncio.gather(*[one(w) for w in range(WRITERS)])
    elapsed = time.perf_counter() - start
    await log.close()
    return per * WRITERS / elapsed


class _Sink:
    """Where generate() writes: SQLite through sqlite3, PostgreSQL through psycopg (COPY)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.pg = engine.dialect.name == "postgresql"
        if self.pg:
            # a connection of its own: the key ring signs through the engine's pool meanwhile
            url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self.con: Any = psycopg.connect(url)
        else:
            assert engine.url.database is not None
            self.con = sqlite3.connect(engine.url.database)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=OFF")

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self.con.execute(sql.replace("?", "%s") if self.pg else sql, params)

    def records(self, rows: list[tuple[Any, ...]]) -> None:
        cols = ",".join(RECORD_COLUMNS)
        if self.pg:
            with self.con.cursor() as cur, cur.copy(
                    f"COPY audit_records ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ",".join("?" * len(RECORD_COLUMNS))
            self.con.executemany(f"INSERT INTO audit_records ({cols}) VALUES ({marks})",  # noqa: S608
                                 rows)

    def close(self) -> None:
        self.con.execute("ANALYZE")
        self.con.commit()
        self.con.close()


def generate(engine: sa.Engine, ks: KeyService, n: int, chains: int = 4,
             checkpoint_every: int = 10_000, step_ms: int = 10) -> None:
    """``n`` valid chained records on ``chains`` chains, signed checkpoints in between,
    ``step_ms`` apart up to now."""
    con = _Sink(engine)
    hasher = hash_function("sha256")
    ids = [f"bench-{c}" for c in range(chains)]
    heads = {c: (0, "") for c in ids}
    t0 = int(time.time() * 1000) - n * step_ms
    for c in ids:
        con.execute("INSERT INTO audit_chains VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (c, "sha256", "bench", "x", 0, 0, "", 0, t0, "open"))
    ckpt, prev_cp = 0, ""
    batch: list[tuple[Any, ...]] = []
    for i in range(n):
        c = ids[i % chains]
        seq, prev = heads[c]
        row = record_row(sample(i, t0 + i * step_ms), chain_id=c, seq=seq + 1, prev_hash=prev,
                         ckpt=ckpt, hasher=hasher)
        heads[c] = (seq + 1, row["hash"])
        batch.append(tuple(row[k] for k in RECORD_COLUMNS))
        if (i + 1) % checkpoint_every == 0 or i + 1 == n:
            con.records(batch)
            batch.clear()
            ckpt += 1
            payload = checkpoint_payload(
                seq=ckpt, ts=t0 + i * step_ms, prev_hash=prev_cp, writer=ids[0],
                hash_name="sha256",
                heads={k: {"seq": s, "hash": h, "alg": "sha256"} for k, (s, h) in heads.items()})
            kid, sig = ks.sign("audit", payload.encode())
            prev_cp_new = hasher(payload.encode()).hex()
            con.execute("INSERT INTO audit_checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                        (ckpt, t0 + i * step_ms, prev_cp, prev_cp_new, "sha256", payload, kid,
                         b64u(sig), ids[0]))
            prev_cp = prev_cp_new
            con.con.commit()
    for c, (s, h) in heads.items():
        con.execute("UPDATE audit_chains SET head_seq=?, head_hash=?, last_ckpt=? "
                    "WHERE chain_id=?", (s, h, ckpt, c))
    con.close()


def page_latency(engine: sa.Engine, params: dict[str, str], runs: int = 30) -> tuple[float, float]:
    times = []
    f = parse_filters(params)
    for _ in range(runs):
        t = time.perf_counter()
        page = query_records(engine, f)
        times.append((time.perf_counter() - t) * 1000)
    assert page.records or params.get("user") == "nobody"
    nxt = parse_filters({**params, "cursor": page.next_cursor or ""})
    t = time.perf_counter()
    query_records(engine, nxt)
    return statistics.median(times), (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--appends", type=int, default=64 * 40, help="appends for one-per-transaction")
    ap.add_argument("--workdir", default=None,
                    help="keep the generated database here and reuse it on the next run")
    ap.add_argument("--skip-appends", action="store_true")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server (its database is only used to create one)")
    ap.add_argument("--delegate-filter", action="store_true")
    args = ap.parse_args()
    print(f"# audit benchmark  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
          f"python {platform.python_version()}  sqlite {sqlite3.sqlite_version}  "
          f"{platform.machine()}")
    if args.delegate_filter:
        delegate_filter(args.database_url, args.records, args.workdir)
        return
    if args.database_url:
        on_postgresql(args.database_url, args.records,
                      None if args.skip_appends else args.appends)
        return
    if not args.skip_appends:
        run_appends(args.appends)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        reuse = (work / "govgate.db").exists()
        if reuse:
            engine = create_engine(f"sqlite:///{work / 'govgate.db'}")
            ks = KeyService(engine, FileMasterKey(work / "master.key"), get_profile("standard"))
        else:
            engine, ks = open_db(work)
            t = time.perf_counter()
            generate(engine, ks, args.records)
            print(f"generated {args.records} chained records in {time.perf_counter() - t:.1f} s")
        verify_and_query(engine, ks, args.records)
        engine.dispose()


YEAR_MS = 365 * 86_400_000


@contextmanager
def pg_database(url: str, *, partitioned: bool) -> Iterator[tuple[sa.Engine, KeyService]]:
    """A new database on ``url``'s server at head (with 0021 downgraded unless
    ``partitioned``) and a key ring; dropped at the end."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = "bench_audit_" + secrets.token_hex(4)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = create_engine(
        sa.make_url(url).set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        if not partitioned:
            with write_transaction(engine) as conn:
                command.downgrade(_alembic_config(conn), "0021_audit_partitions-1")
                # the writer's usage rollup (0025, beside 0021) back on the one table
                command.upgrade(_alembic_config(conn), "0025_audit_usage_status")
        with tempfile.TemporaryDirectory() as tmp:
            ks = KeyService(engine, FileMasterKey.create(Path(tmp) / "master.key"),
                            get_profile("standard"))
            ks.bootstrap()
            yield engine, ks
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")


def on_postgresql(url: str, n: int, n_appends: int | None) -> None:
    """Appends in one table and in partitions (if ``n_appends``); then ``n`` records
    spread over a year, verified and queried in one table, migrated to monthly
    partitions (timed) and verified and queried again."""
    with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
        print(f"postgresql {conn.exec_driver_sql('SHOW server_version').scalar_one()}")
    if n_appends:
        for partitioned in (False, True):
            print("-- appends, " + ("monthly partitions" if partitioned else "one table"))
            with pg_database(url, partitioned=partitioned) as (engine, ks):
                measure_appends(engine, ks, n_appends)
    with pg_database(url, partitioned=False) as (engine, ks):
        step = YEAR_MS // n
        t = time.perf_counter()
        generate(engine, ks, n, step_ms=step)
        print(f"generated {n} chained records in {time.perf_counter() - t:.1f} s")
        print("-- one table (before 0021_audit_partitions)")
        verify_and_query(engine, ks, n, step)
        t = time.perf_counter()
        upgrade(engine)
        print(f"-- migrated to monthly partitions in {time.perf_counter() - t:.1f} s")
        verify_and_query(engine, ks, n, step)


def run_appends(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine, ks = open_db(Path(tmp))
        measure_appends(engine, ks, n)
        engine.dispose()


def measure_appends(engine: sa.Engine, ks: KeyService, n: int) -> None:
    single = asyncio.run(appends(engine, ks, total=n, max_batch=1, writer="one"))
    group = asyncio.run(appends(engine, ks, total=n * 10, max_batch=2000, writer="group"))
    print(f"appends, 64 writers, one per transaction : {single:9.0f} /s")
    print(f"appends, 64 writers, group commit        : {group:9.0f} /s  "
          f"({group / single:.1f}x)")


def verify_and_query(engine: sa.Engine, ks: KeyService, n: int, step_ms: int = 10) -> None:
    t, cpu = time.perf_counter(), time.process_time()
    rep = verify_database(engine, keyservice_sigcheck(ks))
    el, cpu = time.perf_counter() - t, time.process_time() - cpu
    assert rep.ok, rep.problems[:3]
    print(f"verify                                   : {rep.records / el:9.0f} records/s "
          f"({rep.records} records, {rep.checkpoints} checkpoints, {el:.1f} s wall, "
          f"{cpu:.1f} s CPU = {rep.records / cpu:.0f} records per CPU second)")
    for params in ({"user": "user042", "limit": "100"},
                   # the user filter's delegate half (extra.act.sub): a user who is only
                   # a delegate, and a name in no record (every record looked at)
                   {"user": "delegate07", "limit": "100"},
                   {"user": "nobody", "limit": "100"},
                   {"department": "czt", "event_type": "proxy_request", "limit": "100"},
                   {"system": "vehicles", "outcome": "deny", "limit": "100"},
                   {"since": str(int(time.time() * 1000) - n * step_ms // 2),
                    "limit": "100"},
                   {"since": str(_month(-n * step_ms // 2)),
                    "until": str(_month(-n * step_ms // 2, 1)), "limit": "100"},
                   {"text": "grant 42", "limit": "100"}):
        first, second = page_latency(engine, params)
        label = ",".join(f"{k}={v}" for k, v in params.items() if k != "limit")
        print(f"query page of 100 [{label[:34]:34}]: {first:6.1f} ms (next page "
              f"{second:.1f} ms)")


USER_PAGES = ("user042", "delegate07", "nobody")  # a user, a delegate only, no one


def delegate_filter(url: str | None, n: int, workdir: str | None) -> None:
    """The user filter's pages at head, then without the delegate's index, by the query
    of now and by the one before (``LIKE`` first)."""
    import audit.act_sub as act_sub_module
    import audit.query as query_module
    from audit.tables import records

    def old_acted_by(name: str) -> Any:
        return sa.and_(records.c.extra.like(act_sub_module.HAS_ACT),
                       act_sub_module.act_sub(records.c.extra) == name)

    def one_or(f: Any) -> Any:  # the page before: one OR of the two halves
        return query_module.build_query(f).limit(f.limit + 1)

    def pages(engine: sa.Engine, label: str) -> None:
        for user in USER_PAGES:
            first, second = page_latency(engine, {"user": user, "limit": "100"}, runs=5)
            print(f"{label:34} user={user:10}: {first:7.1f} ms (next page {second:.1f} ms)")

    def measure(engine: sa.Engine, ks: KeyService, step_ms: int) -> None:
        t = time.perf_counter()
        generate(engine, ks, n, step_ms=step_ms)
        print(f"generated {n} chained records in {time.perf_counter() - t:.1f} s")
        pages(engine, "with the index, two halves")
        now = query_module.page_query
        query_module.page_query = one_or  # type: ignore[attr-defined]
        pages(engine, "with the index, one OR")
        with write_transaction(engine) as conn:
            conn.exec_driver_sql("DROP INDEX ix_audit_records_act_sub")
        query_module.acted_by = old_acted_by  # type: ignore[attr-defined]
        pages(engine, "without it, one OR (the base)")
        query_module.page_query = now  # type: ignore[attr-defined]
        with write_transaction(engine) as conn:  # built again on the whole log, timed
            conn.exec_driver_sql("ANALYZE audit_records")
            t = time.perf_counter()
            conn.exec_driver_sql(
                "CREATE INDEX ix_audit_records_act_sub ON audit_records ("
                + ACT_SUB_SQL[engine.dialect.name] + ", ts, id) WHERE "
                + ACT_SUB_SQL[engine.dialect.name] + " IS NOT NULL")
            print(f"the index built on {n} records in {time.perf_counter() - t:.1f} s")

    if url:
        with sa.create_engine(url, poolclass=sa.pool.NullPool).connect() as conn:
            print(f"postgresql {conn.exec_driver_sql('SHOW server_version').scalar_one()}, "
                  "monthly partitions")
        with pg_database(url, partitioned=True) as (engine, ks):
            measure(engine, ks, YEAR_MS // n)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        engine, ks = open_db(work)
        measure(engine, ks, 10)
        engine.dispose()


ACT_SUB_SQL = {"sqlite": "json_extract(extra, '$.act.sub')",
               "postgresql": "(CAST(extra AS jsonb) #>> '{act,sub}')"}


def _month(offset_ms: int, later: int = 0) -> int:
    """The first ms (UTC) of the month ``offset_ms`` from now, or ``later`` months on."""
    d = time.gmtime((time.time() * 1000 + offset_ms) / 1000)
    year, month = divmod(d.tm_mon - 1 + later, 12)
    return calendar.timegm((d.tm_year + year, month + 1, 1, 0, 0, 0)) * 1000


if __name__ == "__main__":
    main()
