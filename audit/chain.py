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


# the columns a record's place in its chain fills (the writer's, at commit); the rest of
# a record is encoded once, where it is appended (``encode_record``: on the event loop)
PLACE_COLUMNS = ("chain_id", "seq", "prev_hash", "hash", "ckpt", "ts")
assert RECORD_COLUMNS[:len(PLACE_COLUMNS)] == PLACE_COLUMNS  # the frame's array: place first
_TAIL_COLUMNS = RECORD_COLUMNS[len(PLACE_COLUMNS):]


def _text_expr(col: str, v: str) -> str:
    conv = f"_int({v})" if col in _INT_COLUMNS else f"_enc({v})"
    return conv if col in _NOT_NULL else f"(\"null\" if {v} is None else {conv})"


def _compile_encoder() -> tuple[Callable[[AuditRecord], Encoded],
                                Callable[..., tuple[str, bytes]]]:
    """Two functions that together write :func:`payload_of`'s bytes (and the frame's
    array) for a record placed in a chain:

    ``encode(record)`` (where the record is appended) encodes every value that does
    not depend on the record's place: the stored values of those columns (``items`` and
    ``extra`` as their canonical text), the canonical document's stretches between the
    place keys (``chain``, ``ckpt``, ``prev``, ``seq``, ``ts``), and the array's tail;
    ``place(encoded, chain, seq, prev, ckpt, ts, hasher)`` (the writer's, under its lock)
    joins them with the place's values: the payload's hash and the frame's array."""
    place_keys = {"chain_id": "chain", "seq": "seq", "prev_hash": "prev", "ckpt": "ckpt",
                  "ts": "ts"}
    by_key = {k: c for k, c in _JSON_KEYS.items()}
    # the canonical document in key order, cut at each place key
    segments: list[list[str]] = [[]]
    places: list[tuple[str, str]] = []  # (the literal before the value, the column)
    for n, key in enumerate(sorted(_JSON_KEYS)):
        col = by_key[key]
        literal = ("{" if n == 0 else ",") + json.dumps(key) + ":"
        if col in place_keys:
            places.append((literal, col))
            segments.append([])
        else:
            segments[-1].append(json.dumps(literal))
            segments[-1].append(f"x_{col}")
    lines = ["def encode(r):",
             "    items = _items(r.items)",
             "    extra = _extra(r.extra)"]
    for col in _TAIL_COLUMNS:
        v = col if col in ("items", "extra") else f"r.{col}"
        if v != col:
            lines.append(f"    {col} = {v}")
        lines.append(f"    x_{col} = {_text_expr(col, col)}")
    tail = ", ".join(_TAIL_COLUMNS)
    segs = ", ".join(("_join((" + ", ".join(parts) + ",))") if parts else '""'
                     for parts in segments)
    rest = ", ".join(f"x_{c}" for c in _TAIL_COLUMNS)
    lines.append(f"    return (({tail},), ({segs},), _join2(({rest},)))")
    # place: the segments and the place values alternate; the hash is not in the payload
    texts = {"chain_id": "c", "seq": "_int(seq)", "prev_hash": "p", "ckpt": "_int(ckpt)",
             "ts": "_int(ts)"}
    parts = ["s[0]"]
    for i, (literal, col) in enumerate(places, start=1):
        parts += [json.dumps(literal), texts[col], f"s[{i}]"]
    parts.append('"}"')
    lines += ["def place(e, c, seq, prev, ckpt, ts, hasher):",
              "    s = e[1]",
              "    p = _enc(prev)",
              "    h = hasher(_join((" + ", ".join(parts) + ",)).encode(\"utf-8\")).hex()",
              "    return h, _join(('[', c, ',', _int(seq), ',', p, ',\"', h, '\",', "
              "_int(ckpt), ',', _int(ts), ',', e[2], ']')).encode(\"utf-8\")"]
    scope: dict[str, Any] = {"_enc": _c_encode, "_int": int.__repr__, "_join": "".join,
                             "_join2": ",".join, "_items": _canonical_items,
                             "_extra": _canonical_extra}
    exec(compile("\n".join(lines) + "\n", "<audit-encoder>", "exec"), scope)  # noqa: S102
    return scope["encode"], scope["place"]


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
    encoded: Sequence[Encoded] | None = None, now: int | None = None,
) -> list[tuple[Any, ...]]:
    """The stored rows (tuples in RECORD_COLUMNS order, hashes filled in) of ``records``
    appended to ``chain_id`` after record ``seq`` whose hash is ``prev_hash``.

    ``encoded`` holds each record's :func:`encode_record`, made where it was appended
    (the event loop's ``AuditLog.append``), so that only the place in the chain and the
    hash are done here; without it they are encoded now. A record without a timestamp
    takes ``now`` (ValueError without it). With ``arrays`` each row's JSON array (the
    journal's frame payload, as ``json.dumps(list(row), separators=(",", ":"),
    ensure_ascii=False)``) is appended to it, from the texts the hash was computed from."""
    if encoded is None:
        encoded = [encode_record(r) for r in records]
    chain_text = _c_encode(chain_id)
    place = _place
    rows = []
    for record, enc in zip(records, encoded, strict=True):
        ts = record.ts
        if ts is None:
            if now is None:
                raise ValueError("record has no timestamp")
            ts = now
        seq += 1
        digest, array = place(enc, chain_text, seq, prev_hash, ckpt, ts, hasher)
        if arrays is not None:
            arrays.append(array)
        rows.append((chain_id, seq, prev_hash, digest, ckpt, ts, *enc[0]))
        prev_hash = digest
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


# (tail values, canonical stretches, array tail): see _compile_encoder
Encoded = tuple[tuple[Any, ...], tuple[str, ...], str]
encode_record, _place = _compile_encoder()


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
