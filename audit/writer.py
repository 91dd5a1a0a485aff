"""The group-commit writer: ``await log.append(record)`` returns once the record is durable.

Concurrent appends queue up while a commit is in flight; a background task then
writes them all in one transaction (one fsync for many records). If that
transaction fails, every waiter gets :class:`AuditWriteError` and the in-memory
chain head stays where it was: no fork, no gap, no acknowledged record lost.

Chains are leased. A writer (``writer_id``, default the host name) resumes its
own released or expired chain of the same hash, or claims a new one; each batch
re-checks the lease and the stored head in the same transaction, so two writers
can never append to one chain.

With a ``journal`` (``audit.journal``) a batch is durable once its frames are fsynced
in this chain's segment file, which only this process may append to (a lock on the
chain's directory); the indexer (``audit.indexer``, attached with ``attach_indexer``)
loads the segments into the tables behind it. A resumed chain continues from the
journal's tail, which may be ahead of the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import operator
import os
import secrets
import socket
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from audit.chain import I_HASH, I_SEQ, I_TS, IDX, RECORD_COLUMNS, chain_records, hash_function
from audit.checkpoints import Checkpoint, Signer, write_checkpoint
from audit.errors import AuditWriteError, ChainLostError
from audit.journal import FRAME, ChainWriter, Journal, JournalDamaged
from audit.record import AuditRecord, StoredRecord
from audit.tables import STATUS_CLASS, chains, checkpoints, records, usage
from texts import Text, os_reason

log = logging.getLogger("govgate.audit")

Clock = Callable[[], float]  # seconds since the epoch


def _ms(clock: Clock) -> int:
    return int(clock() * 1000)


def _hash_name(profile: Any) -> str:
    if profile is None:
        return "sha256"
    if isinstance(profile, str):
        return profile
    return str(profile.hash_name)


def day_of(ts_ms: int) -> str:
    return _day(ts_ms // 86_400_000)


@functools.lru_cache(maxsize=64)
def _day(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


class _Sql:
    """A Core statement compiled once for the engine's dialect: the per-batch statements
    run through ``exec_driver_sql`` (no per-execution cache-key, compile or bind-parameter
    processing; every column here is a plain string or integer) and still raise
    SQLAlchemy's wrapped exceptions."""

    __slots__ = ("_get", "order", "sql")

    def __init__(self, stmt: Any, dialect: sa.Dialect, column_keys: list[str] | None = None
                 ) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        self.sql = str(compiled)
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positiontup else None)
        self._get = (None if not self.order else
                     operator.itemgetter(*self.order) if len(self.order) > 1 else
                     lambda values, k=self.order[0]: (values[k],))

    def params(self, values: dict[str, Any]) -> Any:
        if self._get is None:
            return values
        return self._get(values)


USAGE_KEYS = ("day", "system", "resource", "department", "event_type", "outcome",
              "status_class")
_USAGE_KEYS = USAGE_KEYS


def usage_statement(dialect: sa.Dialect) -> _Sql:
    """The upsert that adds counts to the usage figures (the writer's, the indexer's)."""
    ins = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    up = ins(usage)
    up = up.on_conflict_do_update(
        index_elements=list(USAGE_KEYS), set_={"count": usage.c.count + up.excluded["count"]})
    return _Sql(up, dialect, [*USAGE_KEYS, "count"])


class _Statements:
    """The group commit's statements, compiled once per AuditLog."""

    def __init__(self, dialect: sa.Dialect) -> None:
        b = sa.bindparam
        self.take = _Sql(
            sa.update(chains)
            .where(chains.c.chain_id == b("p_chain"), chains.c.lease_token == b("p_token"),
                   chains.c.head_seq == b("p_seq"))
            .values(lease_until=b("p_until")), dialect)
        self.max_ckpt = _Sql(
            sa.select(sa.func.coalesce(sa.func.max(checkpoints.c.seq), sa.literal_column("0"))),
            dialect)
        self.head = _Sql(
            sa.update(chains).where(chains.c.chain_id == b("p_chain"))
            .values(head_seq=b("p_seq"), head_hash=b("p_hash")), dialect)
        self.insert = _Sql(sa.insert(records), dialect, list(RECORD_COLUMNS))
        self.usage = usage_statement(dialect)
        # the chained rows are tuples in RECORD_COLUMNS order: what a positional driver
        # (SQLite) takes as they are; a named one (psycopg) gets each as a dict
        insert = self.insert
        self.rows: Callable[[list[tuple[Any, ...]]], Any] = (
            (lambda rows: rows) if insert.order == RECORD_COLUMNS else
            (lambda rows: [insert.params(dict(zip(RECORD_COLUMNS, r, strict=True)))
                           for r in rows]))


_I_SYSTEM, _I_RESOURCE, _I_DEPARTMENT, _I_EVENT, _I_OUTCOME, _I_STATUS = (
    IDX[c] for c in ("system", "resource", "department", "event_type", "outcome", "status"))

NEW_CHAIN_TRIES = 20
# batches remembered for the indexer's lag in seconds (``journal_lags``)
WRITTEN_KEPT = 100_000


class _BatchFuture(asyncio.Future):  # type: ignore[type-arg]
    """The future a batch's appenders share. It refuses to be cancelled: a task
    cancelled while it waits would otherwise cancel its neighbours' answer too; the
    task's cancellation is delivered once the batch is settled (one commit later)."""

    def cancel(self, msg: Any = None) -> bool:
        return False


class _Batch:
    """Appends of one event loop that one commit makes durable. Its appenders await one
    future, settled by one ``call_soon_threadsafe`` from the writer's thread: a tuple
    (the chained rows in append order, the chain, the checkpoint they name), from which
    each appender that wants one builds its StoredRecord, or the AuditWriteError of the
    commit."""

    __slots__ = ("future", "loop", "records")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.records: list[AuditRecord] = []
        self.future: asyncio.Future[Any] = _BatchFuture(loop=loop)


# logs whose writer thread runs: a child forked from this process starts its own
_LOGS: weakref.WeakSet[AuditLog] = weakref.WeakSet()


def _after_fork() -> None:
    for audit_log in list(_LOGS):
        audit_log._forget_thread()
    _LOGS.clear()


os.register_at_fork(after_in_child=_after_fork)


class AuditLog:
    """The audit log of one writer process.

    ``keys`` signs checkpoints (``keys.sign("audit", payload)``); without it no
    checkpoints are written. ``profile`` is a ``keys.profiles.Profile`` or a hash
    name; its hash chains new records.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        keys: Signer | None = None,
        profile: Any = None,
        writer_id: str | None = None,
        checkpoint_every: int = 1000,
        checkpoint_seconds: float = 5.0,
        lease_seconds: float = 30.0,
        max_batch: int = 2000,
        clock: Clock = time.time,
        journal: Journal | None = None,
    ) -> None:
        self.engine = engine
        self.keys = keys
        self.hash_name = _hash_name(profile)
        self._hasher = hash_function(self.hash_name)
        self.writer_id = (writer_id or socket.gethostname())[:200]
        self.checkpoint_every = max(1, int(checkpoint_every))
        self.checkpoint_seconds = float(checkpoint_seconds)
        self.lease_ms = int(lease_seconds * 1000)
        self.max_batch = max(1, int(max_batch))
        self.clock = clock
        self._token = secrets.token_hex(16)
        self._lock = threading.RLock()
        self._chain: str | None = None
        self._head_seq = 0
        self._head_hash = ""
        self._resync = False
        self._since_ckpt = 0
        self._last_ckpt_ms = _ms(clock)
        self._lease_renewed_ms = 0
        self._dialect = engine.dialect.name
        self._sql = _Statements(engine.dialect)
        self.journal = journal
        self._jw: ChainWriter | None = None
        self._ckpt_known = 0  # journal mode: the newest checkpoint this writer knows of
        self._indexer: Any = None
        # journal mode: (last seq, first ts) of each batch written, until it is indexed
        self._written: deque[tuple[int, int]] = deque()
        # the writer's thread: appends of each event loop (a test client may run its
        # own loop in a thread) gather in that loop's batch while a commit runs; the
        # thread takes every batch waiting once a loop has settled its last one (group
        # commit). The chain itself is guarded by self._lock.
        self._mu = threading.Lock()
        self._wake = threading.Condition(self._mu)
        self._filling: dict[asyncio.AbstractEventLoop, _Batch] = {}
        self._full: list[_Batch] = []  # batches that reached max_batch, in order
        self._idle = False  # the thread waits on _wake for an append (under _mu)
        self._settling = False  # it waits for an event loop to settle its last batch
        self._thread: threading.Thread | None = None
        self._closing = False
        self.closed = False

    # -- public ---------------------------------------------------------------------

    @property
    def chain_id(self) -> str | None:
        return self._chain

    @property
    def queue_depth(self) -> int:
        """Appends waiting for the next commit (all event loops)."""
        with self._mu:
            return (sum(len(b.records) for b in self._filling.values())
                    + sum(len(b.records) for b in self._full))

    def journal_lag(self) -> int:
        """Journal mode: this writer's records durable in its journal and not yet in the
        tables (the indexer's lag, ``govgate_audit_journal_lag_records``); 0 otherwise."""
        return self.journal_lags()[0]

    def journal_lags(self) -> tuple[int, float]:
        """Journal mode: the indexer's lag as (records durable in this writer's journal,
        not yet in the tables; seconds since the oldest of them was written), (0, 0.0)
        when it has caught up and in database mode."""
        chain = self._chain
        if self._indexer is None or chain is None:
            return 0, 0.0
        with self.engine.connect() as conn:
            indexed = int(conn.execute(sa.select(chains.c.head_seq)
                                       .where(chains.c.chain_id == chain)).scalar() or 0)
        behind = max(0, self._head_seq - indexed)
        written = self._written
        with self._lock:
            while written and written[0][0] <= indexed:
                written.popleft()
            oldest = written[0][1] if written and behind else None
        return behind, 0.0 if oldest is None else max(0.0, (_ms(self.clock) - oldest) / 1000)

    @property
    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last record this writer committed."""
        return self._head_seq, self._head_hash

    def open(self) -> str:
        """Claim (or resume) this writer's chain; returns its id. Called lazily."""
        with self._lock:
            if self._chain is None:
                self._claim()
            assert self._chain is not None
            return self._chain

    async def start(self) -> None:
        """Claim the chain and start the writer's thread (and the indexer)."""
        await asyncio.to_thread(self.open)
        self._ensure_thread()
        if self._indexer is not None:
            self._indexer.start()

    def attach_indexer(self, indexer: Any) -> None:
        """Journal mode: the indexer (``audit.indexer.Indexer``) that loads this
        writer's journal; started with the writer, stopped (after a last round) on close."""
        self._indexer = indexer

    @property
    def indexer(self) -> Any:
        """Journal mode: the attached indexer (None in database mode)."""
        return self._indexer

    def journal_position(self) -> tuple[str, Any, int] | None:
        """Journal mode: this writer's chain, its current segment and how many of its
        bytes are fsynced (what the indexer may load of it)."""
        jw = self._jw
        if jw is None or jw.durable is None:
            return None
        path, size = jw.durable
        return jw.chain_id, path, size

    def note_checkpoint(self, seq: int) -> None:
        """Journal mode: the newest checkpoint is ``seq`` (the ``ckpt`` of records)."""
        self._ckpt_known = max(self._ckpt_known, seq)

    async def append(self, record: AuditRecord) -> StoredRecord:
        """Append ``record``; returns after it is durably committed.

        Raises :class:`AuditWriteError` if it could not be committed.
        """
        b, i = self._enqueue(record)
        result = await b.future
        if type(result) is tuple:
            # the stored record is made here, by its own appender, off the writer's thread
            rows, chain_id, ckpt = result
            row = rows[i]
            return StoredRecord.of_row(record if record.ts is not None else
                                       record.with_ts(row[I_TS]), chain_id, row, ckpt)
        raise type(result)(result.description)  # a fresh one per waiter

    async def append_durable(self, record: AuditRecord) -> None:
        """:meth:`append` for a caller that needs no :class:`StoredRecord` (the proxy's
        and forward-auth's record of each request): returns, or raises, exactly when
        ``append`` would, and nobody copies the record to stamp it or builds the stored
        record (~1.1 µs a request, done on the writer's thread for every record before)."""
        b, _ = self._enqueue(record)
        result = await b.future
        if type(result) is not tuple:
            raise type(result)(result.description)

    def _enqueue(self, record: AuditRecord) -> tuple[_Batch, int]:
        """Put ``record`` in this event loop's batch; its place in it."""
        if self._closing or self.closed:
            raise AuditWriteError(Text("audit.closed", "audit log is closed"))
        if not isinstance(record, AuditRecord):
            raise TypeError("append() takes an AuditRecord")
        if self._thread is None:
            self._ensure_thread()
        loop = asyncio.get_running_loop()
        with self._mu:
            if self._closing:
                raise AuditWriteError(Text("audit.closed", "audit log is closed"))
            b = self._filling.get(loop)
            if b is None:
                b = self._filling[loop] = _Batch(loop)
            i = len(b.records)
            b.records.append(record)
            if i + 1 >= self.max_batch:
                self._full.append(self._filling.pop(loop))
            kick = self._idle
            self._idle = False
        if kick:
            # after this turn of the loop, not now: the requests the loop is still
            # answering in this turn append to the same batch (as the loop's own
            # committer task took them before); woken at once, the thread took a batch
            # of one, and forward-auth's faster loop paid a sync and two switches for it
            loop.call_soon(self._kick)
        return b, i

    def append_sync(self, record: AuditRecord) -> StoredRecord:
        """Append ``record`` in its own transaction (for the CLI); durable on return."""
        if self.closed:
            raise AuditWriteError(Text("audit.closed", "audit log is closed"))
        stored = self._commit([record])[0]
        self._checkpoint_if_due()
        return stored

    def append_many_sync(self, batch: list[AuditRecord]) -> list[StoredRecord]:
        """Append ``batch`` in one transaction."""
        return self._commit(batch)

    def checkpoint_sync(self) -> Checkpoint | None:
        """Write a checkpoint now (None without a signing key)."""
        return self._write_checkpoint()

    async def checkpoint(self) -> Checkpoint | None:
        return await asyncio.to_thread(self._write_checkpoint)

    def probe(self) -> None:
        """Prove the database takes this writer's appends now: claim or re-read the
        chain if due, then renew its lease in a transaction of its own (a write, as
        every batch begins with). Raises :class:`AuditWriteError` otherwise. A read
        would pass on a SQLite file whose disk is full; this does not."""
        with self._lock:
            self._ensure_head()
            if self._jw is not None:  # the journal is the audit path: prove it takes a write
                try:
                    self._jw.probe()
                except OSError as exc:
                    raise AuditWriteError(Text("audit.unavailable",
                                               "audit log unavailable: {detail}",
                                               detail=os_reason(exc))) from None
                return
            try:
                self._renew_lease()
            except sa.exc.SQLAlchemyError as exc:
                raise AuditWriteError(Text("audit.unavailable", "audit log unavailable: {detail}",
                                           detail=_reason(exc))) from None
            if self._chain is None:  # the lease was lost: the next batch claims anew
                raise AuditWriteError(Text("audit.chain_gone",
                                           "this writer's audit chain was taken over"))

    async def close(self) -> None:
        """Flush pending appends, write a final checkpoint, release the lease."""
        if self.closed:
            return
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        if self.closed:
            return
        self._stop_thread()  # the appends already made are committed first
        if self._indexer is not None:
            self._indexer.stop()  # loads what is in the journal, so the checkpoint covers it
        with self._lock:
            if self._since_ckpt:
                try:
                    self._write_checkpoint()
                except Exception as exc:  # the records are safe; the next writer covers them
                    log.warning("final audit checkpoint failed: %s", exc)
            if self._indexer is not None:  # segments the checkpoint now covers can go
                with contextlib.suppress(Exception):
                    self._indexer.run_once()
            if self._chain is not None:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            sa.update(chains)
                            .where(chains.c.chain_id == self._chain,
                                   chains.c.lease_token == self._token)
                            .values(lease_until=0)
                        )
                except sa.exc.SQLAlchemyError as exc:
                    log.warning("releasing audit chain %s failed: %s", self._chain, exc)
            if self._jw is not None:
                self._jw.close()
                self._jw = None
        self.closed = True

    async def __aenter__(self) -> AuditLog:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the writer's thread ---------------------------------------------------------

    def _ensure_thread(self) -> None:
        with self._mu:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._serve, name="audit-writer",
                                            daemon=True)
            self._thread.start()
        _LOGS.add(self)

    def _forget_thread(self) -> None:
        """In a child just forked: the parent's writer thread is not here, nor the
        batches it had taken (their appenders are the parent's)."""
        self._mu = threading.Lock()
        self._wake = threading.Condition(self._mu)
        self._filling.clear()
        self._full = []
        self._idle = self._settling = False
        self._thread = None

    def _stop_thread(self) -> None:
        with self._mu:
            self._closing = True
            t = self._thread
            self._wake.notify()
        if t is not None and t is not threading.current_thread():
            t.join()

    def _tick(self) -> float:
        # wake at least every 250 ms: checkpoint deadlines follow the (injectable) clock
        waits = [0.25, max(self.lease_ms / 3000, 0.05)]
        if self.keys is not None and self._since_ckpt:
            due = self._last_ckpt_ms / 1000 + self.checkpoint_seconds - self.clock()
            waits.append(max(due, 0.01))
        return min(waits)

    def _serve(self) -> None:
        """The writer's thread: commits every batch waiting once an event loop has
        settled its previous one, settles each batch with one call into its event
        loop, and writes the checkpoints and lease renewals due in between."""
        mu, wake = self._mu, self._wake
        while True:
            with mu:
                if self._settling and not self._closing:
                    # the next batch is what the loop appended up to the moment it
                    # settled this one (as the loop's own committer took it before),
                    # not what came in the sync's last microseconds: taken at once,
                    # a batch of one or two followed each sync when the loop was slower
                    # than the sync, and a sync per request or two costs its kernel time
                    wake.wait(self._tick())
                    self._idle = False
                self._settling = False
                if not self._filling and not self._full:
                    if self._closing:
                        return
                    self._idle = True
                    wake.wait(self._tick())
                    self._idle = False
                batches = self._full
                batches.extend(self._filling.values())
                self._full = []
                self._filling.clear()
            if batches:
                self._commit_batches(batches)
            try:
                if self._checkpoint_due():
                    self._checkpoint_if_due()
                elif self._lease_due():
                    self._renew_lease()
            except Exception as exc:  # never kill the writer over a checkpoint
                log.warning("audit checkpoint/lease renewal failed: %s", exc)

    def _commit_batches(self, batches: list[_Batch]) -> None:
        """Commit ``batches`` in groups of at most ``max_batch`` records (a batch is
        never split), settling each batch once its group is durable or failed."""
        group: list[_Batch] = []
        size = 0
        for b in batches:
            if group and size + len(b.records) > self.max_batch:
                self._commit_group(group)
                group, size = [], 0
            group.append(b)
            size += len(b.records)
        if group:
            self._commit_group(group)

    def _commit_group(self, group: list[_Batch]) -> None:
        records = group[0].records if len(group) == 1 else [
            r for b in group for r in b.records]
        outcome: list[Any]
        try:
            rows, chain_id, ckpt = self._write(records)
        except Exception as exc:
            if isinstance(exc, AuditWriteError):
                err: AuditWriteError = exc
            else:
                log.exception("audit write failed")
                err = AuditWriteError(f"audit write failed: {type(exc).__name__}")
            outcome = [err] * len(group)
        else:
            outcome, at = [], 0
            for b in group:
                outcome.append((rows[at:at + len(b.records)] if len(group) > 1 else rows,
                                chain_id, ckpt))
                at += len(b.records)
        with self._mu:
            self._settling = True  # before the calls: a loop may settle at once
        posted = False
        for b, result in zip(group, outcome, strict=True):
            # a loop closed meanwhile (a test client's) has nobody left to answer
            with contextlib.suppress(RuntimeError):
                b.loop.call_soon_threadsafe(self._settle, b.future, result)
                posted = True
        if not posted:
            with self._mu:
                self._settling = False

    def _kick(self) -> None:
        with self._mu:
            self._wake.notify()

    def _settle(self, fut: asyncio.Future[Any], result: Any) -> None:
        """On the batch's event loop: answer its appenders, then let the writer's thread
        take what the loop appended meanwhile."""
        if not fut.done():
            fut.set_result(result)
        with self._mu:
            if self._settling:
                self._settling = False
                if self._filling or self._full:
                    self._wake.notify()
                else:  # nothing yet: the next append wakes it (one wake, not two)
                    self._idle = True

    # -- storage ---------------------------------------------------------------------

    def _claim(self) -> None:
        now = _ms(self.clock)
        self._written.clear()  # seqs of the chain left behind
        if self._jw is not None:  # a lost lease: the old chain's journal is left to the indexer
            self._jw.close()
            self._jw = None
        with self.engine.begin() as conn:
            _write_lock(conn)
            candidates = conn.execute(
                sa.select(chains)
                .where(chains.c.owner == self.writer_id, chains.c.status == "open",
                       chains.c.hash_name == self.hash_name, chains.c.lease_until < now)
                .order_by(chains.c.created_at.desc())
            ).fetchall()
            for cand in candidates:
                if self.journal is not None:
                    self._jw = self.journal.open_writer(cand.chain_id)
                    if self._jw is None:
                        continue  # another process of ours appends to it (its journal's lock)
                taken = conn.execute(
                    sa.update(chains)
                    .where(chains.c.chain_id == cand.chain_id,
                           chains.c.lease_token == cand.lease_token,
                           chains.c.lease_until == cand.lease_until)
                    .values(lease_token=self._token, lease_until=now + self.lease_ms)
                ).rowcount
                if taken != 1:
                    self._drop_journal()
                    continue
                last = conn.execute(
                    sa.select(records.c.seq, records.c.hash)
                    .where(records.c.chain_id == cand.chain_id)
                    .order_by(records.c.seq.desc()).limit(1)
                ).first()
                seq, head = (last.seq, last.hash) if last else (0, "")
                # the registry disagrees with the records, or the chain's journal here ends
                # before them (written in database mode since): never guess, start afresh
                if (seq, head) != (cand.head_seq, cand.head_hash) or \
                        not self._resume_from_journal(seq, head):
                    conn.execute(sa.update(chains).where(chains.c.chain_id == cand.chain_id)
                                 .values(status="closed", lease_until=0))
                    log.warning("audit chain %s: stored head disagrees, closed",
                                cand.chain_id)
                    self._drop_journal()
                    continue
                self._chain = cand.chain_id
                break
            if self._chain is None:
                chain_id = f"{now:x}-{secrets.token_hex(5)}"
                if self.journal is not None:
                    # nobody else writes a chain this new; an indexer's round may hold
                    # its lock for a moment, between our mkdir and our lock (it takes
                    # the directory for a dead chain's), so a few tries
                    for _ in range(NEW_CHAIN_TRIES):
                        self._jw = self.journal.open_writer(chain_id)
                        if self._jw is not None:
                            break
                        time.sleep(0.01)
                    if self._jw is None:
                        raise AuditWriteError(Text("audit.journal_locked",
                                                   "audit journal of chain {chain} is locked",
                                                   chain=chain_id))
                conn.execute(sa.insert(chains).values(
                    chain_id=chain_id, hash_name=self.hash_name, owner=self.writer_id,
                    lease_token=self._token, lease_until=now + self.lease_ms, head_seq=0,
                    head_hash="", last_ckpt=0, created_at=now, status="open",
                ))
                self._chain, self._head_seq, self._head_hash = chain_id, 0, ""
            if self.journal is not None:
                self._ckpt_known = conn.execute(self._max_ckpt()).scalar_one()
        self._lease_renewed_ms = now
        self._resync = False
        log.info("audit writer %s appends to chain %s from seq %d", self.writer_id,
                 self._chain, self._head_seq + 1)

    def _drop_journal(self) -> None:
        if self._jw is not None:
            self._jw.close()
            self._jw = None

    def _max_ckpt(self) -> Any:
        return sa.select(sa.func.coalesce(sa.func.max(checkpoints.c.seq), 0))

    def _resume_from_journal(self, seq: int, head: str) -> bool:
        """Set the head to continue from: the chain's last durable record may be in the
        journal, not yet in the tables (the journal's tail, its torn frame truncated).
        False when the journal ends before the table's ``seq`` (written in database mode
        since): its frames would not continue the file's chain."""
        try:
            tail = self._jw.tail() if self._jw is not None else None
        except JournalDamaged as exc:  # edited in place: left for verify, never continued
            log.error("audit chain %s: %s", self._jw.chain_id if self._jw else "?", exc)
            return False
        if tail is None:
            self._head_seq, self._head_hash = seq, head
        elif tail.seq >= seq:
            self._head_seq, self._head_hash = tail.seq, tail.hash
        else:
            return False
        return True

    def _reload_head(self) -> None:
        if self._jw is not None:  # a failed journal write: the file says where we are
            try:
                self._resume_from_journal(self._head_seq, self._head_hash)
            except OSError as exc:
                raise AuditWriteError(Text("audit.not_written",
                                           "audit record not written: {detail}",
                                           detail=os_reason(exc))) from None
            self._resync = False
            return
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(chains.c.head_seq, chains.c.head_hash)
                .where(chains.c.chain_id == self._chain, chains.c.lease_token == self._token)
            ).first()
        if row is None:
            self._chain = None
            self._claim()
        else:
            self._head_seq, self._head_hash = row.head_seq, row.head_hash
            self._resync = False

    def _ensure_head(self) -> None:
        """Claim the chain, or re-read its head after a commit of unknown outcome
        (under the lock); AuditWriteError when the database refuses."""
        try:
            if self._chain is None:
                self._claim()
            elif self._resync:
                self._reload_head()
        except sa.exc.SQLAlchemyError as exc:
            raise AuditWriteError(Text("audit.unavailable", "audit log unavailable: {detail}",
                                       detail=_reason(exc))) from None
        except OSError as exc:  # the journal's directory
            raise AuditWriteError(Text("audit.unavailable", "audit log unavailable: {detail}",
                                       detail=os_reason(exc))) from None

    def _commit(self, batch: list[AuditRecord]) -> list[StoredRecord]:
        if not batch:
            return []
        rows, chain_id, ckpt = self._write(batch)
        return _stored(batch, rows, chain_id, ckpt)

    def _write(self, batch: list[AuditRecord]) -> tuple[list[tuple[Any, ...]], str, int]:
        """Chain ``batch`` and make it durable: (the stored rows, the chain, the checkpoint
        they name). A record without a timestamp gets the writer's clock now (in its row:
        the StoredRecord, when one is wanted, is built by its appender)."""
        with self._lock:
            self._ensure_head()
            chain_id = self._chain
            assert chain_id is not None
            now = _ms(self.clock)
            if self._jw is not None:
                return self._journal_commit(self._jw, chain_id, batch, now)
            old_seq = self._head_seq
            try:
                with self.engine.begin() as conn:
                    # the first statement writes: it takes the lock (SQLite: the write lock)
                    q = self._sql
                    owned = conn.exec_driver_sql(q.take.sql, q.take.params({
                        "p_chain": chain_id, "p_token": self._token, "p_seq": old_seq,
                        "p_until": now + self.lease_ms})).rowcount
                    if owned != 1:
                        raise ChainLostError(Text("audit.chain_lost",
                                                  "audit chain {chain} is no longer ours",
                                                  chain=chain_id))
                    ckpt = conn.exec_driver_sql(q.max_ckpt.sql,
                                                q.max_ckpt.params({})).scalar_one()
                    rows = chain_records(batch, chain_id=chain_id, seq=old_seq,
                                         prev_hash=self._head_hash, ckpt=ckpt,
                                         hasher=self._hasher, now=now)
                    seq, prev = rows[-1][I_SEQ], rows[-1][I_HASH]
                    conn.exec_driver_sql(q.head.sql, q.head.params(
                        {"p_chain": chain_id, "p_seq": seq, "p_hash": prev}))
                    conn.exec_driver_sql(q.insert.sql, q.rows(rows))
                    self._add_usage(conn, rows)
            except ChainLostError:
                self._chain = None  # the next batch claims a new chain
                raise
            except sa.exc.SQLAlchemyError as exc:
                self._resync = True  # the commit may or may not have happened: re-read
                raise AuditWriteError(Text("audit.not_written",
                                           "audit record not written: {detail}",
                                          detail=_reason(exc))) from None
            self._head_seq, self._head_hash = seq, prev
            self._since_ckpt += len(rows)
            self._lease_renewed_ms = now
        return rows, chain_id, ckpt

    def _journal_commit(self, jw: ChainWriter, chain_id: str, batch: list[AuditRecord],
                        now: int) -> tuple[list[tuple[Any, ...]], str, int]:
        """Append ``batch`` to the chain's segment file, fsynced (under the lock)."""
        ckpt = self._ckpt_known
        arrays: list[bytes] = []
        rows = chain_records(batch, chain_id=chain_id, seq=self._head_seq,
                             prev_hash=self._head_hash, ckpt=ckpt, hasher=self._hasher,
                             arrays=arrays, now=now)
        seq, prev = rows[-1][I_SEQ], rows[-1][I_HASH]
        try:
            jw.append(arrays, first_seq=rows[0][I_SEQ])
        except OSError as exc:
            self._resync = True  # re-read the journal's tail before the next batch
            raise AuditWriteError(Text("audit.not_written", "audit record not written: {detail}",
                                       detail=os_reason(exc))) from None
        self._head_seq, self._head_hash = seq, prev
        self._since_ckpt += len(rows)
        if len(self._written) < WRITTEN_KEPT:  # past it, the oldest kept tell the age
            self._written.append((seq, rows[0][I_TS]))
        if getattr(self._indexer, "takes_rows", False) and jw.durable is not None:
            # the rows as they are, so the indexer need not read and decode them back
            path, end = jw.durable
            ends = list(accumulate([FRAME.size + len(a) for a in arrays]))
            start = end - ends[-1]
            self._indexer.offer(path, start, [(start + e, r) for e, r in zip(ends, rows,
                                                                               strict=True)])
        return rows, chain_id, ckpt

    def _add_usage(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        counts: Counter[tuple[str, str, str, str, str, str, str]] = Counter()
        for r in rows:
            counts[(day_of(r[I_TS]), r[_I_SYSTEM] or "", r[_I_RESOURCE] or "",
                    r[_I_DEPARTMENT] or "", r[_I_EVENT], r[_I_OUTCOME],
                    STATUS_CLASS.get(r[_I_STATUS], ""))] += 1
        up = self._sql.usage
        # one statement, many rows; one order everywhere, so writers never deadlock
        conn.exec_driver_sql(up.sql, [
            up.params({**dict(zip(_USAGE_KEYS, key, strict=True)), "count": counts[key]})
            for key in sorted(counts)])

    def _lease_due(self) -> bool:
        # a clock stepped back behind the last renewal: renew now, at the new time
        # (else nothing would renew it until the clock caught up)
        elapsed = _ms(self.clock) - self._lease_renewed_ms
        return self._chain is not None and (elapsed > self.lease_ms // 3 or elapsed < 0)

    def _renew_lease(self) -> None:
        with self._lock:
            if self._chain is None:
                return
            now = _ms(self.clock)
            with self.engine.begin() as conn:
                ok = conn.execute(
                    sa.update(chains)
                    .where(chains.c.chain_id == self._chain, chains.c.lease_token == self._token)
                    .values(lease_until=now + self.lease_ms)
                ).rowcount
            if ok != 1:
                self._chain = None
            self._lease_renewed_ms = now

    def _checkpoint_due(self) -> bool:
        if self.keys is None or not self._since_ckpt:
            return False
        elapsed = _ms(self.clock) - self._last_ckpt_ms
        # a clock stepped back behind the last checkpoint: how long ago that was is
        # unknown, so the records since are signed now (else not until the clock
        # caught up with the step, however long that was)
        return (self._since_ckpt >= self.checkpoint_every or elapsed < 0
                or elapsed >= self.checkpoint_seconds * 1000)

    def _checkpoint_if_due(self) -> Checkpoint | None:
        if not self._checkpoint_due():
            return None
        try:
            return self._write_checkpoint()
        except Exception as exc:
            log.warning("audit checkpoint failed: %s", exc)
            return None

    def _write_checkpoint(self) -> Checkpoint | None:
        if self.keys is None:
            return None
        with self._lock:
            if self._chain is None:
                self._claim()
            last_exc: Exception | None = None
            for _ in range(8):
                now = _ms(self.clock)
                try:
                    with self.engine.begin() as conn:
                        # write first (takes the SQLite write lock), renewing our lease
                        conn.execute(
                            sa.update(chains)
                            .where(chains.c.chain_id == self._chain,
                                   chains.c.lease_token == self._token)
                            .values(lease_until=now + self.lease_ms)
                        )
                        cp = write_checkpoint(conn, self.keys, ts=now, writer=self._chain or "",
                                              hash_name=self.hash_name)
                        conn.execute(sa.update(chains)
                                     .where(chains.c.chain_id == self._chain,
                                            chains.c.last_ckpt < cp.seq)
                                     .values(last_ckpt=cp.seq))
                except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
                    last_exc = exc  # another writer took this number: try the next one
                    time.sleep(0.01)
                    continue
                self._since_ckpt = 0
                self._last_ckpt_ms = now
                self.note_checkpoint(cp.seq)
                return cp
            raise AuditWriteError(Text("audit.checkpoint_not_written",
                                       "checkpoint not written: {detail}",
                                       detail=_reason(last_exc)))


def _stored(records: list[AuditRecord], rows: list[tuple[Any, ...]], chain_id: str, ckpt: int
            ) -> list[StoredRecord]:
    of_row = StoredRecord.of_row
    return [of_row(rec if rec.ts is not None else rec.with_ts(row[I_TS]), chain_id, row, ckpt)
            for rec, row in zip(records, rows, strict=True)]


def _write_lock(conn: sa.Connection) -> None:
    """Take SQLite's write lock first: a read-then-write transaction could otherwise fail
    with "database is locked" when another process commits in between."""
    if conn.dialect.name == "sqlite":
        conn.execute(sa.update(chains).where(chains.c.chain_id == "").values(status="open"))


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__
