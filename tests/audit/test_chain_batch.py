"""``chain_records`` (the writer's one pass per batch: each value encoded once for the hash
and the journal's frame) gives the bytes of the definitions: the hash of
``reference_payload`` (``json.dumps`` of the canonical document) and the frame of
``encode_frame`` (``json.dumps`` of the row as a list)."""

from __future__ import annotations

import json
import random

import pytest

from audit.chain import (
    I_HASH,
    I_PREV,
    I_SEQ,
    RECORD_COLUMNS,
    ChainChecker,
    chain_records,
    hash_function,
    reference_payload,
)
from audit.errors import AuditRecordError
from audit.journal import FRAME, encode_frame, frame
from audit.record import AuditRecord, StoredRecord

ALPHABET = ["a", "Z", "三", "\"", "\\", "\n", "\t", "\x00", "\x1f", "\u2028", "é", "😀", " ", "/",
            "\ud800"]


def _records(seed: int, n: int) -> list[AuditRecord]:
    rnd = random.Random(seed)

    def text() -> str:
        return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 12)))

    def maybe() -> str | None:
        return rnd.choice([None, text()])

    return [AuditRecord(
        event_type=rnd.choice(["proxy_request", "token_issued", "a.b:c-d_e"]),
        outcome=rnd.choice(["allow", "deny", "error"]), ts=rnd.randint(0, 2**53),
        actor_user=maybe(), actor_client=maybe(), department=maybe(), source_ip=maybe(),
        system=maybe(), resource=maybe(), purpose=maybe(), reason=maybe(),
        request_id=maybe(), req_hash=rnd.choice([None, "ab" * 32]),
        resp_hash=rnd.choice([None, "0" * 128]),
        items=[text() for _ in range(rnd.randint(0, 3))],
        status=rnd.choice([None, 200, 0, -1]), latency_ms=rnd.choice([None, 2**40, 1.6]),
        extra=rnd.choice([{}, {text(): text(), "n": rnd.random(), "big": 2**70,
                               "l": [1, None, True, -0.0, 1e300], "d": {text(): [text()]},
                               "token": text()}]))
        for _ in range(n)]


@pytest.mark.parametrize(("seed", "alg"), [(0, "sha256"), (1, "sha256"), (2, "sm3")])
def test_chained_rows_and_frames_match_the_definitions(seed: int, alg: str) -> None:
    h = hash_function(alg)
    arrays: list[bytes] = []
    rows = chain_records(_records(seed, 60), chain_id="c-1", seq=41, prev_hash="ab" * 32,
                         ckpt=3, hasher=h, arrays=arrays)
    checker = ChainChecker("c-1", alg, anchor_seq=41, anchor_hash="ab" * 32)
    prev = "ab" * 32
    for n, (row, array) in enumerate(zip(rows, arrays, strict=True)):
        as_dict = dict(zip(RECORD_COLUMNS, row, strict=True))
        assert as_dict["seq"] == 42 + n and as_dict["prev_hash"] == prev
        assert as_dict["hash"] == h(reference_payload(as_dict)).hex()
        assert array == json.dumps(list(row), separators=(",", ":"),
                                   ensure_ascii=False).encode("utf-8")
        assert frame(array) == encode_frame(as_dict)
        assert FRAME.unpack_from(frame(array))[0] == len(array)
        assert checker.feed(row) is None
        prev = as_dict["hash"]
    # without arrays (database mode) the same rows
    assert chain_records(_records(seed, 60), chain_id="c-1", seq=41, prev_hash="ab" * 32,
                         ckpt=3, hasher=h) == rows


@pytest.mark.parametrize(("seed", "alg"), [(4, "sha256"), (5, "sm3")])
def test_records_without_a_time_take_the_writers_clock(seed: int, alg: str) -> None:
    """The writer's path: the records without a timestamp are chained with its clock's
    ``now`` (no stamped copy of each): the same rows and frames as the records stamped
    first; without ``now`` such a record is refused."""
    h = hash_function(alg)
    unstamped = [AuditRecord(**{**r.to_dict(), "ts": None}) if n % 2 else r
                 for n, r in enumerate(_records(seed, 40))]
    stamped = [r if r.ts is not None else r.with_ts(1_764_950_000_123) for r in unstamped]
    arrays: list[bytes] = []
    rows = chain_records(unstamped, chain_id="c-1", seq=7, prev_hash="", ckpt=9, hasher=h,
                         arrays=arrays, now=1_764_950_000_123)
    expected: list[bytes] = []
    assert rows == chain_records(stamped, chain_id="c-1", seq=7, prev_hash="", ckpt=9,
                                 hasher=h, arrays=expected)
    assert arrays == expected
    assert [row[5] for row in rows] == [r.ts for r in stamped]
    with pytest.raises(ValueError, match="no timestamp"):
        chain_records(unstamped[1:2], chain_id="c", seq=0, prev_hash="", ckpt=0, hasher=h)


def test_extra_changed_after_construction_is_still_checked() -> None:
    """The record's extra is a plain dict: a value put there later that JSON cannot hold
    is refused as before (AuditRecordError), never written."""
    r = AuditRecord(event_type="login", outcome="success", ts=1)
    r.extra["bad"] = {1, 2}  # type: ignore[index]
    with pytest.raises(AuditRecordError):
        chain_records([r], chain_id="c", seq=0, prev_hash="", ckpt=0,
                      hasher=hash_function("sha256"))
    loop: dict[str, object] = {}
    loop["self"] = loop
    r2 = AuditRecord(event_type="login", outcome="success", ts=1)
    r2.extra["loop"] = loop  # type: ignore[index]
    with pytest.raises(AuditRecordError):
        chain_records([r2], chain_id="c", seq=0, prev_hash="", ckpt=0,
                      hasher=hash_function("sha256"))


def test_a_stored_record_of_a_row_is_the_dataclass_built_from_it() -> None:
    (rec,) = _records(3, 1)
    (row,) = chain_records([rec], chain_id="c", seq=6, prev_hash="ab" * 32, ckpt=2,
                           hasher=hash_function("sha256"))
    assert (I_SEQ, I_PREV, I_HASH) == (1, 2, 3)  # what of_row reads
    fast = StoredRecord.of_row(rec, "c", row, 2)
    assert fast == StoredRecord(record=rec, chain_id="c", seq=7, prev_hash="ab" * 32,
                                hash=row[I_HASH], ckpt=2)
    assert fast.to_dict()["seq"] == 7 and fast.ts == rec.ts
    with pytest.raises(AttributeError):
        fast.seq = 8  # type: ignore[misc]
