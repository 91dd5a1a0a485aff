"""Verification: recompute every hash, check every link and checkpoint signature.

Detects a changed field, a deleted, inserted or reordered record, a deleted
checkpoint (a gap in the checkpoint chain, or a record that names a checkpoint
that is gone), a tail truncated before the last checkpoint, and a purge anchor
that no sealing record vouches for. Works on the database and, offline, on an
archive directory (:func:`audit.archive.verify_archive`). A damaged database is
reported, never a crash.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from audit.chain import (
    I_CHAIN,
    I_CKPT,
    I_EVENT,
    I_EXTRA,
    I_HASH,
    I_SEQ,
    I_TS,
    RECORD_COLUMNS,
    ChainChecker,
    Problem,
    at_record,
    hash_function,
)
from audit.checkpoints import KEY_USE, SignatureVerifier, unb64u
from audit.coverage import Coverage, KeyBefore
from audit.key_trust import TrustedKids, UntrustedKey, audit_key_before
from audit.record import canonical_json
from audit.tables import anchors, chains, checkpoints, records
from texts import Text, message_of

MAX_PROBLEMS = 50
SEAL_EVENT = "audit_purge"
SEAL_SIGNED = ("anchors", "archive", "until")  # the sealing record's fields a purge signs

Progress = Callable[[int], None]  # called with the number of records checked so far


class SigCheck(Protocol):
    def __call__(self, kid: str, payload: bytes, sig: bytes) -> None: ...


@dataclass
class VerifyReport:
    records: int = 0
    chains: int = 0
    checkpoints: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    problems: list[Problem] = field(default_factory=list)
    # an archive verified without a trust anchor: consistent, but its signers' keys came
    # with it (audit.archive_trust); the kids that signed it
    anchored: bool = True
    signers: tuple[str, ...] = ()
    # the database: records no checkpoint signed in time while no audit key existed to
    # sign them (audit.coverage): consistent, vouched for by nothing signed
    unsigned: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def intact(self) -> bool:
        """Consistent and vouched for by trusted signatures: what "intact" says."""
        return self.ok and self.anchored

    @property
    def unanchored(self) -> bool:
        """Consistent, but signed by keys nobody vouched for: not "intact"."""
        return self.ok and not self.anchored

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def add(self, problem: Problem) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def span(self) -> str:
        if self.first_ts is None or self.last_ts is None:
            return Text("audit.no_records", "no records")
        def fmt(ms: int) -> str:
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{fmt(self.first_ts)} .. {fmt(self.last_ts)}"

    def summary(self) -> str:
        counts = {"records": self.records, "chains": self.chains,
                  "checkpoints": self.checkpoints, "detail": self.span()}
        if self.unanchored and self.unsigned:
            return Text("audit.log_unanchored", "audit log consistent but UNANCHORED: "
                        "{records} records, {chains} chains, {checkpoints} checkpoints, "
                        "{detail}; records no checkpoint signed, and no audit key existed to "
                        "sign them", **counts)
        if self.unanchored:
            return Text("audit.unanchored", "audit archive consistent but UNANCHORED: "
                        "{records} records, {chains} chains, {checkpoints} checkpoints, "
                        "{detail}; signed by {kids}, keys that came with the archive: give "
                        "--trust FILE, --key-fingerprint or --gateway-keys to prove whose",
                        kids=", ".join(self.signers) or "-", **counts)
        if self.ok:
            return Text("audit.intact", "audit log intact: {records} records, {chains} chains, "
                        "{checkpoints} checkpoints, {detail}", **counts)
        return Text("audit.tampered", "audit log TAMPERED: {records} records, {chains} chains, "
                    "{checkpoints} checkpoints, {detail}", **counts)


class RingCheck:
    """Checkpoint signatures checked by a ``KeyService`` (``verify("audit", ...)``), by
    a key the ring made (UntrustedKey otherwise: ``audit.key_trust``); ``key_before``:
    whether the ring held such a key at a time (``audit.coverage``)."""

    def __init__(self, keys: SignatureVerifier) -> None:
        self.keys = keys
        self.trusted = TrustedKids(keys)

    def __call__(self, kid: str, payload: bytes, sig: bytes) -> None:
        self.keys.verify(KEY_USE, kid, payload, sig)
        if not self.trusted(kid):
            raise UntrustedKey(kid)

    def key_before(self, ms: int) -> str | None:
        return audit_key_before(self.keys, ms)


def keyservice_sigcheck(keys: SignatureVerifier) -> RingCheck:
    return RingCheck(keys)


@dataclass
class Sources:
    """What a verification reads; the database and an archive both provide it."""

    chain_algs: dict[str, str]  # chain id -> hash name
    records: Iterable[Sequence[Any]]  # tuples in RECORD_COLUMNS order, by chain_id, seq
    checkpoints: Iterable[dict[str, Any]]  # ordered by seq
    anchors: dict[str, dict[str, Any]]  # chain id -> {seq, hash, seal_chain, seal_seq}
    registry_heads: dict[str, tuple[int, str]] | None = None  # chain id -> stored head
    registry_last_checkpoint: int = 0  # the newest checkpoint any writer wrote
    expected_tails: dict[str, tuple[int, str]] | None = None  # archive manifest: last records
    first_checkpoint: int = 1
    windowed: bool = False
    anchors_trusted: bool = False  # an archive's anchors come from its signed manifest
    check_truncation: bool = True  # an archive's tails come from its signed manifest
    coverage: Coverage | None = None  # the database: records no checkpoint signed in time


def verify_sources(src: Sources, sigcheck: SigCheck | None,
                   progress: Progress | None = None) -> VerifyReport:
    rep = VerifyReport()
    # 1. checkpoints: contiguous, linked, hashed, signed, heads never go back
    expected: dict[tuple[str, int], tuple[str, int]] = {}  # (chain, seq) -> (hash, cp seq)
    required: dict[str, tuple[int, int]] = {}  # chain -> (highest seq named, cp seq)
    prev_hash, expect_seq = "", src.first_checkpoint
    last_heads: dict[str, int] = {}
    own_heads: dict[str, int] = {}  # chain -> the highest seq a checkpoint it wrote signed
    last_cp = 0
    for cp in src.checkpoints:
        try:
            problem = _check_checkpoint(cp, expect_seq, prev_hash, sigcheck, last_heads)
        except Exception as exc:  # a damaged row: report, never crash
            problem = Problem("checkpoint", _at_checkpoint(cp.get("seq")), _unreadable(exc))
        if problem is not None:
            rep.add(problem)
        try:
            seq = int(cp["seq"])
            heads = json.loads(cp["payload"]).get("heads", {})
            if not isinstance(heads, dict):
                continue  # reported by _check_checkpoint
        except Exception:  # noqa: S112 - already reported
            continue
        writer = json.loads(cp["payload"]).get("writer") if problem is None else None
        for chain_id, head in heads.items():
            try:
                hseq, hhash = int(head["seq"]), str(head["hash"])
            except Exception:  # noqa: S112 - reported by _check_checkpoint
                continue
            if chain_id == writer:
                own_heads[chain_id] = max(hseq, own_heads.get(chain_id, 0))
            if src.coverage is not None and problem is None and isinstance(cp["ts"], int):
                src.coverage.sign(chain_id, hseq, seq, cp["ts"])
            expected[(chain_id, hseq)] = (hhash, seq)
            if hseq >= required.get(chain_id, (0, 0))[0]:
                required[chain_id] = (hseq, seq)
            last_heads[chain_id] = max(hseq, last_heads.get(chain_id, 0))
        prev_hash, expect_seq, last_cp = str(cp["hash"]), seq + 1, seq
        rep.checkpoints += 1

    # 2. anchors: where purged chains restart, and the sealing records that vouch for them
    seals: dict[tuple[str, int], list[str]] = {}
    for chain_id, a in src.anchors.items():
        seals.setdefault((a["seal_chain"], int(a["seal_seq"])), []).append(chain_id)
    vouched: set[str] = set()
    unproven: dict[str, Text] = {}  # anchors whose sealing record matches, unproven

    # 3. records, chain by chain
    # (rows may interleave chains, e.g. in storage order; each chain's rows ascend by seq)
    checkers: dict[Any, ChainChecker] = {}
    checker: ChainChecker | None = None
    seen: set[str] = set()
    max_ckpt, max_ckpt_where = 0, ""

    for n, row in enumerate(src.records, 1):
        try:
            chain_id = row[I_CHAIN]
            if checker is None or chain_id != checker.chain_id:
                checker = checkers.get(chain_id)
                if checker is None:
                    checker = checkers[chain_id] = _start_chain(str(chain_id), src, rep, seen)
            problem = checker.feed(row)
            if problem is not None:
                rep.add(problem)
                checker.head_seq, checker.head_hash = int(row[I_SEQ]), str(row[I_HASH])
            key = (chain_id, row[I_SEQ])
            exp = expected.get(key)
            if exp is not None and not hmac.compare_digest(exp[0], str(row[I_HASH])):
                rep.add(Problem("changed", at_record(chain_id, row[I_SEQ]), Text(
                    "audit.head_differs", "hash differs from the head signed in checkpoint {n}",
                    n=exp[1])))
            if key in seals and problem is None:
                _vouch(row, seals[key], src.anchors, vouched, unproven,
                       _seal_proof(row, sigcheck, own_heads))
            if src.coverage is not None:
                src.coverage.feed(str(chain_id), int(row[I_SEQ]), int(row[I_TS]))
            if row[I_CKPT] > max_ckpt:
                max_ckpt = row[I_CKPT]
                max_ckpt_where = at_record(chain_id, row[I_SEQ])
        except Exception as exc:
            rep.add(Problem("damaged", Text("audit.at_record_short", "record {chain}/{seq}",
                                            chain=_at(row, I_CHAIN), seq=_at(row, I_SEQ)),
                            _unreadable(exc)))
        if progress is not None and n % 10000 == 0:
            progress(n)
    for c in checkers.values():
        _finish_chain(c, src, required, rep)

    # 4. chains named by checkpoints or the registry that have no records left at all
    for chain_id in sorted(set(required) | set(src.registry_heads or {})):
        if chain_id not in seen and not src.windowed and src.check_truncation and \
                chain_id not in src.chain_algs and chain_id not in src.anchors:
            seen.add(chain_id)  # signed, then gone with its registry row
            rep.add(Problem("missing", _at_chain(chain_id), Text(
                "audit.chain_deleted", "the whole chain was deleted, its registry row too: "
                "checkpoint {n} signed its head at seq {head}",
                n=required[chain_id][1], head=required[chain_id][0])))
        elif chain_id not in seen and not src.windowed and src.check_truncation:
            c = _start_chain(chain_id, src, rep, seen, count=False)
            _finish_chain(c, src, required, rep)
    for chain_id in sorted(set(src.anchors) - vouched if not src.anchors_trusted else ()):
        rep.add(Problem("anchor", Text("audit.at_anchor", "anchor of chain {chain}",
                                       chain=chain_id),
                        unproven.get(chain_id) or Text(
                            "audit.anchor_unvouched",
                            "no intact sealing record vouches for this purge anchor")))
    if src.registry_last_checkpoint > last_cp:
        rep.add(Problem("checkpoint", _at_checkpoint(src.registry_last_checkpoint), Text(
            "audit.checkpoint_registered",
            "missing (deleted): its writer registered it, the newest present is {n}", n=last_cp)))
    elif max_ckpt > last_cp and not src.windowed:
        rep.add(Problem("checkpoint", _at_checkpoint(max_ckpt), Text(
            "audit.checkpoint_after", "missing (deleted): {where} was written after it",
            where=max_ckpt_where)))
    if src.coverage is not None:
        key_before: KeyBefore | None = getattr(sigcheck, "key_before", None)
        tampered, unanchored = src.coverage.findings(key_before)
        for problem in tampered:
            rep.add(problem)
        if unanchored:
            rep.anchored, rep.unsigned = False, unanchored
    rep.chains = len(seen)
    return rep


def _check_checkpoint(cp: dict[str, Any], expect_seq: int, prev_hash: str,
                      sigcheck: SigCheck | None, last_heads: dict[str, int]) -> Problem | None:
    seq = int(cp["seq"])
    where = _at_checkpoint(seq)
    if seq > expect_seq:
        gap = f"{expect_seq}" if seq == expect_seq + 1 else f"{expect_seq}..{seq - 1}"
        return Problem("checkpoint", _at_checkpoint(gap), Text(
            "audit.checkpoint_before", "missing (deleted) before {where}", where=where))
    if seq < expect_seq:
        return Problem("checkpoint", where, Text("audit.checkpoint_order",
                                                 "duplicate or out of order"))
    payload = str(cp["payload"]).encode("utf-8")
    digest = hash_function(str(cp["hash_name"]))(payload).hex()
    if not hmac.compare_digest(digest, str(cp["hash"])):
        return Problem("checkpoint", where, Text("audit.checkpoint_changed",
                                                 "payload does not match its hash (changed)"))
    doc = json.loads(payload)
    if (doc.get("seq"), doc.get("ts"), doc.get("prev"), doc.get("hash")) != (
            seq, cp["ts"], cp["prev_hash"], cp["hash_name"]):
        return Problem("checkpoint", where, Text("audit.checkpoint_columns",
                                                 "columns disagree with the signed payload"))
    if not hmac.compare_digest(str(cp["prev_hash"]), prev_hash):
        return Problem("checkpoint", where, Text("audit.checkpoint_unlinked",
                                                 "does not link to the checkpoint before it"))
    if sigcheck is not None:
        try:
            sigcheck(str(cp["kid"]), payload, unb64u(str(cp["signature"])))
        except UntrustedKey as exc:
            return Problem("signature", where, exc.why or Text(
                "audit.kid_foreign", "signed by key {kid}, not made by this key ring (its "
                "private part does not open under the master key)", kid=cp["kid"]))
        except Exception:
            return Problem("signature", where, Text(
                "audit.signature_kid", "signature does not verify (kid {kid})", kid=cp["kid"]))
    for chain_id, head in doc.get("heads", {}).items():
        if int(head["seq"]) < last_heads.get(chain_id, 0):
            return Problem("checkpoint", where, Text(
                "audit.head_back", "head of chain {chain} went back to seq {seq}",
                chain=chain_id, seq=head["seq"]))
    return None


def _start_chain(chain_id: str, src: Sources, rep: VerifyReport, seen: set[str],
                 count: bool = True) -> ChainChecker:
    seen.add(chain_id)
    alg = src.chain_algs.get(chain_id)
    if alg is None:
        rep.add(Problem("inserted", _at_chain(chain_id),
                        Text("audit.unregistered", "records of a chain nobody registered")))
        alg = "sha256"
    a = src.anchors.get(chain_id)
    try:
        if a is not None:
            return ChainChecker(chain_id, alg, anchor_seq=int(a["seq"]), anchor_hash=str(a["hash"]),
                                trust_first=src.windowed)
        return ChainChecker(chain_id, alg, trust_first=src.windowed)
    except ValueError as exc:
        rep.add(Problem("damaged", _at_chain(chain_id), message_of(exc)))
        return ChainChecker(chain_id, "sha256", trust_first=src.windowed)


def _finish_chain(c: ChainChecker, src: Sources, required: dict[str, tuple[int, int]],
                  rep: VerifyReport) -> None:
    rep.records += c.count
    if c.first_ts is not None:
        rep.first_ts = c.first_ts if rep.first_ts is None else min(rep.first_ts, c.first_ts)
    if c.last_ts is not None:
        rep.last_ts = c.last_ts if rep.last_ts is None else max(rep.last_ts, c.last_ts)
    if src.windowed:
        return
    need = required.get(c.chain_id)
    if need is not None and c.head_seq < need[0] and src.check_truncation:
        rep.add(Problem("truncated", _at_chain(c.chain_id), Text(
            "audit.tail_cut", "ends at seq {seq} but checkpoint {n} signed its head at seq "
            "{head} (records deleted from the tail)", seq=c.head_seq, n=need[1], head=need[0])))
    if src.registry_heads is not None:
        reg = src.registry_heads.get(c.chain_id)
        if reg is not None and reg[0] != c.head_seq:
            how = (Text("audit.registry_cut", "registry head is seq {head}, records end at seq "
                        "{seq} (records deleted from the tail)", head=reg[0], seq=c.head_seq)
                   if reg[0] > c.head_seq else
                   Text("audit.registry_added", "registry head is seq {head}, records end at "
                        "seq {seq} (records added)", head=reg[0], seq=c.head_seq))
            rep.add(Problem("truncated" if reg[0] > c.head_seq else "inserted",
                            _at_chain(c.chain_id), how))
    if src.expected_tails is not None:
        tail = src.expected_tails.get(c.chain_id)
        if tail is not None and (c.head_seq, c.head_hash) != tuple(tail):
            rep.add(Problem("truncated", _at_chain(c.chain_id), Text(
                "audit.manifest_tail", "archive manifest says the chain ends at seq {head}, "
                "records end at seq {seq}", head=tail[0], seq=c.head_seq)))


def _at_checkpoint(gap: Any) -> Text:
    return Text("audit.at_checkpoint", "checkpoint {gap}", gap=gap)


def _at_chain(chain: Any) -> Text:
    return Text("audit.at_chain", "chain {chain}", chain=chain)


def _unreadable(exc: BaseException) -> Text:
    return Text("audit.unreadable", "unreadable ({detail})",
                detail=f"{type(exc).__name__}: {exc}")


def _at(row: Sequence[Any], i: int) -> Any:
    try:
        return row[i]
    except (IndexError, TypeError):
        return "?"


def seal_payload(extra: dict[str, Any]) -> bytes:
    """What a purge signs in its sealing record (``audit.archive.purge``)."""
    return canonical_json({k: extra.get(k) for k in SEAL_SIGNED}).encode("utf-8")


def _seal_proof(row: Sequence[Any], sigcheck: SigCheck | None, own_heads: dict[str, int]
                ) -> Callable[[dict[str, Any]], Text | None]:
    """Why the sealing record ``row`` proves nothing (None: it does). Any record can be
    hashed and appended without a key, and a later checkpoint signs every chain's head,
    forged ones too: a seal carries the audit key's signature (since 2026-12-05), or,
    written before, a checkpoint its own chain's writer signed covers it."""
    def proof(extra: dict[str, Any]) -> Text | None:
        where = at_record(row[I_CHAIN], row[I_SEQ])
        if "seal_sig" in extra:
            if sigcheck is None:
                return None  # no key ring: no signature is checked (the CLI says so)
            try:
                sigcheck(str(extra.get("seal_kid")), seal_payload(extra),
                         unb64u(str(extra["seal_sig"])))
            except Exception:
                return Text("audit.seal_signature", "the signature of its sealing record "
                            "({where}) does not verify", where=where)
            return None
        if own_heads.get(str(row[I_CHAIN]), 0) >= int(row[I_SEQ]):
            return None
        return Text("audit.anchor_unsigned", "its sealing record ({where}) is neither signed nor "
                    "covered by a checkpoint its own chain wrote", where=where)
    return proof


def _vouch(row: Sequence[Any], chain_ids: list[str], anchor_rows: dict[str, dict[str, Any]],
           vouched: set[str], unproven: dict[str, Text],
           proof: Callable[[dict[str, Any]], Text | None]) -> None:
    if row[I_EVENT] != SEAL_EVENT:
        return
    extra = json.loads(row[I_EXTRA])
    sealed = extra.get("anchors", {})
    why = proof(extra)
    for chain_id in chain_ids:
        a = anchor_rows[chain_id]
        got = sealed.get(chain_id) or {}
        if got.get("seq") == int(a["seq"]) and got.get("hash") == a["hash"]:
            if why is None:
                vouched.add(chain_id)
            else:
                unproven[chain_id] = why


# -- the database -----------------------------------------------------------------------


def _db_records(conn: sa.Connection, since: int | None, until: int | None,
                storage_order: bool = False) -> Iterator[Sequence[Any]]:
    cols = [records.c[name] for name in RECORD_COLUMNS]
    stmt = sa.select(*cols).order_by(
        *((records.c.id,) if storage_order else (records.c.chain_id, records.c.seq)))
    if since is not None:
        stmt = stmt.where(records.c.ts >= since)
    if until is not None:
        stmt = stmt.where(records.c.ts < until)
    if conn.dialect.name == "sqlite":
        # the driver's own cursor: a million rows without per-row Result overhead
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        yield from _prefetched(conn.connection.driver_connection, str(compiled))
        return
    result = conn.execution_options(stream_results=True, yield_per=5000).execute(stmt)
    for part in result.partitions():
        yield from (tuple(r) for r in part)


def _prefetched(dbapi_conn: Any, sql: str) -> Iterator[Sequence[Any]]:
    """Rows of ``sql``, fetched by a helper thread while the caller hashes (the driver
    releases the GIL while SQLite steps)."""
    chunks: queue.Queue[list[Any] | BaseException | None] = queue.Queue(maxsize=8)
    stop = threading.Event()

    def produce() -> None:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(sql)
            while not stop.is_set():
                rows = cur.fetchmany(2000)
                if not rows:
                    break
                chunks.put(rows)
            chunks.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            chunks.put(exc)
        finally:
            cur.close()

    worker = threading.Thread(target=produce, name="audit-verify-fetch", daemon=True)
    worker.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                chunks.get_nowait()
            worker.join(timeout=0.01)


def _db_checkpoints(conn: sa.Connection) -> Iterator[dict[str, Any]]:
    result = conn.execution_options(stream_results=True, yield_per=1000).execute(
        sa.select(checkpoints).order_by(checkpoints.c.seq))
    for row in result:
        yield dict(row._mapping)


def verify_database(engine: sa.Engine, sigcheck: SigCheck | None, *, since: int | None = None,
                    until: int | None = None, progress: Progress | None = None,
                    checkpoint_seconds: float | None = None) -> VerifyReport:
    """Verify the whole log in the database (or the records in ``[since, until)``).
    With ``checkpoint_seconds`` (the writers' ``audit_checkpoint_seconds``), records no
    checkpoint signed in time are damage, or leave the log unanchored (``audit.coverage``)."""
    windowed = since is not None or until is not None
    try:
        with engine.connect() as conn:
            algs = {r.chain_id: r.hash_name for r in conn.execute(
                sa.select(chains.c.chain_id, chains.c.hash_name))}
            heads = {r.chain_id: (r.head_seq, r.head_hash) for r in conn.execute(
                sa.select(chains.c.chain_id, chains.c.head_seq, chains.c.head_hash))}
            last_written = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(chains.c.last_ckpt), 0))).scalar_one()
            anchor_rows = {r.chain_id: dict(r._mapping) for r in conn.execute(sa.select(anchors))}
            def run(storage_order: bool, progress: Progress | None) -> VerifyReport:
                return verify_sources(Sources(
                    chain_algs=algs, records=_db_records(conn, since, until, storage_order),
                    checkpoints=_db_checkpoints(conn), anchors=anchor_rows,
                    registry_heads=None if windowed else heads, windowed=windowed,
                    registry_last_checkpoint=int(last_written),
                    coverage=None if checkpoint_seconds is None else Coverage(checkpoint_seconds),
                ), sigcheck, progress)

            # Fast pass in storage order (sequential reads). It proves an intact log the
            # same way; if anything is wrong, the precise pass in (chain, seq) order
            # names the first bad record.
            rep = run(True, progress)
            return rep if rep.ok else run(False, None)
    except sa.exc.SQLAlchemyError as exc:
        rep = VerifyReport()
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()
        rep.add(Problem("damaged", Text("audit.at_database", "database"),
                        Text("audit.cannot_read", "cannot be read: {detail}",
                             detail=reason[0] if reason else type(exc).__name__)))
        return rep


def count_records(engine: sa.Engine) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one())
    except sa.exc.SQLAlchemyError:
        return 0
