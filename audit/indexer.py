"""The indexer: loads journal segments into the query tables, in bulk, behind the writer.

One round (``run_once``) takes every chain of the journal directory that is this
process's own (up to what its writer has fsynced) or nobody's (its lock is free: the
process that wrote it died or closed), and for each segment loads the frames past
its watermark: one transaction per batch inserts the records (PostgreSQL: ``COPY``;
SQLite: multi-row ``INSERT``s), adds them to the usage figures, moves the chain's head
and the segment's watermark. Rows at or below the chain's stored head are skipped in
that same transaction (the head row is locked first), so a replay after a crash
between load and watermark adds nothing twice; the unique ``(chain_id, seq)`` would
refuse it anyway. A segment is removed once it is wholly loaded, no longer written,
and a signed checkpoint covers its last record.

The writer of this process hands the rows it has just made durable to :meth:`offer`
as well: the indexer loads them from memory where they continue its watermark, and
reads (and decodes) the segment file only for what memory does not hold (after a
restart, another process's chain, a gap left by the bound on what memory keeps).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from audit.chain import I_CHAIN, I_EVENT, I_HASH, I_PREV, I_SEQ, I_TS, IDX, RECORD_COLUMNS
from audit.journal import Journal, hides_frames, read_frames, segment_seq, truncate
from audit.journal_tables import segments
from audit.tables import STATUS_CLASS, chains, checkpoints, records
from audit.writer import USAGE_KEYS, day_of, usage_statement

log = logging.getLogger("govgate.audit.indexer")

BATCH = 5000
# the background rounds load in small batches with a pause between: a round at a few
# thousand requests a second is ~2,000 records, ~40 ms of CPU that would share the GIL
# with the event loop in one burst (and lengthen every request answered meanwhile);
# paced, the loop keeps most of the core. A reader's round (run_once) is not paced.
PACED_BATCH = 256
PACE_SECONDS = 0.01
# rows the writer handed over and the indexer has not loaded yet, at most: past it the
# oldest are dropped and read from the segment file instead (an indexer held up by a
# database away must not grow the process by what the journal already keeps)
OFFERED_MAX = 10_000
Own = Callable[[], tuple[str, Path | None, int] | None]  # chain, current segment, durable
_I_SYSTEM, _I_RESOURCE, _I_DEPT, _I_OUTCOME, _I_STATUS = (IDX[c] for c in (
    "system", "resource", "department", "outcome", "status"))


class IndexGap(Exception):
    """The journal does not continue the chain's stored head (never guess: stop)."""


class Rounds:
    """An indexer's background rounds: a thread running ``run_once(paced=True)`` every
    ``interval`` seconds; :meth:`stop` ends it after a last, unpaced round (what is
    durable then gets loaded). Subclasses set ``interval`` and call ``__init__``."""

    interval: float
    takes_rows = False  # the writer hands its rows over (``offer``): in this process only

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, *, paced: bool = False) -> int:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="audit-indexer",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        with contextlib.suppress(Exception):
            self.run_once()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once(paced=True)
            except Exception as exc:  # the database may be away: the journal keeps it
                log.warning("audit indexer round failed: %s", exc)
            self._stop.wait(self.interval)


class Indexer(Rounds):
    """Loads ``journal`` into ``engine``'s tables; ``own`` names this process's chain."""

    takes_rows = True

    def __init__(self, engine: sa.Engine, journal: Journal, *, own: Own | None = None,
                 interval: float = 0.5, on_checkpoint: Callable[[int], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.journal = journal
        self.own = own
        self.interval = interval
        self.on_checkpoint = on_checkpoint
        self.clock = clock
        self._loaded: dict[Path, int] = {}  # what this process knows is loaded
        self._damaged: dict[Path, int] = {}  # segments damaged mid-file, and where
        self._usage = usage_statement(engine.dialect)
        super().__init__()
        self._round = threading.Lock()
        # (segment, the byte its first row starts at, [(the byte each row ends at, row)])
        self._offered: deque[tuple[Path, int, list[tuple[int, tuple[Any, ...]]]]] = deque()
        self._offered_rows = 0
        self._offer_lock = threading.Lock()

    def offer(self, path: Path, start: int, rows: list[tuple[int, tuple[Any, ...]]]) -> None:
        """The writer's rows just made durable in ``path`` from byte ``start`` on, each
        with the byte its frame ends at (called by the writer, in its thread)."""
        with self._offer_lock:
            self._offered.append((path, start, rows))
            self._offered_rows += len(rows)
            while self._offered_rows > OFFERED_MAX:
                self._offered_rows -= len(self._offered.popleft()[2])

    def _frames(self, path: Path, start: int, limit: int
                ) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """``(end offset, row)`` of ``path``'s frames from ``start`` up to ``limit``: the
        offered rows while they continue the position, then the file's."""
        pos, order = start, segment_seq(path)
        while pos < limit and (head := self._head()) is not None:
            where, row_start, rows = head
            if where != path:
                if where.parent == path.parent and segment_seq(where) < order:
                    self._done(head)  # an older segment of this chain: loaded from its file
                    continue
                break  # a later segment's
            if rows[-1][0] <= pos:  # loaded already
                self._done(head)
                continue
            if row_start > pos:  # rows dropped past the bound: the file, up to memory's
                for end, row in read_frames(path, pos, min(row_start, limit)):
                    yield end, row
                    pos = end
                if pos != row_start:
                    break
            for end, row in rows:
                if end <= pos:  # loaded already
                    row_start = end
                    continue
                if row_start != pos or end > limit:
                    break  # not where the file is, or past this round
                yield end, row
                row_start = pos = end
            if pos < rows[-1][0]:
                break
            self._done(head)
        if pos < limit:
            yield from read_frames(path, pos, limit)

    def _head(self) -> tuple[Path, int, list[tuple[int, tuple[Any, ...]]]] | None:
        with self._offer_lock:
            return self._offered[0] if self._offered else None

    def _done(self, entry: tuple[Path, int, list[tuple[int, tuple[Any, ...]]]]) -> None:
        with self._offer_lock:  # unless the bound has dropped it meanwhile
            if self._offered and self._offered[0] is entry:
                self._offered.popleft()
                self._offered_rows -= len(entry[2])

    def _keep_only(self, chain_id: str) -> None:
        """Forget the offered rows of chains other than ``chain_id`` (the writer has
        moved on to a new chain: the old one's segments are read from their files)."""
        with self._offer_lock:
            if not self._offered or self._offered[0][0].parent.name == chain_id:
                return
            kept = [o for o in self._offered if o[0].parent.name == chain_id]
            self._offered = deque(kept)
            self._offered_rows = sum(len(o[2]) for o in kept)

    # -- one round ---------------------------------------------------------------------

    def run_once(self, *, paced: bool = False) -> int:
        """Load what can be loaded now; returns the number of records loaded. ``paced``
        (the background thread's rounds): small batches, a pause after each."""
        pause = PACE_SECONDS if paced else None
        with self._round:
            own = self.own() if self.own is not None else None
            if own is not None:
                self._keep_only(own[0])
            loaded = 0
            for chain_id in self.journal.chain_ids():
                try:
                    loaded += self._one(chain_id, own, pause)
                except IndexGap as exc:
                    log.error("audit indexer: %s", exc)
                except OSError as exc:  # one chain's unreadable file stops no other chain
                    log.error("audit indexer: chain %s: %s", chain_id, exc)
            if loaded and self.on_checkpoint is not None:
                with self.engine.connect() as conn:
                    newest = conn.execute(sa.select(sa.func.max(checkpoints.c.seq))).scalar()
                self.on_checkpoint(int(newest or 0))
            return loaded

    def _one(self, chain_id: str, own: tuple[str, Path | None, int] | None,
             pause: float | None) -> int:
        if own is not None and chain_id == own[0]:
            return self._chain(chain_id, own[1], own[2], pause)
        fd = self.journal.lock(chain_id)
        if fd is None:
            return 0  # another live process writes it and loads it
        try:
            return self._chain(chain_id, None, None, pause)
        finally:
            os.close(fd)

    def _chain(self, chain_id: str, current: Path | None, durable: int | None,
               pause: float | None) -> int:
        """Load one chain's segments; with ``pause``, PACED_BATCH records per transaction
        and that pause after each."""
        size = BATCH if pause is None else PACED_BATCH
        paths = self.journal.segments(chain_id)
        if current is not None:  # one our writer opened since it told us where it is
            paths = [p for p in paths if segment_seq(p) <= segment_seq(current)]
        if not paths:
            if current is None:
                self._forget_dead(chain_id)
            return 0
        sizes = {p: (durable if p == current and durable is not None else _size(p))
                 for p in paths}
        if all(self._loaded.get(p) == sizes[p] for p in paths):
            self._tidy(chain_id, paths, current)
            return 0
        with self.engine.connect() as conn:
            marks = {r.first_seq: r.offset for r in conn.execute(
                sa.select(segments.c.first_seq, segments.c.offset)
                .where(segments.c.chain_id == chain_id))}
        loaded = 0
        for path in paths:
            first = segment_seq(path)
            start = marks.get(first, 0)
            limit = sizes[path]
            if start >= limit:
                self._loaded[path] = start
                continue
            batch: list[tuple[Any, ...]] = []
            end = start
            for end, row in self._frames(path, start, limit):
                batch.append(row)
                if len(batch) >= size:
                    loaded += self.load(chain_id, first, batch, end)
                    batch = []
                    if pause is not None:
                        self._stop.wait(pause)
            if batch:
                loaded += self.load(chain_id, first, batch, end)
            self._loaded[path] = end
            if current is None and path == paths[-1] and end < limit:
                if hides_frames(path, end, chain_id):  # damaged, not torn: keep the evidence
                    if self._damaged.get(path) != end:  # said once, not every round
                        self._damaged[path] = end
                        log.error("audit indexer: chain %s: %s is damaged at byte %d with "
                                  "records after it; not loaded past it (audit verify "
                                  "reports it)", chain_id, path.name, end)
                    continue
                truncate(path, end)  # a dead chain's frame torn by the crash: never acknowledged
        self._tidy(chain_id, paths, current)
        return loaded

    def load(self, chain_id: str, first_seq: int, rows: list[tuple[Any, ...]], end: int) -> int:
        """Load ``rows`` (one segment's frames, in order, ending at byte ``end``) and
        move the watermark, in one transaction; rows already stored are skipped."""
        with self.engine.begin() as conn:
            head = _lock_head(conn, chain_id)
            if head is None:
                raise IndexGap(f"chain {chain_id} is not registered")
            seq, hash_ = head
            fresh = [r for r in rows if r[I_SEQ] > seq]
            if fresh:
                if fresh[0][I_SEQ] != seq + 1 or fresh[0][I_PREV] != hash_ or any(
                        r[I_CHAIN] != chain_id for r in fresh):
                    raise IndexGap(f"chain {chain_id}: the journal does not continue the "
                                   f"stored head seq {seq}")
                _insert(conn, fresh)
                self._add_usage(conn, fresh)
                conn.execute(sa.update(chains).where(chains.c.chain_id == chain_id)
                             .values(head_seq=fresh[-1][I_SEQ], head_hash=fresh[-1][I_HASH]))
            mark = {"offset": end, "last_seq": rows[-1][I_SEQ]}
            done = conn.execute(sa.update(segments).where(
                segments.c.chain_id == chain_id, segments.c.first_seq == first_seq)
                .values(**mark)).rowcount
            if not done:
                conn.execute(sa.insert(segments).values(chain_id=chain_id,
                                                        first_seq=first_seq, **mark))
        return len(fresh)

    def _add_usage(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        counts: Counter[tuple[str, ...]] = Counter(
            (day_of(r[I_TS]), r[_I_SYSTEM] or "", r[_I_RESOURCE] or "", r[_I_DEPT] or "",
             r[I_EVENT], r[_I_OUTCOME], STATUS_CLASS.get(r[_I_STATUS], "")) for r in rows)
        up = self._usage
        conn.exec_driver_sql(up.sql, [
            up.params({**dict(zip(USAGE_KEYS, key, strict=True)), "count": counts[key]})
            for key in sorted(counts)])

    def _tidy(self, chain_id: str, paths: list[Path], current: Path | None) -> None:
        """Remove segments wholly loaded, no longer written and covered by a checkpoint:
        a live chain's all but its newest; a dead chain's (``current`` None: its lock is
        ours) all, since a writer resuming it finds the same head in the tables."""
        written = paths[:-1] if current is not None else paths
        done = [p for p in written if p != current and self._loaded.get(p) == _size(p)]
        if done:
            self._remove(chain_id, done)
        if current is None and not self.journal.segments(chain_id):
            self._forget_dead(chain_id)

    def _remove(self, chain_id: str, done: list[Path]) -> None:
        with self.engine.connect() as conn:
            payload = conn.execute(sa.select(checkpoints.c.payload)
                                   .order_by(checkpoints.c.seq.desc()).limit(1)).scalar()
            marks = {r.first_seq: r.last_seq for r in conn.execute(
                sa.select(segments.c.first_seq, segments.c.last_seq)
                .where(segments.c.chain_id == chain_id, segments.c.removed_at.is_(None)))}
        covered = int(json.loads(payload).get("heads", {}).get(chain_id, {}).get("seq", 0)
                      ) if payload else 0
        for path in done:
            last = marks.get(segment_seq(path))
            if last is None or last > covered:
                continue
            with self.engine.begin() as conn:
                conn.execute(sa.update(segments).where(
                    segments.c.chain_id == chain_id,
                    segments.c.first_seq == segment_seq(path))
                    .values(removed_at=int(self.clock() * 1000)))
            path.unlink(missing_ok=True)
            self._loaded.pop(path, None)

    def _forget_dead(self, chain_id: str) -> None:
        """A dead chain wholly in the tables: its directory goes too (else one stays
        for every process that ever wrote). A writer resuming the chain meanwhile makes
        it anew and continues from the tables' head, as it would have from here."""
        folder = self.journal.root / chain_id
        for name in ("probe", "lock"):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        with contextlib.suppress(OSError):  # not empty: a writer has just taken it
            folder.rmdir()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _lock_head(conn: sa.Connection, chain_id: str) -> tuple[int, str] | None:
    if conn.dialect.name == "sqlite":  # the write lock first, as the writer takes it
        conn.execute(sa.update(chains).where(chains.c.chain_id == "").values(status="open"))
    stmt = sa.select(chains.c.head_seq, chains.c.head_hash).where(chains.c.chain_id == chain_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else (int(row.head_seq), str(row.head_hash))


def _insert(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    columns = ", ".join(RECORD_COLUMNS)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {records.name} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    # SQLite: many rows to one statement. ``executemany`` runs one step per row, and
    # the sqlite3 module gives the GIL up around each step: with the event loop waiting
    # for it, every row was a hand-over of the GIL between two threads and back (~2x
    # the rows' own CPU over the wire). One step inserts a chunk of rows
    i, n = 0, len(rows)
    for size in SQLITE_CHUNKS:
        while n - i >= size:
            conn.exec_driver_sql(_values_sql(size), tuple(chain.from_iterable(rows[i:i + size])))
            i += size


# rows per INSERT statement on SQLite, largest first (32 x 23 columns: 736 parameters,
# within the 999 of SQLite before 3.32, still shipped by older distributions); a
# handful of statements a batch, each prepared once (the sqlite3 module's cache)
SQLITE_CHUNKS = (32, 8, 2, 1)


@functools.cache
def _values_sql(rows: int) -> str:
    """SQLite's INSERT of ``rows`` rows, positional parameters row by row in
    RECORD_COLUMNS order."""
    values: list[dict[str, Any]] = [
        {c: sa.bindparam(f"{c}_{i}") for c in RECORD_COLUMNS} for i in range(rows)]
    compiled = sa.insert(records).values(values).compile(dialect=sqlite.dialect())
    assert compiled.positiontup == [f"{c}_{i}" for i in range(rows) for c in RECORD_COLUMNS]
    return str(compiled)
