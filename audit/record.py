"""One audit record: who did what, to which target, with what outcome.

The fields cover what 等保2.0 (GB/T 22239-2019 8.1.4.3 b) asks an audit record to
hold: date and time, user, event type, success or failure, and other relevant
information; ``req_hash``/``resp_hash`` prove what crossed the gateway without
storing it (as X-Road's request hash does).

Secrets never enter a record: :class:`AuditRecord` redacts, on construction,
every ``extra`` key that names a secret (password, secret, token, cookie,
authorization, ...) and any bearer token, basic credential or JWT found in a
free-text value.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from audit.errors import AuditRecordError

REDACTED = "[redacted]"

OUTCOMES = frozenset({"success", "failure", "allow", "deny", "error"})

# Column limits: a longer value is cut (an audit write never fails on a long reason).
LIMITS: dict[str, int] = {
    "event_type": 64,
    "outcome": 16,
    "actor_user": 128,
    "actor_client": 128,
    "department": 64,
    "source_ip": 64,
    "system": 64,
    "resource": 128,
    "purpose": 500,
    "reason": 2000,
    "request_id": 128,
    "req_hash": 128,
    "resp_hash": 128,
}

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]{16,128}$")

# a key naming a secret, anywhere in the (lower-cased) key
_SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?($|_)|^pwd$|secret|token|cookie|authori[sz]ation|api[_-]?key|"
    r"private[_-]?key|credential|session[_-]?id|^session$|^otp$|^totp|^pin$|client[_-]?assertion|"
    r"code[_-]?verifier|^set-cookie$"
)
# secrets that may hide in a free-text value
_SECRET_VALUE = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # a JWT / JWS
    r"|(?i:bearer|basic|dpop)\s+[A-Za-z0-9._~+/=-]{8,}"  # an Authorization header value
)


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when ``key`` names something that must never be logged."""
    return bool(_SECRET_KEY.search(key.lower()))


def storable(value: str) -> str:
    """``value`` without what UTF-8 or PostgreSQL text cannot hold (NUL, lone surrogates)."""
    if value.isascii():
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def scrub_text(value: str) -> str:
    """``value`` with bearer tokens, basic credentials and JWTs replaced."""
    return _SECRET_VALUE.sub(REDACTED, storable(value))


def redact(value: Any, *, _depth: int = 0) -> Any:
    """A JSON-able copy of ``value`` with secret-named keys and secret-looking text redacted."""
    if _depth > 20:
        raise AuditRecordError("extra: nested too deeply")
    # exact types first: every proxied request builds a record, and the ABC checks
    # below cost more than the rest of the redaction
    kind = type(value)
    if kind is str:
        return scrub_text(value)
    if value is None or kind is int or kind is bool:
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            k = storable(k if isinstance(k, str) else str(k))
            out[k] = REDACTED if is_secret_key(k) else redact(v, _depth=_depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [redact(v, _depth=_depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditRecordError("extra: NaN and infinity are not allowed")
        return value
    return scrub_text(str(value))


def _cut(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if (type(value) is str and len(value) <= LIMITS[name] and value.isascii()
            and "\x00" not in value):
        return value
    text = storable(value if isinstance(value, str) else str(value))
    limit = LIMITS[name]
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class AuditRecord:
    """An audit record before it is chained. Build it with keywords; it cleans itself."""

    event_type: str
    outcome: str
    ts: int | None = None  # UTC milliseconds; the writer's clock fills it when None
    actor_user: str | None = None
    actor_client: str | None = None
    department: str | None = None  # the actor's (consumer) department
    source_ip: str | None = None
    system: str | None = None
    resource: str | None = None  # catalogue resource code
    items: tuple[str, ...] = ()  # data items
    purpose: str | None = None
    reason: str | None = None  # decision reason: policy line or grant id
    status: int | None = None  # HTTP status
    latency_ms: int | None = None
    request_id: str | None = None
    req_hash: str | None = None  # hex hash of the request body
    resp_hash: str | None = None  # hex hash of the response body delivered
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.event_type, str) or not _EVENT_TYPE.match(self.event_type):
            raise AuditRecordError(f"event_type: bad value {self.event_type!r}")
        if self.outcome not in OUTCOMES:
            raise AuditRecordError(
                f"outcome: {self.outcome!r} is not one of {', '.join(sorted(OUTCOMES))}"
            )
        if self.ts is not None and (
                isinstance(self.ts, bool) or not isinstance(self.ts, int) or self.ts < 0):
            raise AuditRecordError("ts: must be non-negative integer milliseconds")
        for name in ("actor_user", "actor_client", "department", "source_ip", "system",
                     "resource", "request_id"):
            set_(self, name, _cut(name, getattr(self, name)))
        for name in ("purpose", "reason"):
            value = _cut(name, getattr(self, name))
            set_(self, name, scrub_text(value) if value is not None else None)
        for name in ("req_hash", "resp_hash"):
            value = getattr(self, name)
            if value is not None:
                value = str(value).lower()
                if not _HEX.match(value):
                    raise AuditRecordError(f"{name}: must be a hex digest")
                set_(self, name, value)
        if isinstance(self.items, str) or not isinstance(self.items, Iterable):
            raise AuditRecordError("items: must be a list of data item names")
        set_(self, "items", tuple(storable(str(i))[:128] for i in self.items))
        for name in ("status", "latency_ms"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise AuditRecordError(f"{name}: must be a number")
            if isinstance(value, float) and not math.isfinite(value):
                raise AuditRecordError(f"{name}: must be finite")
            set_(self, name, round(value))
        if not isinstance(self.extra, Mapping):
            raise AuditRecordError("extra: must be a mapping")
        set_(self, "extra", redact(self.extra))

    def with_ts(self, ts: int) -> AuditRecord:
        """This record stamped with ``ts`` (UTC ms)."""
        # every other field was cleaned when this record was built (it is frozen): copy
        # them as they are, and check only the new timestamp
        if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
            raise AuditRecordError("ts: must be non-negative integer milliseconds")
        new = object.__new__(AuditRecord)
        new.__dict__.update(self.__dict__)
        new.__dict__["ts"] = ts
        return new

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["items"] = list(self.items)
        out["extra"] = dict(self.extra)
        return out


@dataclass(frozen=True)
class StoredRecord:
    """A record as chained and committed."""

    record: AuditRecord
    chain_id: str
    seq: int
    prev_hash: str
    hash: str
    ckpt: int  # the newest checkpoint this record's writer had seen

    @property
    def ts(self) -> int:
        assert self.record.ts is not None
        return self.record.ts

    def to_dict(self) -> dict[str, Any]:
        out = self.record.to_dict()
        out.update(chain_id=self.chain_id, seq=self.seq, prev_hash=self.prev_hash,
                   hash=self.hash, ckpt=self.ckpt)
        return out


def body_hash(body: bytes, hash_name: str = "sha256") -> str:
    """Hex digest of a request or response body (``sha256`` or ``sm3``)."""
    return hashlib.new(hash_name, body).hexdigest()


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 text kept as is."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditRecordError(f"not JSON-encodable: {exc}") from None
