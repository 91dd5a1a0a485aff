"""``AuditRecord``'s cheaper construction cleans exactly as the dataclass it replaced.

``reference`` below is f5d2294's ``__post_init__`` (the field checks, cuts and secret
scrubbing, one field at a time), kept here as the oracle; the only intended difference
is that ``event_type`` and the hex digests are matched whole (``fullmatch``), where the
old ``$`` let one trailing newline through. Hypothesis feeds both the same arguments:
the same fields come out, or the same error.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from enum import IntEnum
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.errors import AuditRecordError
from audit.record import (
    LIMITS,
    OUTCOMES,
    REDACTED,
    AuditRecord,
    canonical_json,
    is_secret_key,
    scrub_text,
    storable,
)

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}\Z")
_HEX = re.compile(r"^[0-9a-f]{16,128}\Z")
_SECRET_VALUE = re.compile(
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|(?i:bearer|basic|dpop)\s+[A-Za-z0-9._~+/=-]{8,}"
)


def _scrub(value: str) -> str:
    return _SECRET_VALUE.sub(REDACTED, storable(value))


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        raise AuditRecordError("extra: nested too deeply")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            k = storable(k if isinstance(k, str) else str(k))
            out[k] = REDACTED if is_secret_key(k) else _redact(v, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_redact(v, depth + 1) for v in value]
    if isinstance(value, str):
        return _scrub(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AuditRecordError("extra: NaN and infinity are not allowed")
        return value
    return _scrub(str(value))


def _cut(name: str, value: Any) -> str | None:
    if value is None:
        return None
    text = storable(value if isinstance(value, str) else str(value))
    return text if len(text) <= LIMITS[name] else text[: LIMITS[name] - 1] + "…"


def reference(**kw: Any) -> dict[str, Any]:
    """The fields f5d2294's AuditRecord kept for these arguments (or its error)."""
    f = {x.name: (x.default if x.default is not x.default_factory else {})  # type: ignore[misc]
         for x in fields(AuditRecord)}
    f["extra"] = {}
    f.update(kw)
    if not isinstance(f["event_type"], str) or not _EVENT_TYPE.match(f["event_type"]):
        raise AuditRecordError("event_type")
    if f["outcome"] not in OUTCOMES:
        raise AuditRecordError("outcome")
    ts = f["ts"]
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int) or ts < 0):
        raise AuditRecordError("ts")
    for name in ("actor_user", "actor_client", "department", "source_ip", "system",
                 "resource", "request_id"):
        f[name] = _cut(name, f[name])
    for name in ("purpose", "reason"):
        value = _cut(name, f[name])
        f[name] = _scrub(value) if value is not None else None
    for name in ("req_hash", "resp_hash"):
        if f[name] is not None:
            f[name] = str(f[name]).lower()
            if not _HEX.match(f[name]):
                raise AuditRecordError(name)
    if isinstance(f["items"], str) or not isinstance(f["items"], Iterable):
        raise AuditRecordError("items")
    f["items"] = tuple(storable(str(i))[:128] for i in f["items"])
    for name in ("status", "latency_ms"):
        value = f[name]
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AuditRecordError(name)
        if isinstance(value, float) and not math.isfinite(value):
            raise AuditRecordError(name)
        f[name] = round(value)
    if not isinstance(f["extra"], Mapping):
        raise AuditRecordError("extra")
    f["extra"] = _redact(f["extra"])
    return f


def _outcome(**kw: Any) -> tuple[str, Any]:
    try:
        return "ok", reference(**kw)
    except AuditRecordError as exc:
        return "error", str(exc).split(":")[0]


def _built(**kw: Any) -> tuple[str, Any]:
    try:
        r = AuditRecord(**kw)
    except AuditRecordError as exc:
        return "error", str(exc).split(":")[0]
    return "ok", {x.name: getattr(r, x.name) for x in fields(r)}


class Status(IntEnum):
    OK = 200


# text that reaches every branch: ASCII and not, NUL, lone surrogates, long, secrets
_JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
_text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["zhang.san", "czt", "10.0.0.7", "", "a\x00b", "bad \ud800 x", "费用核算",
                     f"token {_JWT}", "Bearer abcdefghijk", "bAſic abcdefghijk",
                     "dpop\u2003abcdefgh", "x" * 3000, "y" * 129, "z" * 64 + "\n"]),
)
_maybe_text = st.one_of(st.none(), _text, st.integers(-5, 5))
_key = st.one_of(st.sampled_from(["method", "password", "Client_Secret", "token\x00",
                                  "Set-Cookie", "pin", "grants", "note"]),
                 st.text(max_size=8), st.integers(0, 3))
_leaf = st.one_of(st.none(), st.booleans(), st.integers(), _text,
                  st.floats(allow_nan=False, allow_infinity=False), st.just(Status.OK))
_extra = st.recursive(
    st.dictionaries(_key, _leaf, max_size=4),
    lambda inner: st.one_of(st.dictionaries(_key, inner, max_size=3),
                            st.lists(inner, max_size=3), st.tuples(inner)),
    max_leaves=12,
)
_digest = st.one_of(st.none(), st.sampled_from(["ab" * 32, "AB" * 32, "0" * 128]),
                    st.text("0123456789abcdefABCDEF", min_size=16, max_size=128))
_number = st.one_of(st.none(), st.integers(-3, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.just(Status.OK))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(event_type=st.one_of(st.sampled_from(["proxy_request", "token_issued", "a" * 64]),
                            st.from_regex(r"[a-z][a-z0-9_.:-]{0,63}", fullmatch=True)),
       outcome=st.sampled_from(sorted(OUTCOMES)),
       ts=st.one_of(st.none(), st.integers(0, 2**53)),
       actor_user=_maybe_text, actor_client=_maybe_text, department=_maybe_text,
       source_ip=_maybe_text, system=_maybe_text, resource=_maybe_text,
       request_id=_maybe_text, purpose=_maybe_text, reason=_maybe_text,
       items=st.one_of(st.lists(_text, max_size=3), st.tuples(_text, _text),
                       st.tuples(st.integers()), st.frozensets(st.sampled_from("ab"))),
       status=_number, latency_ms=_number, req_hash=_digest, resp_hash=_digest,
       extra=st.one_of(_extra, st.just(MappingProxyType({"password": "x", "n": 1}))))
def test_construction_matches_the_reference(**kw: Any) -> None:
    assert _built(**kw) == _outcome(**kw)


def _deep(n: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(n):
        value = {"n": value}
    return value


@pytest.mark.parametrize(("name", "bad"), [
    ("event_type", "Bad Type"), ("event_type", None), ("event_type", "a" * 65),
    ("event_type", "login\n"), ("outcome", "maybe"), ("outcome", None), ("ts", -1),
    ("ts", True), ("ts", 1.5), ("ts", "5"), ("req_hash", "zz"), ("req_hash", "ab" * 8 + "\n"),
    ("resp_hash", "0" * 129), ("items", "plate_number"), ("items", 3), ("status", "200"),
    ("status", True), ("latency_ms", float("inf")), ("status", float("nan")),
    ("extra", None), ("extra", "not a mapping"), ("extra", {"x": float("nan")}),
    ("extra", {"l": [{"x": float("-inf")}]}), ("extra", _deep(20)),
])
def test_bad_fields_are_refused_alike(name: str, bad: Any) -> None:
    kw = {"event_type": "login", "outcome": "success", name: bad}
    assert _built(**kw)[0] == "error" and _built(**kw) == _outcome(**kw)


def test_just_deep_enough_is_kept() -> None:
    kw = {"event_type": "login", "outcome": "success", "extra": _deep(19)}
    assert _built(**kw)[0] == "ok" and _built(**kw) == _outcome(**kw)


def test_the_gateways_records_match_the_reference() -> None:
    """The two records on the hot path, as the proxy and the token endpoint build them."""
    proxied = dict(event_type="proxy_request", outcome="allow", status=200, latency_ms=3,
                   request_id="0f3c2a9e5b7d4c1a", source_ip="127.0.0.1", system="bench",
                   actor_user="zhang.san", actor_client="finance-system", department="czt",
                   resource="JG-0007", items=("plate_number", "车牌号"), purpose="费用核算",
                   reason="grant 17", resp_hash="cd" * 32,
                   extra={"method": "GET", "target": f"/s/bench/api/x?access_token={_JWT}",
                          "rule": "allow", "line_id": None, "grants": [17], "shape": True,
                          "authorization": "Basic dXNlcjpwYXNz"})
    token = dict(event_type="token_issued", outcome="success", actor_client="finance-system",
                 extra={"grant_type": "client_credentials", "scope": "openid"})
    for kw in (proxied, token):
        assert _built(**kw) == _outcome(**kw)
    r = AuditRecord(**proxied)  # type: ignore[arg-type]
    assert r.extra["authorization"] == REDACTED and _JWT not in canonical_json(dict(r.extra))


_HOSTILE = ["a\x00b", "bad \ud800", "费用\x00", f"{_JWT}", "Bearer abcdefghijk", "x" * 3000,
            "\x00" * 200, "eyJabcd.efgh.", "dpop abcdefg"]


@pytest.mark.parametrize("text", _HOSTILE)
def test_hostile_text_is_cleaned_alike_in_every_field(text: str) -> None:
    kw: dict[str, Any] = {
        "event_type": "login", "outcome": "deny", "items": (text, "ok"),
        "extra": {text: text, "n": [text, {"k": text}], "password": text, "ok": 1},
        **{name: text for name in ("actor_user", "actor_client", "department", "source_ip",
                                   "system", "resource", "request_id", "purpose", "reason")}}
    assert _built(**kw) == _outcome(**kw)


def test_the_constructor_takes_the_fields_in_order() -> None:
    params = list(inspect.signature(AuditRecord).parameters.values())
    assert [p.name for p in params] == [f.name for f in fields(AuditRecord)]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
    r = AuditRecord("login", "success", 5, "zhang.san")
    assert (r.event_type, r.outcome, r.ts, r.actor_user, r.extra) == (
        "login", "success", 5, "zhang.san", {})
    # extra's default is a fresh dict per record, as default_factory=dict gave
    assert AuditRecord("login", "success").extra is not AuditRecord("login", "success").extra
    again = replace(r, outcome="failure", extra={"password": "x"})
    assert again.outcome == "failure" and again.extra == {"password": REDACTED}
    assert r == AuditRecord("login", "success", 5, "zhang.san")
    with pytest.raises(AttributeError):
        r.outcome = "deny"  # type: ignore[misc]


@pytest.mark.parametrize("kw", [{"event_type": "login\n"}, {"req_hash": "ab" * 8 + "\n"}])
def test_a_trailing_newline_is_refused(kw: dict[str, Any]) -> None:
    with pytest.raises(AuditRecordError):
        AuditRecord(**{"event_type": "login", "outcome": "success", **kw})


@pytest.mark.parametrize("text", [
    "allow by policy line 1: p, role:data_steward, czt, /s/bench/api/*, GET, allow",
    "BeArEr abcdefghij", "note: basic abcdefgh!", "DPoP\x1cabcdefgh", "x eyJabcd.efgh.ij y",
    "basıc abcdefghijk", "BASİC abcdefghijk", "baſic abcdefghijk", "BEARER\u00a0abcdefghij",
    "bearer", "eyJ only", "plain ascii text without any keyword at all",
])
def test_scrubbing_skips_only_text_that_cannot_match(text: str) -> None:
    assert scrub_text(text) == _scrub(text)


def test_no_secret_is_shorter_than_the_search_skips() -> None:
    """scrub_text skips the search below 13 code points: the shortest matches are 13."""
    for shortest in ("eyJabcd.efgh.", "dpop abcdefgh", "DPOP\tabcdefgh"):
        assert len(shortest) == 13 and scrub_text(shortest) == REDACTED
        assert scrub_text(shortest[:-1]) == shortest[:-1]


def test_the_remembered_keys_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from audit import record

    monkeypatch.setattr(record, "_KEYS", {})  # this test's own, left behind after it
    for n in range(record._CACHE_LIMIT + 10):
        AuditRecord(event_type="login", outcome="success", extra={f"k{n}": 1, "x" * 65: 2})
    assert len(record._KEYS) <= record._CACHE_LIMIT
    assert "x" * 65 not in record._KEYS
    # past the limit keys are still cleaned, only not remembered
    r = AuditRecord(event_type="login", outcome="success",
                    extra={"new_password_2": "p", "a\x00b": 1})
    assert r.extra == {"new_password_2": REDACTED, "a\ufffdb": 1}
