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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from audit.record import AuditRecord, canonical_json

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
    raise ValueError(f"unknown hash {name!r} (one of {', '.join(HASHES)})")


def _hex_hasher(name: str) -> Callable[[bytes], str]:
    fn = hash_function(name)
    return lambda data: fn(data).hex()


def record_payload(row: dict[str, Any]) -> bytes:
    """The canonical bytes of a stored row (``items``/``extra`` as their JSON text)."""
    doc = {
        "chain": row["chain_id"], "seq": row["seq"], "prev": row["prev_hash"],
        "ckpt": row["ckpt"], "ts": row["ts"], "event_type": row["event_type"],
        "outcome": row["outcome"], "actor_user": row["actor_user"],
        "actor_client": row["actor_client"], "department": row["department"],
        "source_ip": row["source_ip"], "system": row["system"], "resource": row["resource"],
        "items": row["items"], "purpose": row["purpose"], "reason": row["reason"],
        "status": row["status"], "latency_ms": row["latency_ms"],
        "request_id": row["request_id"], "req_hash": row["req_hash"],
        "resp_hash": row["resp_hash"], "extra": row["extra"],
    }
    return _dumps(doc).encode("utf-8")


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
        "items": canonical_json(list(record.items)), "purpose": record.purpose,
        "reason": record.reason, "status": record.status, "latency_ms": record.latency_ms,
        "request_id": record.request_id, "req_hash": record.req_hash,
        "resp_hash": record.resp_hash, "extra": canonical_json(dict(record.extra)),
    }
    row["hash"] = hasher(record_payload(row)).hex()
    return row


def row_to_record(row: Any) -> AuditRecord:
    """The :class:`AuditRecord` held by a stored row (mapping or attribute access)."""
    get = row.__getitem__ if isinstance(row, dict) else row._mapping.__getitem__
    return AuditRecord(
        ts=get("ts"), event_type=get("event_type"), outcome=get("outcome"),
        actor_user=get("actor_user"), actor_client=get("actor_client"),
        department=get("department"), source_ip=get("source_ip"), system=get("system"),
        resource=get("resource"), items=tuple(json.loads(get("items") or "[]")),
        purpose=get("purpose"), reason=get("reason"), status=get("status"),
        latency_ms=get("latency_ms"), request_id=get("request_id"),
        req_hash=get("req_hash"), resp_hash=get("resp_hash"),
        extra=json.loads(get("extra") or "{}"),
    )


@dataclass(frozen=True)
class Problem:
    """The first thing found wrong, and where."""

    kind: str  # changed | missing | inserted | unlinked | checkpoint | signature | truncated ...
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


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

    def feed(self, row: dict[str, Any]) -> Problem | None:
        """Check the next stored row; a :class:`Problem` when it does not belong here."""
        seq = row["seq"]
        where = f"record chain={self.chain_id} seq={seq}"
        if row["chain_id"] != self.chain_id:
            return Problem("inserted", where, f"belongs to chain {row['chain_id']}")
        try:
            computed = self._hex(record_payload(row))
        except (TypeError, ValueError) as exc:
            return Problem("changed", where, f"cannot be encoded ({exc})")
        stored = row["hash"] or ""
        if not hmac.compare_digest(computed, str(stored)):
            return Problem("changed", where,
                           "content does not match its hash (a field was changed)")
        if self._trust_first and self.count == 0:
            self._trust_first = False
        else:
            expected = self.head_seq + 1
            if seq > expected:
                what = "record" if seq == expected + 1 else "records"
                first = f"seq {expected}" if seq == expected + 1 else f"seq {expected}..{seq - 1}"
                return Problem("missing", where, f"{what} {first} missing (deleted)")
            if seq < expected:
                return Problem("inserted", where, f"duplicate or out-of-order seq, "
                               f"expected {expected}")
            if not hmac.compare_digest(str(row["prev_hash"]), self.head_hash):
                return Problem("unlinked", where, "prev_hash does not match the hash of the "
                               "record before it (inserted, replaced or reordered record)")
        self.head_seq = seq
        self.head_hash = computed
        self.count += 1
        ts = row["ts"]
        if self.first_ts is None:
            self.first_ts = ts
        self.last_ts = ts
        if row["ckpt"] > self.max_ckpt:
            self.max_ckpt = row["ckpt"]
        return None
