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
import operator
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


def row_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    """A stored row as a tuple in RECORD_COLUMNS order (missing columns None)."""
    return tuple(row.get(c) for c in RECORD_COLUMNS)


def record_payload(row: dict[str, Any]) -> bytes:
    """The canonical bytes of a stored row (``items``/``extra`` as their JSON text)."""
    return payload_of(row_tuple(row))


def reference_payload(row: dict[str, Any]) -> bytes:
    """The definition :func:`payload_of` implements (slow; for tests and documentation)."""
    return _dumps({k: row[c] for k, c in _JSON_KEYS.items()}).encode("utf-8")


def record_row(
    record: AuditRecord, *, chain_id: str, seq: int, prev_hash: str, ckpt: int,
    hasher: Callable[[bytes], bytes],
) -> dict[str, Any]:
    """The stored row of ``record`` as record ``seq`` of ``chain_id``, its hash filled in."""
    if record.ts is None:
        raise ValueError("record has no timestamp")
    row: dict[str, Any] = {
        "chain_id": chain_id, "seq": seq, "prev_hash": prev_hash, "ckpt": ckpt,
        "ts": record.ts, "event_type": record.event_type, "outcome": record.outcome,
        "actor_user": record.actor_user, "actor_client": record.actor_client,
        "department": record.department, "source_ip": record.source_ip,
        "system": record.system, "resource": record.resource,
        "items": _canonical(list(record.items)) if record.items else "[]",
        "purpose": record.purpose,
        "reason": record.reason, "status": record.status, "latency_ms": record.latency_ms,
        "request_id": record.request_id, "req_hash": record.req_hash,
        "resp_hash": record.resp_hash, "hash": "",
        "extra": _canonical(dict(record.extra)) if record.extra else "{}",
    }
    row["hash"] = hasher(payload_of(_row_getter(row))).hex()  # "hash" is not in the payload
    return row


_row_getter = operator.itemgetter(*RECORD_COLUMNS)


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
