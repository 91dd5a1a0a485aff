"""An insider's attacks on the audit log's tamper evidence (2026-12-05).

The insider can write the database and the journal directory but holds neither the
master key nor the audit signing key. Each test is one attack that ``verify`` let
through (exit 0) before the fix beside it; docs/seams.md lists what held.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.applications import Starlette

from audit.chain import RECORD_COLUMNS, hash_function, payload_of, record_row
from audit.checkpoints import b64u, list_checkpoints, signature_ok
from audit.indexer import Indexer
from audit.journal import FRAME, Journal, read_frames
from audit.journal_verify import verify_journal
from audit.record import AuditRecord, canonical_json
from audit.verify import keyservice_sigcheck, verify_database
from audit.writer import AuditLog
from gateway.cli.audit_cmd import audit
from gateway.services import key_service, master_key
from gateway.settings import Settings
from gateway.web.api.audit import routes
from keys import FileMasterKey, _primitives
from tests.audit.conftest import rec
from tests.audit.test_api import Parts, province_auditors

SHA256 = hash_function("sha256")


@pytest.fixture
def chain(make_log: Callable[..., AuditLog]) -> str:
    """One chain of 12 records, a signed checkpoint every 5 (and at close)."""
    log = make_log(writer_id="victim", checkpoint_every=5)
    for i in range(12):
        log.append_sync(rec(i))
    log.close_sync()
    assert log.chain_id is not None
    return log.chain_id


def check(engine: sa.Engine, keys: Any) -> Any:
    return verify_database(engine, keyservice_sigcheck(keys))


def plant_audit_key(engine: sa.Engine) -> tuple[str, Any]:
    """The insider's own key pair, its public half written into the key ring's table as
    a retired ``audit`` key: a well-formed row (its kid carries its thumbprint)."""
    private = _primitives.generate_private_key("ES256")
    public = _primitives.public_jwk(private)
    kid = f"audit-20260101-{_primitives.thumbprint(public)}"
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO keys_signing_keys (kid, key_use, alg, state, private_blob, public_jwk,"
            " created_at, activated_at, retired_at) VALUES (:kid, 'audit', 'ES256', 'retired',"
            " NULL, :jwk, :now, :now, :now)"),
            {"kid": kid, "jwk": json.dumps(public, sort_keys=True), "now": now})
    return kid, private


def rewrite(engine: sa.Engine, chain_id: str, seq: int, column: str, value: Any, *,
            kid: str, private: Any) -> None:
    """Change one field of a record, then re-hash the chain from there, move the registry
    head and re-sign every checkpoint (heads and links) with the insider's key."""
    cols = ", ".join(RECORD_COLUMNS)
    with engine.begin() as conn:
        rows = [list(r) for r in conn.execute(sa.text(
            f"SELECT {cols} FROM audit_records WHERE chain_id=:c ORDER BY seq"),  # noqa: S608
            {"c": chain_id})]
        i_seq, i_prev, i_hash = (RECORD_COLUMNS.index(c) for c in ("seq", "prev_hash", "hash"))
        prev, hashes = "", {}
        for row in rows:
            if row[i_seq] == seq:
                row[RECORD_COLUMNS.index(column)] = value
            row[i_prev] = prev
            row[i_hash] = prev = SHA256(payload_of(row)).hex()
            hashes[row[i_seq]] = prev
            conn.execute(sa.text(
                f"UPDATE audit_records SET {column}=:v, prev_hash=:p, hash=:h "  # noqa: S608
                "WHERE chain_id=:c AND seq=:s"),
                {"v": row[RECORD_COLUMNS.index(column)], "p": row[i_prev], "h": prev,
                 "c": chain_id, "s": row[i_seq]})
        conn.execute(sa.text("UPDATE audit_chains SET head_hash=:h WHERE chain_id=:c"),
                     {"h": prev, "c": chain_id})
        cp_prev = ""
        for cp in conn.execute(sa.text("SELECT seq, payload FROM audit_checkpoints ORDER BY seq")
                               ).all():
            doc = json.loads(cp.payload)
            head = doc["heads"].get(chain_id)
            if head is not None:
                head["hash"] = hashes[head["seq"]]
            doc["prev"] = cp_prev
            payload = canonical_json(doc)
            cp_prev = SHA256(payload.encode()).hex()
            sig = _primitives.sign_raw("ES256", private, payload.encode())
            conn.execute(sa.text(
                "UPDATE audit_checkpoints SET payload=:p, prev_hash=:prev, hash=:h, kid=:k, "
                "signature=:s WHERE seq=:n"),
                {"p": payload, "prev": doc["prev"], "h": cp_prev, "k": kid, "s": b64u(sig),
                 "n": cp.seq})


def test_a_checkpoint_key_the_key_ring_did_not_make_is_not_trusted(
        settings: Settings, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """Finding: any public key in ``keys_signing_keys`` with use ``audit`` was trusted,
    so an insider who planted one could rewrite history and re-sign every checkpoint:
    ``govgate audit verify`` said intact."""
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, audit_engine, master_key(settings, env))
    ks.bootstrap()
    log = AuditLog(audit_engine, keys=ks, writer_id="gw-1", checkpoint_every=5)
    log.append_many_sync([rec(i) for i in range(12)])
    log.close_sync()
    assert log.chain_id is not None
    kid, private = plant_audit_key(audit_engine)
    rewrite(audit_engine, log.chain_id, 3, "actor_user", "nobody", kid=kid, private=private)
    r = CliRunner().invoke(audit, ["verify"], env=env, catch_exceptions=False)
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"first bad: checkpoint 1: signed by key {kid}, not made by "
                               "this key ring"), r.output
    # the auditors' checkpoint list (API and console) does not show them as signed either
    assert [signature_ok(c, ks) for c in list_checkpoints(audit_engine)] == [False]


def test_a_purge_sealed_by_a_record_of_ones_own_is_not_a_purge(
        chain: str, make_log: Callable[..., AuditLog], audit_engine: sa.Engine,
        keys: Any) -> None:
    """Finding: deleting the oldest records, with an anchor and a sealing record on a
    chain of the insider's own (hashes need no key), passed for a retention purge."""
    with audit_engine.begin() as conn:
        h5 = conn.execute(sa.text("SELECT hash FROM audit_records WHERE chain_id=:c AND seq=5"),
                          {"c": chain}).scalar_one()
        seal = record_row(AuditRecord(event_type="audit_purge", outcome="success", ts=1,
                                      extra={"anchors": {chain: {"seq": 5, "hash": h5}}}),
                          chain_id="forged", seq=1, prev_hash="", ckpt=0, hasher=SHA256)
        conn.execute(sa.text(
            "INSERT INTO audit_chains (chain_id, hash_name, owner, lease_token, lease_until, "
            "head_seq, head_hash, last_ckpt, created_at, status) VALUES ('forged', 'sha256', "
            "'cli', 'x', 0, 1, :h, 0, 1, 'closed')"), {"h": seal["hash"]})
        conn.execute(sa.insert(sa.table("audit_records", *map(sa.column, RECORD_COLUMNS)))
                     .values(seal))
        conn.execute(sa.text(
            "INSERT INTO audit_anchors (chain_id, seq, hash, seal_chain, seal_seq, archive, "
            "created_at) VALUES (:c, 5, :h, 'forged', 1, 'none', 1)"), {"c": chain, "h": h5})
        conn.execute(sa.text("DELETE FROM audit_records WHERE chain_id=:c AND seq<=5"),
                     {"c": chain})
    # the next checkpoint of a live writer signs every chain's head, the insider's too
    live = make_log(writer_id="live")
    live.append_sync(rec(99))
    assert live.checkpoint_sync() is not None
    rep = check(audit_engine, keys)
    assert [(p.kind, p.where) for p in rep.problems] == [("anchor", f"anchor of chain {chain}")]
    assert rep.problems[0].detail == ("its sealing record (record chain=forged seq=1) is neither "
                                      "signed nor covered by a checkpoint its own chain wrote")


def test_a_purge_sealed_before_seals_were_signed_still_verifies(
        chain: str, make_log: Callable[..., AuditLog], audit_engine: sa.Engine,
        keys: Any) -> None:
    """A legitimate state: a purge of before 2026-12-05 sealed with an unsigned record,
    covered by the checkpoint its own (the CLI's) chain wrote when it closed."""
    with audit_engine.connect() as conn:
        h5 = conn.execute(sa.text("SELECT hash FROM audit_records WHERE chain_id=:c AND seq=5"),
                          {"c": chain}).scalar_one()
    cli = make_log(writer_id="cli")
    seal = cli.append_sync(AuditRecord(event_type="audit_purge", outcome="success", extra={
        "anchors": {chain: {"seq": 5, "hash": h5}}, "archive": "a" * 64, "until": 1}))
    cli.close_sync()
    with audit_engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO audit_anchors (chain_id, seq, hash, seal_chain, seal_seq, archive, "
            "created_at) VALUES (:c, 5, :h, :sc, :ss, :a, 1)"),
            {"c": chain, "h": h5, "sc": seal.chain_id, "ss": seal.seq, "a": "a" * 64})
        conn.execute(sa.text("DELETE FROM audit_records WHERE chain_id=:c AND seq<=5"),
                     {"c": chain})
    rep = check(audit_engine, keys)
    assert rep.ok, rep.problems


def test_a_whole_chain_deleted_is_named_as_such(
        make_log: Callable[..., AuditLog], chain: str, audit_engine: sa.Engine,
        keys: Any) -> None:
    """Finding (the report): a chain deleted with its registry row was reported as
    "records of a chain nobody registered", where there were no records at all."""
    other = make_log(writer_id="other", checkpoint_every=100)
    other.append_many_sync([rec(i) for i in range(4)])
    other.close_sync()
    with audit_engine.begin() as conn:
        for table in ("audit_records", "audit_chains"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE chain_id=:c"),  # noqa: S608
                         {"c": chain})
    rep = check(audit_engine, keys)
    assert [(p.kind, p.where) for p in rep.problems] == [("missing", f"chain {chain}")]
    assert rep.problems[0].detail.startswith("the whole chain was deleted")


def test_a_rotated_audit_key_still_vouches_for_its_checkpoints(
        chain: str, make_log: Callable[..., AuditLog], audit_engine: sa.Engine,
        keys: Any) -> None:
    """A legitimate state: checkpoints signed by the audit key before a rotation."""
    old = keys.ring.active("audit")[0].kid
    keys.rotate("audit")
    keys.promote_now("audit")
    log = make_log(writer_id="after-rotation")
    log.append_sync(rec(1))
    log.close_sync()
    with audit_engine.connect() as conn:
        kids = set(conn.execute(sa.text("SELECT kid FROM audit_checkpoints")).scalars())
    assert old in kids and len(kids) == 2
    rep = check(audit_engine, keys)
    assert rep.ok, rep.problems


def test_a_checkpoint_whose_heads_are_not_an_object_is_reported_not_a_crash(
        chain: str, audit_engine: sa.Engine, keys: Any) -> None:
    """Finding: ``"heads": [...]`` in a checkpoint's payload made verify raise
    AttributeError (a traceback, no report)."""
    with audit_engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_checkpoints SET payload='{\"heads\":[1]}' "
                             "WHERE seq=2"))
    rep = check(audit_engine, keys)
    assert rep.first_problem is not None and rep.first_problem.where == "checkpoint 2"


# -- the journal ---------------------------------------------------------------------------


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal", segment_bytes=4000)


@pytest.fixture
def unloaded(make_log: Callable[..., AuditLog], journal: Journal) -> str:
    """40 records durable in the journal (several segments), none indexed yet: the
    writer has no indexer, and has stopped (its chain's lock is free)."""
    log = make_log(writer_id="journaled", journal=journal)
    for start in range(0, 40, 4):  # a segment is full after its batch: several segments
        log.append_many_sync([rec(i) for i in range(start, start + 4)])
    log.close_sync()
    assert log.chain_id is not None and len(journal.segments(log.chain_id)) >= 3
    return log.chain_id


def test_deleting_the_oldest_segment_not_yet_loaded_is_found(
        unloaded: str, journal: Journal, audit_engine: sa.Engine) -> None:
    """Finding: with the first segment gone the journal still linked up (its first
    record trusted) and the table held nothing to compare: verify said intact while
    the indexer stopped for good at the gap."""
    first = journal.segments(unloaded)[0]
    gone = [row[1] for _, row in read_frames(first)]
    first.unlink()
    rep = verify_journal(audit_engine, journal)
    assert [(p.kind, p.where) for p in rep.problems] == [
        ("missing", f"record chain={unloaded} seq={gone[0]}")]
    assert f"records seq {gone[0]}..{gone[-1]}" in rep.problems[0].detail


def _damage_frame(path: Path, n: int) -> int:
    """Flip a byte inside frame ``n``'s payload (its crc32 left as it was); the byte
    offset where that frame starts."""
    data = bytearray(path.read_bytes())
    pos = 0
    for _ in range(n):
        pos += FRAME.size + FRAME.unpack_from(data, pos)[0]
    data[pos + FRAME.size + 5] ^= 0x01
    path.write_bytes(bytes(data))
    return pos


def test_a_damaged_frame_with_records_after_it_is_not_a_torn_tail(
        unloaded: str, journal: Journal, audit_engine: sa.Engine,
        make_log: Callable[..., AuditLog]) -> None:
    """Finding: reading stopped at the first frame whose checksum failed, as at a
    frame torn by a crash, so an edited frame hid itself and every record after it;
    an indexer taking the dead chain, or a writer resuming it, then cut the file there
    (the records after it lost)."""
    newest = journal.segments(unloaded)[-1]
    frames = list(read_frames(newest))
    assert len(frames) >= 4
    size = newest.stat().st_size
    _damage_frame(newest, 1)
    damaged_seq = frames[1][1][1]
    rep = verify_journal(audit_engine, journal)
    assert [(p.kind, p.where) for p in rep.problems] == [
        ("changed", f"record chain={unloaded} seq={damaged_seq}")]
    Indexer(audit_engine, journal).run_once()
    assert newest.stat().st_size == size  # the evidence stays
    assert not verify_journal(audit_engine, journal).ok
    # nor does a writer resuming the chain cut it: it starts a chain of its own
    again = make_log(writer_id="journaled", journal=journal)
    assert again.append_sync(rec(99)).chain_id != unloaded
    assert newest.stat().st_size == size


def test_zeros_over_a_frames_head_with_records_after_it_are_damage_not_a_tail(
        unloaded: str, journal: Journal, audit_engine: sa.Engine) -> None:
    """Finding: eight zero bytes over a frame's length and checksum read as a whole
    empty frame (length 0, crc32 of nothing 0), so the newest segment's records after
    it passed for a torn tail: verify said intact and the indexer cut them off. Since
    segments are preallocated with zeros, zeros end the frames only when nothing but
    zeros follows."""
    newest = journal.segments(unloaded)[-1]
    frames = list(read_frames(newest))
    assert len(frames) >= 4
    size = newest.stat().st_size
    data = bytearray(newest.read_bytes())
    data[frames[0][0]:frames[0][0] + FRAME.size] = bytes(FRAME.size)
    newest.write_bytes(bytes(data))
    rep = verify_journal(audit_engine, journal)
    assert [(p.kind, p.where) for p in rep.problems] == [
        ("changed", f"record chain={unloaded} seq={frames[1][1][1]}")]
    Indexer(audit_engine, journal).run_once()
    assert newest.stat().st_size == size  # the evidence stays


def test_an_unreadable_segment_is_reported_not_a_crash(
        unloaded: str, journal: Journal, audit_engine: sa.Engine) -> None:
    """Finding: a directory in the place of a segment file made verify raise
    IsADirectoryError (a traceback, no report), and every indexer round fail for
    every chain."""
    newest = journal.segments(unloaded)[-1]
    newest.unlink()
    newest.mkdir()
    rep = verify_journal(audit_engine, journal)
    assert [(p.kind, p.where) for p in rep.problems] == [("damaged", f"chain {unloaded}")]
    assert rep.problems[0].detail.startswith("its journal cannot be read: ")
    Indexer(audit_engine, journal).run_once()  # the chain's other segments are loaded
    with audit_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM audit_records WHERE chain_id=:c"),
                            {"c": unloaded}).scalar_one() > 0


def test_a_frame_torn_at_the_end_is_still_a_crash_not_tampering(
        unloaded: str, journal: Journal, audit_engine: sa.Engine) -> None:
    """kill -9 mid-write leaves a cut last frame: never acknowledged, not tampering."""
    newest = journal.segments(unloaded)[-1]
    with open(newest, "ab") as f:
        f.write(FRAME.pack(500, zlib.crc32(b"x")) + b"[\"cut")
    assert verify_journal(audit_engine, journal).ok
    assert Indexer(audit_engine, journal).run_once() == 40
    assert verify_journal(audit_engine, journal).ok


async def test_the_api_checks_the_journal_as_the_cli_does(
        make_log: Callable[..., AuditLog], audit_engine: sa.Engine, journal: Journal,
        keys: Any) -> None:
    """Finding: ``GET /api/v1/audit/verify`` checked the tables only. Records written
    after the last checkpoint, cut from the table with the registry head moved back (the
    documented limit of the tables), are still in the journal: the CLI said so, the
    API (the auditors' console) said intact."""
    log = make_log(writer_id="gw", journal=journal)
    indexer = Indexer(audit_engine, journal, own=log.journal_position,
                      on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    log.append_many_sync([rec(i) for i in range(6)])
    indexer.run_once()
    log.checkpoint_sync()
    log.append_many_sync([rec(i) for i in range(6, 9)])
    indexer.run_once()
    chain = log.chain_id
    with audit_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_records WHERE chain_id=:c AND seq>6"),
                     {"c": chain})
        conn.execute(sa.text(
            "UPDATE audit_chains SET head_seq=6, head_hash=(SELECT hash FROM audit_records "
            "WHERE chain_id=:c AND seq=6) WHERE chain_id=:c"), {"c": chain})
    assert check(audit_engine, keys).ok  # the tables alone cannot tell (docs/audit.md)
    province_auditors(audit_engine)
    parts: Any = Parts(audit_engine, log)
    parts.keys, parts.settings = keys, SimpleNamespace(audit_journal_path=journal.root,
                                                    audit_checkpoint_seconds=5.0, lang="en")
    app = Starlette(routes=routes())
    app.state.gateway = parts
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as client:
        r = await client.get("/api/v1/audit/verify", headers={"Authorization": "Bearer auditor"})
    assert r.status_code == 200
    body = r.json()
    assert body["intact"] is False
    assert body["problems"][0] == {
        "kind": "missing", "where": f"record chain={chain} seq=7",
        "detail": "in the journal below its watermark but not in the table"}
