"""The hash chain, pure: canonical encoding, record hashes, link checks.

Each writer appends to its own chain. Record ``n`` of chain ``c`` stores
``prev_hash`` (the hash of record ``n-1``, ``""`` for ``n = 1``) and
``hash = H(canonical(record))``, where the canonical encoding is deterministic
JSON (sorted keys, no whitespace, UTF-8, ``ensure_ascii=False``) of every field
including ``chain``, ``seq``, ``prev`` and ``ckpt``. ``items`` and ``extra`` enter
the encoding as their own canonical JSON text, exactly as stored, so verifying
needs no JSON parsing. ``H`` is the chain's hash (``sha256``, or ``sm3`` under the
国密 profile), recorded per chain so a profile switch never breaks verification.

No I/O here: the writer and the verifier wrap these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import json.encoder
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from audit.record import AuditRecord, canonical_json
from texts import Text, where

HASHES = ("sha256", "sm3")
GENESIS = ""

# the record columns in storage order; every one enters the hash
RECORD_COLUMNS = (
    "chain_id", "seq", "prev_hash", "hash", "ckpt", "ts", "event_type", "outcome",
    "actor_user", "actor_client", "department", "source_ip", "system", "resource",
    "items", "purpose", "reason", "status", "latency_ms", "request_id", "req_hash",
    "resp_hash", "extra",
)

_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode
_c_encode = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses


def hash_function(name: str) -> Callable[[bytes], bytes]:
    """The digest function called ``name`` (``sha256`` or ``sm3``)."""
    if name == "sha256":
        return lambda data: hashlib.sha256(data).digest()
    if name == "sm3":
        try:
            hashlib.new("sm3")
        except ValueError:  # OpenSSL without SM3: fall back to cryptography
            from cryptography.hazmat.primitives import hashes

            def _sm3(data: bytes) -> bytes:
                h = hashes.Hash(hashes.SM3())
                h.update(data)
                return h.finalize()

            return _sm3
        return lambda data: hashlib.new("sm3", data).digest()
    raise ValueError(Text("audit.unknown_hash", "unknown hash {name!r} (one of {known})",
                          name=name, known=", ".join(HASHES)))


def _hex_hasher(name: str) -> Callable[[bytes], str]:
    if name == "sha256":
        sha256 = hashlib.sha256
        return lambda data: sha256(data).hexdigest()
    fn = hash_function(name)
    return lambda data: fn(data).hex()


# JSON key in the canonical document -> stored column
_JSON_KEYS = {
    "chain": "chain_id", "seq": "seq", "prev": "prev_hash", "ckpt": "ckpt", "ts": "ts",
    "event_type": "event_type", "outcome": "outcome", "actor_user": "actor_user",
    "actor_client": "actor_client", "department": "department", "source_ip": "source_ip",
    "system": "system", "resource": "resource", "items": "items", "purpose": "purpose",
    "reason": "reason", "status": "status", "latency_ms": "latency_ms",
    "request_id": "request_id", "req_hash": "req_hash", "resp_hash": "resp_hash",
    "extra": "extra",
}
_INT_COLUMNS = frozenset({"seq", "ckpt", "ts", "status", "latency_ms"})
_NOT_NULL = frozenset({"chain_id", "seq", "prev_hash", "ckpt", "ts", "event_type", "outcome",
                       "items", "extra"})
IDX = {name: i for i, name in enumerate(RECORD_COLUMNS)}
I_CHAIN, I_SEQ, I_PREV, I_HASH, I_CKPT, I_TS = (IDX[c] for c in (
    "chain_id", "seq", "prev_hash", "hash", "ckpt", "ts"))
I_EVENT, I_EXTRA = IDX["event_type"], IDX["extra"]


def _compile_payload() -> Callable[[Sequence[Any]], bytes]:
    """A function that writes the canonical JSON of a stored row (a tuple in
    RECORD_COLUMNS order) byte for byte as ``json.dumps(doc, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` would, without building the dict.

    A value of the wrong type (a damaged row) raises TypeError: the verifier reports it.
    """
    parts = []
    for n, key in enumerate(sorted(_JSON_KEYS)):
        col = _JSON_KEYS[key]
        v = f"t[{IDX[col]}]"
        conv = f"_int({v})" if col in _INT_COLUMNS else f"_enc({v})"
        if col not in _NOT_NULL:
            conv = f"(\"null\" if {v} is None else {conv})"
        parts.append(json.dumps(("{" if n == 0 else ",") + json.dumps(key) + ":"))
        parts.append(conv)
    parts.append('"}"')
    src = "def payload(t):\n    return _join((" + ", ".join(parts) + ")).encode(\"utf-8\")\n"
    scope: dict[str, Any] = {"_enc": _c_encode, "_int": int.__repr__, "_join": "".join}
    exec(compile(src, "<audit-canonical>", "exec"), scope)  # noqa: S102 - built from constants
    return scope["payload"]  # type: ignore[no-any-return]


payload_of = _compile_payload()


def _compile_texts() -> Callable[[Sequence[Any]], list[str]]:
    """A function from a stored row (RECORD_COLUMNS order) to each column's JSON text,
    as :func:`payload_of` encodes it (TypeError for a value of the wrong type)."""
    parts = []
    for i, col in enumerate(RECORD_COLUMNS):
        conv = f"_int(t[{i}])" if col in _INT_COLUMNS else f"_enc(t[{i}])"
        if col not in _NOT_NULL:
            conv = f"(\"null\" if t[{i}] is None else {conv})"
        parts.append(conv)
    src = "def texts(t):\n    return [" + ", ".join(parts) + "]\n"
    scope: dict[str, Any] = {"_enc": _c_encode, "_int": int.__repr__}
    exec(compile(src, "<audit-texts>", "exec"), scope)  # noqa: S102 - built from constants
    return scope["texts"]  # type: ignore[no-any-return]


def _compile_joined() -> Callable[[Sequence[str]], bytes]:
    """A function from the column texts of :func:`_texts_of` to the canonical payload:
    the same bytes :func:`payload_of` writes, each value encoded once for both the hash
    and the journal's frame."""
    parts = []
    for n, key in enumerate(sorted(_JSON_KEYS)):
        parts.append(json.dumps(("{" if n == 0 else ",") + json.dumps(key) + ":"))
        parts.append(f"x[{IDX[_JSON_KEYS[key]]}]")
    parts.append('"}"')
    src = "def joined(x):\n    return _join((" + ", ".join(parts) + ")).encode(\"utf-8\")\n"
    scope: dict[str, Any] = {"_join": "".join}
    exec(compile(src, "<audit-joined>", "exec"), scope)  # noqa: S102 - built from constants
    return scope["joined"]  # type: ignore[no-any-return]


_texts_of = _compile_texts()
_joined = _compile_joined()


def row_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    """A stored row as a tuple in RECORD_COLUMNS order (missing columns None)."""
    return tuple(row.get(c) for c in RECORD_COLUMNS)


def record_payload(row: dict[str, Any]) -> bytes:
    """The canonical bytes of a stored row (``items``/``extra`` as their JSON text)."""
    return payload_of(row_tuple(row))


def reference_payload(row: dict[str, Any]) -> bytes:
    """The definition :func:`payload_of` implements (slow; for tests and documentation)."""
    return _dumps({k: row[c] for k, c in _JSON_KEYS.items()}).encode("utf-8")


def chain_records(
    records: Sequence[AuditRecord], *, chain_id: str, seq: int, prev_hash: str, ckpt: int,
    hasher: Callable[[bytes], bytes], arrays: list[bytes] | None = None,
    now: int | None = None,
) -> list[tuple[Any, ...]]:
    """The stored rows (tuples in RECORD_COLUMNS order, hashes filled in) of ``records``
    appended to ``chain_id`` after record ``seq`` whose hash is ``prev_hash``; a record
    without a timestamp takes ``now`` (ValueError without it), so the writer need not
    copy each record to stamp it.

    With ``arrays`` each row's JSON array (the journal's frame payload, as
    ``json.dumps(list(row), separators=(",", ":"), ensure_ascii=False)``) is appended to
    it, from the texts the hash was computed from."""
    rows = []
    for record in records:
        ts = record.ts
        if ts is None:
            if now is None:
                raise ValueError("record has no timestamp")
            ts = now
        seq += 1
        values = [
            chain_id, seq, prev_hash, "", ckpt, ts, record.event_type, record.outcome,
            record.actor_user, record.actor_client, record.department, record.source_ip,
            record.system, record.resource, _canonical_items(record.items), record.purpose,
            record.reason, record.status, record.latency_ms, record.request_id,
            record.req_hash, record.resp_hash, _canonical_extra(record.extra),
        ]
        texts = _texts_of(values)
        prev_hash = hasher(_joined(texts)).hex()  # "hash" is not in the payload
        if arrays is not None:
            texts[I_HASH] = _c_encode(prev_hash)
            arrays.append(("[" + ",".join(texts) + "]").encode("utf-8"))
        values[I_HASH] = prev_hash
        rows.append(tuple(values))
    return rows


def record_row(
    record: AuditRecord, *, chain_id: str, seq: int, prev_hash: str, ckpt: int,
    hasher: Callable[[bytes], bytes],
) -> dict[str, Any]:
    """The stored row of ``record`` as record ``seq`` of ``chain_id``, its hash filled in."""
    (row,) = chain_records([record], chain_id=chain_id, seq=seq - 1, prev_hash=prev_hash,
                           ckpt=ckpt, hasher=hasher)
    return dict(zip(RECORD_COLUMNS, row, strict=True))


# the canonical JSON of extra, without JSONEncoder.encode's per-call set-up (its C
# encoder built anew each time); extra is redact()'s acyclic copy, so no cycle check
_extra_encoder = (json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, _c_encode, None, ":", ",", True, False, False)
    if json.encoder.c_make_encoder is not None else None)  # type: ignore[attr-defined]


def _canonical_items(items: tuple[str, ...]) -> str:
    if not items:
        return "[]"
    try:
        return "[" + ",".join(map(_c_encode, items)) + "]"
    except TypeError:  # not a str: the general encoder (or its AuditRecordError)
        return _canonical(list(items))


def _canonical_extra(extra: Any) -> str:
    if not extra:
        return "{}"
    if _extra_encoder is not None:
        try:
            return "".join(_extra_encoder(extra, 0))
        except (TypeError, ValueError, RecursionError):
            pass  # the checked encoder says what is wrong
    return _canonical(dict(extra))


def _canonical(value: Any) -> str:
    """:func:`audit.record.canonical_json` with the encoder built once."""
    try:
        return _dumps(value)
    except (TypeError, ValueError):
        return canonical_json(value)  # raises its AuditRecordError


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong, and where."""

    kind: str  # changed | missing | inserted | unlinked | checkpoint | signature | truncated ...
    where: str
    detail: str

    def __str__(self) -> str:
        return str(where(self.where, self.detail))


def at_record(chain: Any, seq: Any) -> str:
    return Text("audit.at_record", "record chain={chain} seq={seq}", chain=chain, seq=seq)


class ChainChecker:
    """Checks the records of one chain, fed in ascending ``seq`` order.

    Start at ``seq = 1`` with an empty ``prev_hash``, or right after an anchor (the
    last purged record) when the head of the chain was purged after archiving.
    """

    __slots__ = (
        "_hex",
        "_trust_first",
        "chain_id",
        "count",
        "first_ts",
        "hash_name",
        "head_hash",
        "head_seq",
        "last_ts",
        "max_ckpt",
    )

    def __init__(self, chain_id: str, hash_name: str, *, anchor_seq: int = 0,
                 anchor_hash: str = GENESIS, trust_first: bool = False) -> None:
        self.chain_id = chain_id
        self.hash_name = hash_name
        self._hex = _hex_hasher(hash_name)
        self.head_seq = anchor_seq
        self.head_hash = anchor_hash
        self.count = 0
        self.max_ckpt = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        # verifying a time window: the first record's link points outside it
        self._trust_first = trust_first

    def feed(self, row: Sequence[Any]) -> Problem | None:
        """Check the next stored row (a tuple in RECORD_COLUMNS order); a
        :class:`Problem` when it does not belong here."""
        seq = row[I_SEQ]
        if row[I_CHAIN] != self.chain_id:
            return Problem("inserted", self._where(seq),
                           Text("audit.other_chain", "belongs to chain {chain}",
                                chain=row[I_CHAIN]))
        try:
            computed = self._hex(payload_of(row))
        except (TypeError, ValueError) as exc:
            return Problem("changed", self._where(seq),
                           Text("audit.unencodable",
                                "cannot be encoded ({detail})", detail=str(exc)))
        stored = row[I_HASH]
        if not (type(stored) is str and hmac.compare_digest(computed, stored)):
            return Problem("changed", self._where(seq), Text(
                "audit.changed", "content does not match its hash (a field was changed)"))
        if self._trust_first and self.count == 0:
            self._trust_first = False
        else:
            expected = self.head_seq + 1
            if seq != expected:
                if seq > expected:
                    what = (Text("audit.missing_one", "record seq {seq} missing (deleted)",
                                 seq=expected) if seq == expected + 1 else
                            Text("audit.missing_many", "records seq {first}..{last} missing "
                                 "(deleted)", first=expected, last=seq - 1))
                    return Problem("missing", self._where(seq), what)
                return Problem("inserted", self._where(seq), Text(
                    "audit.out_of_order", "duplicate or out-of-order seq, expected {seq}",
                    seq=expected))
            prev = row[I_PREV]
            if not (type(prev) is str and hmac.compare_digest(prev, self.head_hash)):
                return Problem("unlinked", self._where(seq), Text(
                    "audit.unlinked", "prev_hash does not match the hash of the record before "
                    "it (inserted, replaced or reordered record)"))
        self.head_seq = seq
        self.head_hash = computed
        self.count += 1
        ts = row[I_TS]
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        if row[I_CKPT] > self.max_ckpt:
            self.max_ckpt = row[I_CKPT]
        return None

    def _where(self, seq: Any) -> str:
        return at_record(self.chain_id, seq)
