"""What ``audit verify`` still called intact (attack of 2026-12-05, docs/seams.md).

An insider with the database but no key deletes every checkpoint, re-hashes every
record with ``ckpt`` 0 and rewrites the chain registry: every link holds, and verify
said ``intact … 0 checkpoints``; the live gateway's next checkpoint even signed the
forged heads. And ``govgate keys destroy`` erased an audit key whose checkpoints the
log still holds. Each through the interface a user reaches: the CLI, the API's and
the portal's verify.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from audit import AuditLog
from audit.chain import RECORD_COLUMNS, hash_function, payload_of
from audit.indexer import Indexer
from audit.journal import Journal
from audit.verify import keyservice_sigcheck, verify_database
from gateway.app import create_app
from gateway.cli.audit_cmd import audit
from gateway.cli.keys_cmd import keys as keys_cli
from gateway.services import Services, key_service, master_key
from gateway.settings import Settings
from keys import FileMasterKey
from tests.audit.conftest import rec
from tests.oauth2.helpers import audit_events, close_services, make_services
from tests.portal.test_audit_console import _verify, as_admin
from tests.portal.test_catalogue_pages import fast_hashes  # noqa: F401 - fixture
from tests.wiring import parts

DAY = 86400.0


def write(engine: sa.Engine, keys: Any, *, start: float, step: float, n: int,
          writer: str, close: bool = True) -> AuditLog:
    """``n`` records ``step`` seconds apart from ``start`` (the writer's clock): a
    checkpoint is due at each commit once 5 s have passed, as on a gateway."""
    now = [start]
    log = AuditLog(engine, keys=keys, writer_id=writer, clock=lambda: now[0])
    for i in range(n):
        log.append_sync(rec(i))
        now[0] += step
    if close:
        log.close_sync()
    return log


def forge(engine: sa.Engine, keep: int = 0) -> None:
    """The insider: every checkpoint after number ``keep`` deleted, every record re-hashed
    naming at most checkpoint ``keep`` (``ckpt``), the registry's heads and
    ``last_ckpt`` rewritten. No key needed."""
    cols = ", ".join(RECORD_COLUMNS)
    i_seq, i_prev, i_hash, i_ckpt = (RECORD_COLUMNS.index(c)
                                     for c in ("seq", "prev_hash", "hash", "ckpt"))
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_checkpoints WHERE seq > :k"), {"k": keep})
        algs = dict(conn.execute(sa.text("SELECT chain_id, hash_name FROM audit_chains")).all())
        for chain_id, alg in algs.items():
            prev = ""
            for row in [list(r) for r in conn.execute(sa.text(
                    f"SELECT {cols} FROM audit_records WHERE chain_id=:c ORDER BY seq"),  # noqa: S608
                    {"c": chain_id})]:
                row[i_ckpt], row[i_prev] = min(row[i_ckpt], keep), prev
                row[i_hash] = prev = hash_function(alg)(payload_of(row)).hex()
                conn.execute(sa.text("UPDATE audit_records SET ckpt=:k, prev_hash=:p, hash=:h "
                                     "WHERE chain_id=:c AND seq=:s"),
                             {"k": row[i_ckpt], "p": row[i_prev], "h": prev, "c": chain_id,
                              "s": row[i_seq]})
            conn.execute(sa.text("UPDATE audit_chains SET head_hash=:h, last_ckpt=:k "
                                 "WHERE chain_id=:c"), {"h": prev, "k": keep, "c": chain_id})


@pytest.fixture
def ring(settings: Settings, audit_engine: sa.Engine, env: dict[str, str]) -> Any:
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, audit_engine, master_key(settings, env))
    ks.bootstrap()
    return ks


def cli(env: dict[str, str], group: Any, *args: str) -> Any:
    return CliRunner().invoke(group, list(args), env=env, catch_exceptions=False)


def test_deleted_checkpoints_are_tampering_on_the_cli(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """Records over 14 minutes, signed as they went (the audit key exists since today):
    intact. Every checkpoint deleted and the chain re-hashed: TAMPERED (was: intact, 0
    checkpoints)."""
    write(audit_engine, ring, start=time.time() + 60, step=120, n=8, writer="gw-old")
    r = cli(env, audit, "verify")
    assert r.exit_code == 0, r.output
    assert "intact: 8 records" in r.output
    forge(audit_engine)
    r = cli(env, audit, "verify")
    assert r.exit_code == 1, r.output
    assert "first bad: record chain=" in r.output and "seq=1: signed by no checkpoint" in r.output
    assert "its checkpoints were deleted" in r.output and "TAMPERED: 8 records" in r.output


def test_the_next_checkpoint_does_not_launder_the_forgery(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """After the forgery the live gateway's next checkpoint (number 1 again) signs the
    forged heads: was intact, 1 checkpoint."""
    write(audit_engine, ring, start=time.time() + 60, step=120, n=8, writer="gw-old")
    forge(audit_engine)
    live = AuditLog(audit_engine, keys=ring, writer_id="gw-live")
    live.append_sync(rec(99))
    live.checkpoint_sync()
    live.close_sync()
    r = cli(env, audit, "verify")
    assert r.exit_code == 1, r.output
    assert "seq=1: first signed by checkpoint 1 of" in r.output, r.output


def test_the_newest_checkpoints_deleted_and_hidden_are_tampering(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """Checkpoints after the second deleted, the records that named them re-hashed to
    name the second, ``last_ckpt`` rewritten: was intact (2 checkpoints)."""
    write(audit_engine, ring, start=time.time() + 60, step=120, n=8, writer="gw")
    forge(audit_engine, keep=2)
    r = cli(env, audit, "verify")
    assert r.exit_code == 1, r.output
    assert "seq=4: signed by no checkpoint, though seq 7 was written 6 min after it" in r.output
    assert "TAMPERED: 8 records, 1 chains, 2 checkpoints" in r.output


def test_no_checkpoint_and_no_key_then_is_unanchored(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """Records of three days ago no checkpoint signs, from before the ring's first audit
    key: the checkpointer never ran (or its keys went too): UNANCHORED, exit 3."""
    write(audit_engine, None, start=time.time() - 3 * DAY, step=120, n=6, writer="gw-nokey")
    r = cli(env, audit, "verify")
    assert r.exit_code == 3, r.output
    assert "UNANCHORED: 6 records" in r.output and "the checkpointer never ran" in r.output
    assert "intact" not in r.output


def test_young_log_a_crash_and_a_week_stopped_stay_intact(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """Not tampering: a log younger than a checkpoint (no checkpoint yet), a writer
    killed before its next checkpoint (its last records signed a week later by the
    next gateway's), a gateway stopped for a week (no records, no checkpoints)."""
    write(audit_engine, None, start=time.time() - 2, step=0.5, n=3, writer="young")
    assert cli(env, audit, "verify").exit_code == 0
    start = time.time() + 60
    write(audit_engine, ring, start=start, step=60, n=4, writer="stopped")
    write(audit_engine, ring, start=start + 300, step=1, n=3, writer="killed", close=False)
    write(audit_engine, ring, start=start + 7 * DAY, step=60, n=3, writer="restarted")
    r = cli(env, audit, "verify")
    assert r.exit_code == 0, r.output
    assert "intact: 13 records, 4 chains" in r.output


@pytest.fixture
def portal(settings: Settings, fast_hashes: None  # noqa: F811
           ) -> Iterator[tuple[Services, TestClient]]:
    services = make_services(settings)
    with TestClient(create_app(parts(services)), base_url="http://127.0.0.1:8080") as c:
        as_admin(services, c, "auditor")
        yield services, c
    close_services(services)


def test_the_api_and_the_portal_say_tampered(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    write(services.engine, services.keys, start=time.time() + 60, step=120, n=5, writer="old")
    assert client.get("/api/v1/audit/verify").json()["intact"] is True
    forge(services.engine)
    body = client.get("/api/v1/audit/verify").json()
    assert body["intact"] is False and body["unanchored"] is False
    unsigned = [p for p in body["problems"] if p["kind"] == "unsigned"]
    assert len(unsigned) == 1 and "its checkpoints were deleted" in unsigned[0]["detail"]
    r = _verify(client)
    assert 'data-intact="no"' in r.text and "审计日志已被篡改" in r.text
    assert "其检查点已被删除" in r.text
    verified = [e for e in audit_events(services, "audit_verify") if e["status"] == 200]
    assert [e["outcome"] for e in verified] == ["success", "failure", "failure"]


def test_the_api_and_the_portal_say_unanchored(portal: tuple[Services, TestClient]) -> None:
    services, client = portal
    write(services.engine, None, start=time.time() - 3 * DAY, step=120, n=5, writer="nokey")
    body = client.get("/api/v1/audit/verify").json()
    assert body["intact"] is False and body["unanchored"] is True
    assert "UNANCHORED" in body["summary"] and body["problems"][0]["kind"] == "unanchored"
    r = _verify(client)
    assert 'data-unanchored="yes"' in r.text and "未锚定" in r.text
    assert "检查点从未写过" in r.text


def test_keys_destroy_keeps_an_audit_key_whose_checkpoints_are_in_the_log(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str]) -> None:
    """Destroying a retired audit key left every checkpoint it signed unverifiable (and
    out of later trust files): refused, audited; an audit key that signed nothing goes."""
    write(audit_engine, ring, start=time.time(), step=10, n=3, writer="gw")
    old = next(i.kid for i in ring.list_keys() if i.use == "audit" and i.state == "active")
    assert cli(env, keys_cli, "rotate", "--use", "audit", "--now").exit_code == 0
    r = CliRunner().invoke(keys_cli, ["destroy", old, "--yes"], env=env)
    assert r.exit_code == 1
    assert f"key {old} signed" in r.output and "purge seals still in the audit log" in r.output
    assert r.output.count("\n") == 1
    assert cli(env, audit, "verify").exit_code == 0  # its checkpoints still verify
    states = {i.kid: i.state for i in ring.list_keys()}
    assert states[old] == "retired"
    refused = [e for e in audit_events_of(audit_engine) if e["reason"] == "key_destroy_refused"]
    assert len(refused) == 1 and refused[0]["outcome"] == "failure"
    assert cli(env, keys_cli, "rotate", "--use", "audit").exit_code == 0
    pending = next(i.kid for i in ring.list_keys() if i.use == "audit" and i.state == "pending")
    r = cli(env, keys_cli, "destroy", pending, "--yes")
    assert r.exit_code == 0, r.output


def audit_events_of(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT reason, outcome FROM audit_records WHERE event_type='admin_change'"))]


def test_journal_records_a_checkpoint_missed_wait_for_the_next_activity(
        ring: Any, audit_engine: sa.Engine, tmp_path: Any) -> None:
    """Journal mode: a checkpoint signs the indexed heads; a record still in the journal
    then waits, unsigned, for the writer's next records (a day later here). Not
    tampering: it was written before the checkpoint that missed it."""
    journal = Journal(tmp_path / "journal")
    now = [time.time() + 60]
    log = AuditLog(audit_engine, keys=ring, writer_id="gw-j", journal=journal,
                   clock=lambda: now[0])
    indexer = Indexer(audit_engine, journal, own=log.journal_position,
                      on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    log.append_sync(rec(1))
    indexer.run_once()
    now[0] += 1
    log.append_sync(rec(2))  # not indexed before the checkpoint
    now[0] += 1
    log.checkpoint_sync()
    now[0] += DAY
    log.append_sync(rec(3))
    now[0] += 60
    log.append_sync(rec(4))
    indexer.run_once()
    log.checkpoint_sync()
    rep = verify_database(audit_engine, keyservice_sigcheck(ring), checkpoint_seconds=5)
    assert rep.intact, rep.problems
    assert rep.records == 4


def test_a_synchronous_writer_idle_between_two_records_is_not_tampering(
        ring: Any, audit_engine: sa.Engine) -> None:
    """A writer without a timer (the CLI's ``append_sync``) signs when a record comes at
    least the interval after its last checkpoint: that record may come an hour later."""
    now = [time.time() + 60]
    log = AuditLog(audit_engine, keys=ring, writer_id="cli-like", clock=lambda: now[0])
    log.append_sync(rec(1))
    now[0] += 3600
    log.append_sync(rec(2))  # signs both
    now[0] += 1
    log.append_sync(rec(3))
    log.close_sync()
    rep = verify_database(audit_engine, keyservice_sigcheck(ring), checkpoint_seconds=5)
    assert rep.intact, rep.problems


def test_the_compliance_report_fails_deleted_checkpoints_and_unanchored_records(
        ring: Any, audit_engine: sa.Engine, settings: Settings) -> None:
    """`govgate compliance`'s au.protection verifies as `audit verify` does: it said the
    log verified over deleted checkpoints (it left out the checkpoint interval)."""
    from datetime import UTC, datetime

    from gateway.compliance.audit_checks import protection
    from gateway.compliance.model import State

    def problems() -> list[str]:
        state = State(settings, audit_engine, ring, datetime.now(UTC))
        return [str(p) for p in protection(state)[1]]

    write(audit_engine, ring, start=time.time() + 60, step=120, n=8, writer="gw")
    assert not [p for p in problems() if "audit log" in p]
    forge(audit_engine)
    assert any(p.startswith("the audit log does not verify: record chain=") and
               "signed by no checkpoint" in p for p in problems()), problems()


def test_the_compliance_report_fails_an_unanchored_log(
        ring: Any, audit_engine: sa.Engine, settings: Settings) -> None:
    from datetime import UTC, datetime

    from gateway.compliance.audit_checks import protection
    from gateway.compliance.model import State

    write(audit_engine, None, start=time.time() - 3 * DAY, step=120, n=6, writer="gw-nokey")
    found = [str(p) for p in protection(State(settings, audit_engine, ring,
                                              datetime.now(UTC)))[1]]
    assert any(p.startswith("the audit log is consistent but unanchored") for p in found), found


def test_a_log_with_deleted_checkpoints_is_not_exported(
        ring: Any, audit_engine: sa.Engine, env: dict[str, str], tmp_path: Any) -> None:
    """The export signs its manifest with the live key: a forged log exported as an
    archive that verified (and a purge could then rely on it). Refused now, no folder
    left; the intact log before the forgery exports."""
    write(audit_engine, ring, start=time.time() - 3600, step=120, n=8, writer="gw")
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    good = cli(env, audit, "export", "--until", until, "--to", str(tmp_path / "good"))
    assert good.exit_code == 0, good.output
    forge(audit_engine)
    r = CliRunner().invoke(audit, ["export", "--until", until, "--to", str(tmp_path / "bad")],
                           env=env)
    assert r.exit_code != 0
    assert "does not verify" in r.output and "signed by no checkpoint" in r.output, r.output
    assert not (tmp_path / "bad").exists()
