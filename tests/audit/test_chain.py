"""The pure parts: record cleaning, canonical encoding, chain checks."""

from __future__ import annotations

import json

import pytest

from audit.chain import (
    ChainChecker,
    hash_function,
    record_payload,
    record_row,
    reference_payload,
    row_tuple,
)
from audit.errors import AuditRecordError
from audit.record import REDACTED, AuditRecord, body_hash, canonical_json

SECRETS = {
    "password": "hunter2", "client_secret": "s3cr3t", "access_token": "abc",
    "Cookie": "sid=1", "Authorization": "Basic dXNlcjpwYXNz", "refresh_token": "r",
    "id_token": "x", "api_key": "k", "Set-Cookie": "a=b", "code_verifier": "v",
}


def test_secret_keys_are_redacted_everywhere() -> None:
    r = AuditRecord(event_type="login", outcome="success",
                    extra={**SECRETS, "nested": {"headers": {"authorization": "Bearer x"}},
                           "list": [{"new_password": "p"}], "user_agent": "curl/8"})
    text = canonical_json(dict(r.extra))
    for value in ("hunter2", "s3cr3t", "dXNlcjpwYXNz", "sid=1"):
        assert value not in text
    for key in SECRETS:
        assert r.extra[key] == REDACTED
    assert r.extra["nested"]["headers"]["authorization"] == REDACTED
    assert r.extra["list"][0]["new_password"] == REDACTED
    assert r.extra["user_agent"] == "curl/8"


def test_bearer_tokens_and_jwts_in_text_are_scrubbed() -> None:
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    r = AuditRecord(event_type="token_issued", outcome="success",
                    reason=f"issued {jwt}", purpose="Bearer abcdefghijklmnop",
                    extra={"note": f"token was {jwt}"})
    for text in (r.reason, r.purpose, json.dumps(dict(r.extra))):
        assert jwt not in text and "abcdefghijklmnop" not in text


@pytest.mark.parametrize("kw", [
    {"event_type": "Bad Type"}, {"outcome": "maybe"}, {"ts": -1}, {"req_hash": "zz"},
    {"items": "plate_number"}, {"extra": {"x": float("nan")}}, {"status": "200"},
])
def test_bad_records_are_refused(kw: dict) -> None:
    base = {"event_type": "login", "outcome": "success"}
    with pytest.raises(AuditRecordError):
        AuditRecord(**{**base, **kw})


def test_long_values_are_cut_not_refused() -> None:
    r = AuditRecord(event_type="login", outcome="failure", reason="x" * 5000)
    assert r.reason is not None and len(r.reason) == 2000


def test_canonical_encoding_is_deterministic_and_utf8() -> None:
    r = AuditRecord(event_type="proxy_request", outcome="allow", ts=1, purpose="费用核算",
                    extra={"b": 1, "a": [2, "三"]})
    h = hash_function("sha256")
    row = record_row(r, chain_id="c", seq=1, prev_hash="", ckpt=0, hasher=h)
    payload = record_payload(row)
    assert "费用核算".encode() in payload
    assert b" " not in payload
    assert row["extra"] == '{"a":[2,"三"],"b":1}'
    keys = list(json.loads(payload))
    assert keys == sorted(keys)
    assert row["hash"] == h(payload).hex()


def _chain(n: int, alg: str = "sha256") -> list[dict]:
    h = hash_function(alg)
    rows, prev = [], ""
    for i in range(1, n + 1):
        row = record_row(AuditRecord(event_type="login", outcome="success", ts=i),
                         chain_id="c", seq=i, prev_hash=prev, ckpt=0, hasher=h)
        rows.append(row)
        prev = row["hash"]
    return rows


@pytest.mark.parametrize("alg", ["sha256", "sm3"])
def test_intact_chain_passes(alg: str) -> None:
    c = ChainChecker("c", alg)
    assert all(c.feed(row_tuple(r)) is None for r in _chain(20, alg))
    assert c.head_seq == 20


def test_chain_checker_names_each_kind_of_damage() -> None:
    rows = _chain(5)
    changed = [dict(r) for r in rows]
    changed[2]["actor_user"] = "mallory"
    deleted = rows[:2] + rows[3:]
    swapped = [rows[0], rows[2], rows[1], rows[3]]

    def first(rs: list[dict]) -> str:
        c = ChainChecker("c", "sha256")
        for r in rs:
            p = c.feed(row_tuple(r))
            if p:
                return f"{p.kind}@{r['seq']}"
        return "ok"

    assert first(changed) == "changed@3"
    assert first(deleted) == "missing@4"
    assert first(swapped) == "missing@3"
    # a record whose prev link was rewritten but whose hash was recomputed
    relinked = [dict(r) for r in rows]
    relinked[2]["prev_hash"] = "00" * 32
    relinked[2]["hash"] = hash_function("sha256")(record_payload(relinked[2])).hex()
    assert first(relinked) == "unlinked@3"


def test_body_hash() -> None:
    assert body_hash(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert len(body_hash(b"abc", "sm3")) == 64


@pytest.mark.parametrize("seed", range(5))
def test_fast_encoder_matches_json_dumps(seed: int) -> None:
    import random
    rnd = random.Random(seed)
    alphabet = ["a", "Z", "三", "\"", "\\", "\n", "\t", "\x00", "\x1f", "\u2028", "é", "😀",
                " ", "/"]

    def text() -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 12)))

    for _ in range(200):
        r = AuditRecord(
            event_type="proxy_request", outcome=rnd.choice(["allow", "deny"]),
            ts=rnd.randint(0, 2**53), actor_user=rnd.choice([None, text()]),
            department=rnd.choice([None, text()]), reason=rnd.choice([None, text()]),
            purpose=text(), items=[text() for _ in range(rnd.randint(0, 3))],
            status=rnd.choice([None, 200, 0]), latency_ms=rnd.choice([None, 2**40]),
            extra={text(): text(), "n": rnd.random(), "l": [1, None, True]})
        row = record_row(r, chain_id=text() or "c", seq=rnd.randint(1, 10**12),
                         prev_hash=text(), ckpt=rnd.randint(0, 9), hasher=hash_function("sha256"))
        assert record_payload(row) == reference_payload(row)


def test_text_is_storable() -> None:
    r = AuditRecord(event_type="login", outcome="failure", actor_user="a\x00b",
                    reason="bad \ud800 surrogate", extra={"k": "nul\x00"})
    assert r.actor_user == "a\ufffdb"
    assert r.reason is not None
    r.reason.encode("utf-8")
    canonical_json(dict(r.extra)).encode("utf-8")
