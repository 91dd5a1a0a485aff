"""Journal mode: records durable in segment files, loaded into the tables by the indexer.

Real files and a real database (SQLite, or PostgreSQL with GOVGATE_TEST_DATABASE_URL,
where the indexer loads with COPY). The kill -9 of a real ``govgate serve`` is in
tests/faults/test_journal_crash.py.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from audit import AuditLog, AuditWriteError
from audit.chain import I_CHAIN, I_HASH, I_SEQ, RECORD_COLUMNS
from audit.indexer import Indexer
from audit.journal import FRAME, Journal, read_frames
from audit.journal_tables import metadata as journal_metadata
from audit.journal_tables import segments
from audit.journal_verify import verify_journal
from audit.tables import chains, records, usage
from gateway.metrics import Metrics
from gateway.services import audit_log
from gateway.settings import Settings
from gateway.web.api.audit import routes
from tests.audit.conftest import rec
from tests.audit.test_api import Parts, province_auditors
from tests.audit.test_writer import verify_ok
from tests.schema import assert_mirrors

Make = Callable[..., tuple[AuditLog, Indexer]]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal", segment_bytes=8000)


@pytest.fixture
def make(make_log: Callable[..., AuditLog], audit_engine: sa.Engine, journal: Journal) -> Make:
    """A journal-mode writer and its indexer (not started: the tests run its rounds)."""
    def build(**kw: Any) -> tuple[AuditLog, Indexer]:
        log = make_log(journal=journal, **kw)
        indexer = Indexer(audit_engine, journal, own=log.journal_position,
                          on_checkpoint=log.note_checkpoint)
        log.attach_indexer(indexer)
        return log, indexer
    return build


def stored(engine: sa.Engine) -> list[tuple[str, int, str | None]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            sa.select(records.c.chain_id, records.c.seq, records.c.request_id)
            .order_by(records.c.chain_id, records.c.seq))]


def journal_ok(engine: sa.Engine, journal: Journal) -> int:
    rep = verify_journal(engine, journal)
    assert rep.ok, [str(p) for p in rep.problems]
    return rep.frames


async def test_appends_are_durable_in_the_journal_and_indexed_behind(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any) -> None:
    log, indexer = make()
    await log.start()
    try:
        done = []
        for group in range(4):  # four batches at least: segments rotate between them
            done += await asyncio.gather(*[log.append(rec(i))
                                           for i in range(group * 30, group * 30 + 30)])
        assert [s.seq for s in done] == list(range(1, 121))
        chain = done[0].chain_id
        # durable before any table row: every acknowledged record is a whole frame
        frames = [row for p in journal.segments(chain) for _, row in read_frames(p)]
        assert [r[1] for r in frames] == list(range(1, 121))
        assert stored(audit_engine) == []
        await asyncio.to_thread(indexer.run_once)
        assert [s[1] for s in stored(audit_engine)] == list(range(1, 121))
        # the chain's head and the usage figures follow the load
        with audit_engine.connect() as conn:
            head = conn.execute(sa.select(chains.c.head_seq).where(
                chains.c.chain_id == chain)).scalar_one()
            count = conn.execute(sa.select(sa.func.sum(usage.c.count))).scalar_one()
        assert (head, count) == (120, 120)
        # small segments: more than one, each with its watermark at its end
        with audit_engine.connect() as conn:
            marks = conn.execute(sa.select(segments.c.offset, segments.c.last_seq)
                                 .order_by(segments.c.first_seq)).fetchall()
        assert len(marks) == len(journal.segments(chain)) > 1
        assert marks[-1].last_seq == 120
    finally:
        await log.close()
    verify_ok(audit_engine, keys)
    # closed: the last round loaded all, a checkpoint covered it, loaded segments went
    assert len(journal.segments(chain)) == 1
    assert journal_ok(audit_engine, journal) < 120
    # the chain is nobody's now: another process's indexer removes its last segment too,
    # and a writer resuming the chain continues from the tables' head
    assert Indexer(audit_engine, journal).run_once() == 0
    assert journal.segments(chain) == []
    assert chain not in journal.chain_ids()  # its directory (lock, probe) gone with them
    again, _ = make()
    assert (again.append_sync(rec(0)).chain_id, again.head[0]) == (chain, 121)
    again.close_sync()
    verify_ok(audit_engine, keys)
    assert journal_ok(audit_engine, journal) == 1


async def test_a_torn_frame_is_cut_and_the_chain_resumes_from_the_journal_tail(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any) -> None:
    log, _ = make()
    first = [log.append_sync(rec(i)) for i in range(5)]
    chain = first[0].chain_id
    # the process dies, then a frame half-written by the kill (never acknowledged)
    _die(log, audit_engine)
    last = journal.segments(chain)[-1]
    size = last.stat().st_size
    with open(last, "ab") as f:
        f.write(FRAME.pack(500, 0) + b'["' + chain.encode())
    log2, indexer2 = make()
    assert log2.append_sync(rec(99)).seq == 6  # after the journal's tail, not the table's
    assert log2.chain_id == chain
    assert [r[1] for _, r in read_frames(last)] == [1, 2, 3, 4, 5, 6]
    assert last.stat().st_size > size  # the torn bytes replaced, not kept
    indexer2.run_once()
    assert [s[1] for s in stored(audit_engine)] == [1, 2, 3, 4, 5, 6]
    log2.close_sync()
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


async def test_replaying_the_indexer_adds_nothing_twice(
        make: Make, audit_engine: sa.Engine, journal: Journal) -> None:
    log, indexer = make()
    for i in range(30):
        log.append_sync(rec(i))
    chain = log.chain_id
    assert chain is not None
    path = journal.segments(chain)[0]
    frames = list(read_frames(path))
    # a crash after loading the first ten but before the watermark moved: their load
    # and the watermark are one transaction, so replay it as the next process would
    # with the watermark forgotten
    indexer.load(chain, 1, [r for _, r in frames[:10]], frames[9][0])
    with audit_engine.begin() as conn:
        conn.execute(sa.delete(segments))
    fresh = Indexer(audit_engine, journal, own=log.journal_position)
    assert fresh.run_once() == 30 - 10
    assert fresh.run_once() == 0
    with audit_engine.begin() as conn:
        conn.execute(sa.delete(segments))
    assert Indexer(audit_engine, journal, own=log.journal_position).run_once() == 0
    rows = stored(audit_engine)
    assert [s[1] for s in rows if s[0] == chain] == list(range(1, 31))
    with audit_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.sum(usage.c.count))).scalar_one() == 30


async def test_verify_finds_the_journal_and_the_tables_apart(
        make: Make, audit_engine: sa.Engine, journal: Journal) -> None:
    log, indexer = make()
    for i in range(12):
        log.append_sync(rec(i))
    indexer.run_once()
    chain = log.chain_id
    assert journal_ok(audit_engine, journal) == 12

    def first_problem() -> str:
        rep = verify_journal(audit_engine, journal)
        assert not rep.ok
        return f"{rep.problems[0].kind}: {rep.problems[0]}"

    # a record in the table the journal never had
    with audit_engine.begin() as conn:
        row = conn.execute(sa.select(records).where(records.c.seq == 12)).mappings().one()
        conn.execute(sa.insert(records).values(
            {**{k: v for k, v in row.items() if k != "id"}, "seq": 13}))
    assert first_problem() == (f"inserted: record chain={chain} seq=13: "
                               "in the table but not in the journal")
    with audit_engine.begin() as conn:
        conn.execute(sa.delete(records).where(records.c.seq == 13))
    assert journal_ok(audit_engine, journal) == 12
    with audit_engine.begin() as conn:
        conn.execute(sa.update(records).where(records.c.seq == 4)
                     .values(reason="something else"))
    assert first_problem() == (f"changed: record chain={chain} seq=4: "
                               "the table's record differs from the journal's")
    with audit_engine.begin() as conn:
        conn.execute(sa.delete(records).where(records.c.seq == 4))
    assert first_problem() == (f"missing: record chain={chain} seq=4: "
                               "in the journal below its watermark but not in the table")


async def test_a_full_disk_fails_the_batch_and_leaves_no_gap(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    log, indexer = make()
    await log.start()
    try:
        await log.append(rec(1))
        real, real_pwrite = os.write, os.pwrite

        def full(fd: int, data: Any, *at: int) -> int:
            # part of a frame reaches the file, then no space
            real_pwrite(fd, bytes(data[:7]), *at) if at else real(fd, bytes(data[:7]))
            raise OSError(errno.ENOSPC, "No space left on device")

        def full_v(fd: int, buffers: list[Any], at: int, *flags: int) -> int:
            return full(fd, buffers[0], at)  # the batch's write with RWF_DSYNC

        monkeypatch.setattr("audit.journal.os.write", full)
        monkeypatch.setattr("audit.journal.os.pwrite", full)
        monkeypatch.setattr("audit.journal.os.pwritev", full_v)
        with pytest.raises(AuditWriteError, match="No space left"):
            await log.append(rec(2))
        with pytest.raises(AuditWriteError):
            await asyncio.to_thread(log.probe)
        monkeypatch.setattr("audit.journal.os.write", real)
        monkeypatch.setattr("audit.journal.os.pwrite", real_pwrite)
        monkeypatch.undo()
        await asyncio.to_thread(log.probe)
        assert (await log.append(rec(3))).seq == 2
        await asyncio.to_thread(indexer.run_once)
    finally:
        await log.close()
    assert [(s[1], s[2]) for s in stored(audit_engine)] == [(1, "req-1"), (2, "req-3")]
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


async def test_two_processes_keep_their_own_chains_and_files(
        make: Make, audit_engine: sa.Engine, journal: Journal) -> None:
    a, ia = make()
    b, ib = make()  # the same writer id, as two workers of one host
    a.append_sync(rec(1))
    b.append_sync(rec(2))
    assert a.chain_id != b.chain_id
    assert sorted(journal.chain_ids()) == sorted([a.chain_id, b.chain_id])
    # neither's indexer loads the other's live chain; each loads its own
    assert ia.run_once() == 1 and ib.run_once() == 1
    a.close_sync()
    b.close_sync()
    journal_ok(audit_engine, journal)


async def test_the_indexer_thread_loads_a_record_within_a_second(
        make: Make, audit_engine: sa.Engine) -> None:
    """What another process's reader sees: the tables, loaded by this process's
    indexer thread (no reader's round here)."""
    log, indexer = make()
    indexer.interval = 0.2
    await log.start()
    try:
        await log.append(rec(7, actor_user="li.si", request_id="r-journal"))
        appended = time.monotonic()
        while not stored(audit_engine):
            assert time.monotonic() - appended < 1.0
            await asyncio.sleep(0.05)
        assert [r[2] for r in stored(audit_engine)] == ["r-journal"]
    finally:
        await log.close()


async def test_the_auditors_api_reads_this_process_journal_first(
        make: Make, audit_engine: sa.Engine) -> None:
    """Read-your-writes: the query loads this process's journal before it reads, so a
    record appended here is in the answer whatever the indexer's interval."""
    log, indexer = make()
    indexer.interval = 3600  # no background round in this test
    await log.start()
    province_auditors(audit_engine)
    app = Starlette(routes=routes())
    app.state.gateway = Parts(audit_engine, log)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as client:
            await log.append(rec(8, actor_user="wang.wu", request_id="r-at-once"))
            r = await client.get("/api/v1/audit/records", params={"user": "wang.wu"},
                                 headers={"Authorization": "Bearer auditor"})
            assert r.status_code == 200
            assert [x["request_id"] for x in r.json()["records"]] == ["r-at-once"]
    finally:
        await log.close()


async def test_a_journal_behind_the_table_is_not_continued(
        make: Make, make_log: Callable[..., AuditLog], audit_engine: sa.Engine,
        journal: Journal, keys: Any) -> None:
    log, _ = make()
    chain = log.append_sync(rec(1)).chain_id
    log.close_sync()
    direct = make_log()  # database mode since: the same chain goes on in the table only
    assert (direct.append_sync(rec(2)).chain_id, direct.head[0]) == (chain, 2)
    direct.close_sync()
    again, _ = make()
    assert again.append_sync(rec(3)).chain_id != chain  # no fork of the journal's chain
    again.close_sync()
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


async def test_database_mode_loads_what_a_dead_journal_process_left_first(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any,
        tmp_path: Path) -> None:
    log, _ = make()
    chain = log.append_sync(rec(1)).chain_id
    log.append_sync(rec(2))
    _die(log, audit_engine)
    assert stored(audit_engine) == []  # acknowledged, in the journal only
    segment = journal.segments(chain)[-1]
    whole = segment.stat().st_size
    with open(segment, "ab") as f:
        f.write(FRAME.pack(90, 7))  # torn by the kill
    settings = Settings(home=tmp_path, audit_journal_dir="journal", audit_path="database")
    direct = audit_log(settings, audit_engine, keys, "test")
    assert [s[1] for s in stored(audit_engine)] == [1, 2]
    assert segment.stat().st_size == whole  # the dead chain's torn frame cut off
    direct.writer_id = "test-writer"  # the dead process's: it resumes the chain
    assert (direct.append_sync(rec(3)).chain_id, direct.head[0]) == (chain, 3)
    direct.close_sync()
    verify_ok(audit_engine, keys)


_KILLED_WRITER = """
import json, sys
from audit.chain import I_CHAIN, I_HASH, I_SEQ, RECORD_COLUMNS
from audit.journal import Journal
jw = Journal(sys.argv[1], segment_bytes=1 << 30).open_writer("c1")
seq = 1
while True:
    row = ["x" * 20] * len(RECORD_COLUMNS)
    row[I_CHAIN], row[I_SEQ], row[I_HASH] = "c1", seq, "h%d" % seq
    jw.append([json.dumps(row).encode()], first_seq=seq)
    print(seq, flush=True)  # acknowledged: durable
    seq += 1
"""


def _row(seq: int) -> bytes:
    row: list[Any] = ["y"] * len(RECORD_COLUMNS)
    row[I_CHAIN], row[I_SEQ], row[I_HASH] = "c1", seq, f"h{seq}"
    return json.dumps(row).encode()


def test_a_kill_9_leaves_the_preallocated_zeros_and_every_acknowledged_frame(
        tmp_path: Path) -> None:
    """The segment being written is preallocated (zeros fsynced ahead of the frames,
    which are then made durable with fdatasync): a real process appending is killed
    with SIGKILL; every frame it acknowledged is read back, the reader stops at the
    zeros, and the writer resuming the chain cuts them and continues after the last."""
    import signal
    import subprocess
    import sys

    root = tmp_path / "journal"
    with subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(root)],
                          stdout=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
                          ) as child:
        assert child.stdout is not None
        acknowledged = [int(child.stdout.readline()) for _ in range(200)]
        child.send_signal(signal.SIGKILL)
        child.wait()
        acknowledged += [int(line) for line in child.stdout.read().split()]
    journal = Journal(root)
    (segment,) = journal.segments("c1")
    frames = list(read_frames(segment))
    assert [row[I_SEQ] for _, row in frames][:len(acknowledged)] == acknowledged
    end = frames[-1][0]
    data = segment.read_bytes()
    assert len(data) > end and data.endswith(b"\0" * 64)  # the zeros ahead stay
    # between them and the last frame read, at most the frame the kill tore: a fatal
    # signal ends a write() between pages, so one unacknowledged frame may be part-written
    # (it failed once in CI on PostgreSQL's run: a frame's head and part of its row)
    torn = data[end:].rstrip(b"\0")
    assert len(torn) < 2 * end // len(frames), len(torn)
    jw = journal.open_writer("c1")
    assert jw is not None
    tail = jw.tail()
    assert tail is not None and tail.seq == len(frames)
    assert segment.stat().st_size == end  # the zeros cut, nothing of a frame
    jw.append([_row(tail.seq + 1)], first_seq=tail.seq + 1)
    jw.close()
    assert [row[I_SEQ] for _, row in read_frames(segment)] == list(range(1, tail.seq + 2))
    assert not segment.read_bytes().endswith(b"\0")  # closed: cut to its frames


async def test_a_killed_writers_preallocated_tail_is_loaded_and_verified(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any) -> None:
    """What kill -9 leaves in journal mode since segments are preallocated: the newest
    segment's frames, then zeros (and perhaps a frame torn inside them). The indexer
    of the next process loads every acknowledged record and cuts the rest; verify
    passes before and after; the chain resumes after its last record."""
    log, _ = make()
    acknowledged = [log.append_sync(rec(i)).seq for i in range(5)]
    chain = log.chain_id
    assert log._jw is not None and log._jw._fd is not None
    segment, end = log._jw.durable or (None, 0)
    assert segment is not None and segment.stat().st_size > end  # zeros ahead
    os.pwrite(log._jw._fd, FRAME.pack(500, 0) + b'["' + (chain or "").encode(), end)
    os.close(log._jw._fd)  # the process is gone: no clean close cut the zeros
    os.close(log._jw._lock_fd)
    log._jw = None
    log.closed = True
    with audit_engine.begin() as conn:
        conn.execute(sa.update(chains).values(lease_until=0))
    journal_ok(audit_engine, journal)
    _, indexer = make()
    assert indexer.run_once() == 5
    assert segment.stat().st_size == end  # the torn frame and the zeros cut
    assert [s[1] for s in stored(audit_engine)] == acknowledged
    journal_ok(audit_engine, journal)
    again, _ = make()
    assert again.append_sync(rec(9)).seq == 6 and again.chain_id == chain
    again.close_sync()
    verify_ok(audit_engine, keys)


def test_only_the_newest_segment_ends_in_zeros(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any) -> None:
    """The zeros are written ahead up to the segment's size at most, so a segment is
    full, and rotated, only past its last zero: the chain's older segments end with
    their last frame; the newest has zeros ahead of its frames until it is closed."""
    log, indexer = make()
    seqs = [log.append_sync(rec(i)).seq for i in range(60)]
    chain = log.chain_id or ""
    paths = journal.segments(chain)
    assert len(paths) > 2
    for path in paths[:-1]:
        assert list(read_frames(path))[-1][0] == path.stat().st_size
    newest = paths[-1]
    assert newest.stat().st_size > list(read_frames(newest))[-1][0]
    indexer.run_once()
    assert [s[1] for s in stored(audit_engine)] == seqs
    journal_ok(audit_engine, journal)
    log.close_sync()
    assert list(read_frames(newest))[-1][0] == newest.stat().st_size  # closed: cut
    verify_ok(audit_engine, keys)


def _die(log: AuditLog, engine: sa.Engine) -> None:
    """What kill -9 leaves: no indexing, the journal's lock gone with the process, the
    lease (here at once) run out."""
    assert log._jw is not None
    log._jw.close()
    log._jw = None
    log.closed = True
    with engine.begin() as conn:
        conn.execute(sa.update(chains).values(lease_until=0))


def test_migration_0021_mirrors_the_watermarks_table(audit_engine: sa.Engine) -> None:
    assert_mirrors(audit_engine, journal_metadata)


def test_the_background_rounds_load_in_paced_batches(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The thread's rounds load a few hundred records per transaction with a pause
    between (the event loop keeps the core); a reader's round loads all at once."""
    import audit.indexer as indexer_module

    journal = Journal(tmp_path / "big-journal")  # one segment for all of them
    log = make_log(journal=journal)
    indexer = Indexer(audit_engine, journal, own=log.journal_position,
                      on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    batches: list[int] = []
    pauses: list[float | None] = []
    real_load, real_wait = indexer.load, indexer._stop.wait
    monkeypatch.setattr(indexer, "load", lambda chain, first, rows, end: (
        batches.append(len(rows)), real_load(chain, first, rows, end))[1])
    monkeypatch.setattr(indexer._stop, "wait", lambda t=None: (pauses.append(t), real_wait(0))[1])
    n = 2 * indexer_module.PACED_BATCH + 40
    log.append_many_sync([rec(i) for i in range(n)])
    assert indexer.run_once(paced=True) == n
    assert batches == [indexer_module.PACED_BATCH] * 2 + [40]
    assert pauses == [indexer_module.PACE_SECONDS] * 2
    log.append_many_sync([rec(i) for i in range(n)])
    batches.clear()
    assert indexer.run_once() == n  # a reader's round (settle_audit): not paced
    assert batches == [n]
    assert len(stored(audit_engine)) == 2 * n
    log.close_sync()


def test_the_indexer_lag_is_a_gauge(make: Make, audit_engine: sa.Engine,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``govgate_audit_journal_lag_records``: this process's records in the journal
    and not yet in the tables, ``..._seconds`` the age of the oldest of them; back to 0
    once a round loaded them."""
    import gateway.metrics as metrics_module

    monkeypatch.setattr(metrics_module, "LAGS_SECONDS", 0.0)  # each render reads anew
    now = [1_800_000_000.0]
    log, indexer = make(clock=lambda: now[0])
    metrics = Metrics(audit=log)
    try:
        log.append_many_sync([rec(i) for i in range(3)])
        now[0] += 7.5
        log.append_many_sync([rec(i) for i in range(2)])
        now[0] += 2
        assert log.journal_lags() == (5, 9.5)
        page = metrics.render().decode()
        assert "govgate_audit_journal_lag_records 5.0" in page
        assert "govgate_audit_journal_lag_seconds 9.5" in page
        indexer.run_once()
        assert log.journal_lag() == 0
        page = metrics.render().decode()
        assert "govgate_audit_journal_lag_records 0.0" in page
        assert "govgate_audit_journal_lag_seconds 0.0" in page
    finally:
        metrics.close()
        log.close_sync()


def _table_rows(engine: sa.Engine) -> list[tuple[Any, ...]]:
    cols = [records.c[c] for c in RECORD_COLUMNS]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*cols).order_by(records.c.seq))]


def test_the_writers_rows_are_loaded_from_memory_as_the_file_holds_them(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows this process's writer made durable reach the tables without reading the
    segment files back, and are the rows the files hold (byte for byte where it counts:
    the chain verifies, and the journal matches the tables)."""
    import audit.indexer as indexer_module

    log, indexer = make()
    try:
        for group in range(3):  # several batches; small segments rotate between them
            log.append_many_sync([rec(i, items=["姓名", "车牌"], extra={"k": "值 \u2028"})
                                  for i in range(group * 25, group * 25 + 25)])
        on_file = [row for p in journal.segments(log.chain_id or "") for _, row in read_frames(p)]

        def no_reading(*args: Any, **kw: Any) -> Any:
            raise AssertionError("read a segment file back")
        monkeypatch.setattr(indexer_module, "read_frames", no_reading)
        assert indexer.run_once() == 75
        assert indexer._offered_rows == 0
        assert _table_rows(audit_engine) == on_file
    finally:
        monkeypatch.undo()
        log.close_sync()
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


def test_rows_memory_no_longer_holds_are_read_from_the_file(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, tmp_path: Path,
        keys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the bound the oldest offered rows are dropped: the indexer reads those from
    the segment, then goes on from memory where it continues, also when a paced batch
    ends inside what one write handed over."""
    import audit.indexer as indexer_module

    monkeypatch.setattr(indexer_module, "OFFERED_MAX", 40)
    monkeypatch.setattr(indexer_module, "PACED_BATCH", 7)
    journal = Journal(tmp_path / "one-segment")
    log = make_log(journal=journal)
    indexer = Indexer(audit_engine, journal, own=log.journal_position,
                      on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    read: list[int] = []
    real_read = indexer_module.read_frames

    def counted(path: Path, start: int = 0, limit: int | None = None) -> Any:
        for end, row in real_read(path, start, limit):
            read.append(row[1])
            yield end, row
    monkeypatch.setattr(indexer_module, "read_frames", counted)
    monkeypatch.setattr(indexer._stop, "wait", lambda t=None: False)
    try:
        for group in range(6):  # 60 rows in writes of 10; memory keeps the newest 40
            log.append_many_sync([rec(i) for i in range(group * 10, group * 10 + 10)])
        assert indexer.run_once(paced=True) == 60
        assert read == list(range(1, 21))  # only what was dropped came from the file
        read.clear()
        log.append_many_sync([rec(i) for i in range(10)])
        indexer._offered.clear()  # as if dropped: a gap at the watermark
        indexer._offered_rows = 0
        log.append_many_sync([rec(i) for i in range(10)])
        assert indexer.run_once(paced=True) == 20
        assert read == list(range(61, 71))  # the gap from the file, then memory again
        # a round that fails after its first batch (the database went away): the next
        # goes on from the watermark, inside what one write handed over, from memory
        read.clear()
        log.append_many_sync([rec(i) for i in range(20)])
        real_load, calls = indexer.load, []

        def failing(*args: Any) -> int:
            calls.append(1)
            if len(calls) == 2:
                raise sa.exc.OperationalError("INSERT", {}, Exception("database away"))
            return real_load(*args)
        monkeypatch.setattr(indexer, "load", failing)
        with pytest.raises(sa.exc.OperationalError):
            indexer.run_once(paced=True)
        assert indexer.run_once(paced=True) == 13
        assert read == []
        assert [r[1] for r in _table_rows(audit_engine)] == list(range(1, 101))
    finally:
        log.close_sync()
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


def test_a_chain_directory_forgotten_while_a_writer_takes_its_lock(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexer removes a chain directory it finds without segments (lock file and
    all). A writer that opened that lock file a moment before and takes the lock once
    the indexer has let it go must not hold a lock on a file no longer in the journal
    (appending to a directory that is gone: every record refused, for good): it
    locks the directory made anew."""
    import audit.journal as journal_module

    log, indexer = make()
    real_flock, raced = journal_module.fcntl.flock, []

    def flock(fd: int, op: int) -> None:
        # the background round runs between the writer's open of the lock file and
        # its flock (a thread switch there): it locks the new, empty directory first
        if not raced and log.indexer is indexer and log._jw is None:
            raced.append(1)
            indexer.run_once()
        real_flock(fd, op)
    monkeypatch.setattr(journal_module.fcntl, "flock", flock)
    try:
        first = log.append_sync(rec(0))
        assert raced
        assert (first.chain_id, first.seq) == (log.chain_id, 1)
        assert [p.parent.name for p in journal.segments(first.chain_id)] == [first.chain_id]
        log.append_many_sync([rec(i) for i in range(1, 5)])
        assert indexer.run_once() == 5
    finally:
        log.close_sync()
    assert [s for _, s, _ in stored(audit_engine)] == [1, 2, 3, 4, 5]
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


def test_a_new_chain_waits_out_an_indexer_holding_its_fresh_directory(
        make_log: Callable[..., AuditLog], journal: Journal,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An indexer's round that lists the journal between a writer's mkdir of a new
    chain and its lock holds the lock for a moment (as for a dead chain's): the writer
    tries again rather than refuse the batch (a 503 for its requests)."""
    import threading

    real = Journal.open_writer
    held: list[int] = []

    def indexer_first(self: Journal, chain_id: str) -> Any:
        if not held:  # the indexer's round takes the fresh directory's lock first
            fd = self.lock(chain_id)
            assert fd is not None
            held.append(fd)
            threading.Timer(0.03, os.close, (fd,)).start()
        return real(self, chain_id)
    monkeypatch.setattr(Journal, "open_writer", indexer_first)
    log = make_log(journal=journal)
    stored_one = log.append_sync(rec(1))
    assert held and stored_one.seq == 1
    log.close_sync()


def test_sqlite_loads_a_batch_in_a_few_statements_not_a_step_per_row(
        make: Make, audit_engine: sa.Engine, journal: Journal, keys: Any) -> None:
    """SQLite: the sqlite3 module gives the GIL up around each statement step, so
    ``executemany`` (one step per row) handed the GIL to the event loop and back once
    per record; many rows go to one INSERT, and each row lands as the writer made it."""
    if audit_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL loads with COPY")
    log, indexer = make()
    steps: list[str] = []
    try:
        n = 2 * 32 + 8 + 2 + 1  # every chunk size (audit.indexer.SQLITE_CHUNKS)
        log.append_many_sync([rec(i, extra={"k": f"值 {i}"}) for i in range(n)])
        on_file = [row for p in journal.segments(log.chain_id or "") for _, row in read_frames(p)]
        traced: list[Any] = []

        def trace(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.set_trace_callback(steps.append)  # each statement step, in order
            traced.append(dbapi_conn)
        sa.event.listen(audit_engine, "checkout", trace)
        try:
            assert indexer.run_once() == n
        finally:
            sa.event.remove(audit_engine, "checkout", trace)
            for dbapi_conn in traced:
                dbapi_conn.set_trace_callback(None)
        inserts = [s for s in steps if s.startswith(f"INSERT INTO {records.name} ")]
        assert len(inserts) == 2 + 1 + 1 + 1, len(inserts)
        assert _table_rows(audit_engine) == on_file
    finally:
        log.close_sync()
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)
