"""The group-commit writer: batching, failure without forks, leases, restarts, processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from audit import AuditLog, AuditWriteError
from audit.tables import chains, checkpoints, records
from audit.verify import keyservice_sigcheck, verify_database
from keys import GM
from tests.audit.conftest import rec

ROOT = Path(__file__).resolve().parents[2]


def verify_ok(engine: sa.Engine, keys: Any):
    rep = verify_database(engine, keyservice_sigcheck(keys))
    assert rep.ok, [str(p) for p in rep.problems]
    return rep


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


async def test_concurrent_appends_are_batched(make_log: Callable[..., AuditLog],
                                              audit_engine: sa.Engine, keys: Any) -> None:
    log = make_log(checkpoint_every=100)
    commits = 0

    def on_commit(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    event.listen(audit_engine, "commit", on_commit)
    stored = await asyncio.gather(*[log.append(rec(i)) for i in range(400)])
    event.remove(audit_engine, "commit", on_commit)
    assert sorted(s.seq for s in stored) == list(range(1, 401))
    assert len({s.chain_id for s in stored}) == 1
    assert commits < 100  # group commit: far fewer transactions than records
    await log.close()
    rep = verify_ok(audit_engine, keys)
    assert rep.records == 400 and rep.checkpoints >= 1


async def test_the_next_commit_takes_every_append_waiting_and_a_cancelled_one_too(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, keys: Any) -> None:
    """Group commit: the appends made while a commit runs all go into the next one,
    however many (below max_batch). Their waiters share one future: one of them
    cancelled leaves the others' answers alone, and its record is written with them."""
    log = make_log()
    await log.append(rec(0))
    entered, gate = threading.Event(), threading.Event()
    inserts: list[int] = []

    def hold(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.startswith("INSERT INTO audit_records"):
            inserts.append(len(params) if isinstance(params, list) else 1)
            if not gate.is_set():
                entered.set()
                gate.wait(10)

    event.listen(audit_engine, "before_cursor_execute", hold)
    try:
        first = asyncio.ensure_future(log.append(rec(1)))
        assert await asyncio.to_thread(entered.wait, 10)
        waiting = [asyncio.ensure_future(log.append(rec(i))) for i in range(2, 42)]
        await asyncio.sleep(0)  # every one of them has appended
        waiting[5].cancel()
        gate.set()
        results = await asyncio.gather(first, *waiting, return_exceptions=True)
    finally:
        gate.set()
        event.remove(audit_engine, "before_cursor_execute", hold)
    assert isinstance(results[6], asyncio.CancelledError)
    answered = [r for i, r in enumerate(results) if i != 6]
    assert [s.seq for s in answered] == [2, *range(3, 8), *range(9, 43)]
    assert inserts == [1, 40]  # the first one's commit, then all forty at once
    await log.close()
    rep = verify_ok(audit_engine, keys)
    assert rep.records == 42  # the cancelled waiter's record too


async def test_failed_commit_fails_every_waiter_and_leaves_no_gap(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, keys: Any) -> None:
    log = make_log()
    await log.append(rec(0))
    head = log.head
    fail = {"on": True}

    def boom(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if fail["on"] and statement.startswith("INSERT INTO audit_records"):
            raise RuntimeError("disk on fire")

    event.listen(audit_engine, "before_cursor_execute", boom)
    try:
        # append_durable (the proxy's: no StoredRecord) fails with its batch as append does
        results = await asyncio.gather(*[log.append(rec(i)) for i in range(20)],
                                       log.append_durable(rec(20)), return_exceptions=True)
    finally:
        fail["on"] = False
        event.remove(audit_engine, "before_cursor_execute", boom)
    assert len(results) == 21 and all(isinstance(r, AuditWriteError) for r in results)
    assert log.head == head
    after = await log.append(rec(99))
    assert after.seq == head[0] + 1 and after.prev_hash == head[1]
    assert await log.append_durable(rec(100)) is None
    assert log.head[0] == head[0] + 2
    await log.close()
    assert count(audit_engine, records) == 3
    verify_ok(audit_engine, keys)


async def test_closed_log_refuses(make_log: Callable[..., AuditLog]) -> None:
    log = make_log()
    await log.close()
    with pytest.raises(AuditWriteError):
        await log.append(rec(1))


def test_restart_continues_the_chain(make_log: Callable[..., AuditLog],
                                     audit_engine: sa.Engine, keys: Any) -> None:
    first = make_log(writer_id="gw-1")
    for i in range(5):
        first.append_sync(rec(i))
    first.close_sync()
    second = make_log(writer_id="gw-1")
    s = second.append_sync(rec(5))
    assert (s.chain_id, s.seq) == (first.chain_id, 6)
    second.close_sync()
    verify_ok(audit_engine, keys)


def test_live_lease_is_never_shared(make_log: Callable[..., AuditLog],
                                    audit_engine: sa.Engine, keys: Any) -> None:
    """A crashed writer's chain stays locked until its lease ends; then it is resumed."""
    now = [1_800_000_000.0]
    crashed = make_log(writer_id="gw-1", clock=lambda: now[0], lease_seconds=30)
    crashed.append_sync(rec(0))
    other = make_log(writer_id="gw-1", clock=lambda: now[0], lease_seconds=30)
    assert other.append_sync(rec(1)).chain_id != crashed.chain_id
    now[0] += 60
    other.append_sync(rec(9))  # the live writer renews its lease
    later = make_log(writer_id="gw-1", clock=lambda: now[0], lease_seconds=30)
    s = later.append_sync(rec(2))
    assert s.chain_id == crashed.chain_id and s.seq == 2
    # the stalled writer wakes up: it must not fork its old chain
    with pytest.raises(AuditWriteError):
        crashed.append_sync(rec(3))
    moved = crashed.append_sync(rec(4))
    assert moved.chain_id not in (crashed.chain_id, other.chain_id, s.chain_id) or moved.seq == 1
    for log in (crashed, other, later):
        log.close_sync()
    verify_ok(audit_engine, keys)


async def test_checkpoint_after_seconds(make_log: Callable[..., AuditLog],
                                        audit_engine: sa.Engine) -> None:
    now = [1_800_000_000.0]
    log = make_log(checkpoint_every=1000, checkpoint_seconds=5, clock=lambda: now[0])
    await log.append(rec(0))
    await asyncio.sleep(0.1)
    assert count(audit_engine, checkpoints) == 0
    now[0] += 6
    for _ in range(100):
        await asyncio.sleep(0.02)
        if count(audit_engine, checkpoints):
            break
    assert count(audit_engine, checkpoints) == 1
    await log.close()


def test_profile_switch_starts_a_new_chain(make_log: Callable[..., AuditLog],
                                           audit_engine: sa.Engine, keys: Any) -> None:
    std = make_log(writer_id="gw-1")
    std.append_sync(rec(0))
    std.close_sync()
    gm = make_log(writer_id="gw-1", profile=GM)
    s = gm.append_sync(rec(1))
    assert s.chain_id != std.chain_id and s.seq == 1
    gm.close_sync()
    with audit_engine.connect() as conn:
        algs = dict(conn.execute(sa.select(chains.c.chain_id, chains.c.hash_name)).all())
    assert algs == {std.chain_id: "sha256", gm.chain_id: "sm3"}
    verify_ok(audit_engine, keys)


WORKER = textwrap.dedent("""
    import asyncio, sys
    from audit import AuditLog, AuditRecord
    from gateway.storage import create_engine
    from keys import FileMasterKey, KeyService, get_profile

    url, master, name = sys.argv[1:4]
    engine = create_engine(url)
    ks = KeyService(engine, FileMasterKey(master), get_profile("standard"))

    async def main():
        log = AuditLog(engine, keys=ks, writer_id=name, checkpoint_every=50)
        async def one(i):
            await log.append(AuditRecord(event_type="proxy_request", outcome="allow",
                                         actor_user=name, request_id=f"{name}-{i}"))
        await asyncio.gather(*[one(i) for i in range(300)])
        await log.close()

    asyncio.run(main())
""")


@pytest.mark.slow
def test_two_processes_append_concurrently(db_url: str, audit_engine: sa.Engine, keys: Any,
                                           tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    master = str(tmp_path / "master.key")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, db_url, master, f"proc{i}"],
                              env=env, cwd=ROOT, stderr=subprocess.PIPE)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    rep = verify_ok(audit_engine, keys)
    assert rep.records == 600 and rep.chains == 2


def test_appends_from_two_event_loops(make_log: Callable[..., AuditLog],
                                      audit_engine: sa.Engine, keys: Any) -> None:
    """A test client runs its own loop; the log keeps one committer per loop."""
    log = make_log()
    a = asyncio.run(log.append(rec(1)))
    b = asyncio.run(log.append(rec(2)))
    assert (b.chain_id, b.seq) == (a.chain_id, a.seq + 1)
    log.close_sync()
    verify_ok(audit_engine, keys)
