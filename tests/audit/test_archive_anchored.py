"""The export and the purge check an archive against the gateway's own key ring, not
against the keys the archive carries (``audit.archive_trust.RingTrust``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audit import AuditLog
from audit.errors import AuditWriteError
from gateway.cli.audit_cmd import audit
from gateway.services import key_service, master_key
from gateway.settings import Settings
from keys import FileMasterKey
from tests.audit.conftest import rec
from tests.audit.test_archive_trust import forge
from tests.audit.test_tamper import plant_audit_key, rewrite


@pytest.fixture
def gateway(settings: Settings, audit_engine: sa.Engine, env: dict[str, str]) -> dict[str, Any]:
    """A log of 12 records written 300 days ago, a checkpoint every 5."""
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, audit_engine, master_key(settings, env))
    ks.bootstrap()
    then = (datetime.now(UTC) - timedelta(days=300)).timestamp()
    log = AuditLog(audit_engine, keys=ks, writer_id="gw-1", checkpoint_every=5,
                   clock=lambda: then)
    log.append_many_sync([rec(i) for i in range(12)])
    log.close_sync()
    return {"env": env, "engine": audit_engine, "chain": log.chain_id}


def run(gateway: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(audit, list(args), env=gateway["env"], catch_exceptions=False)


def test_the_export_refuses_checkpoints_signed_by_a_planted_key(gateway: dict[str, Any],
                                                                tmp_path: Path) -> None:
    """Finding: the export checked what it wrote against the keys it wrote, the ring's
    table's public keys, so a log whose checkpoints an insider re-signed with a key
    planted in that table left as an archive that verified (exit 0, "exported")."""
    kid, private = plant_audit_key(gateway["engine"])
    rewrite(gateway["engine"], gateway["chain"], 3, "actor_user", "nobody", kid=kid,
            private=private)
    r = run(gateway, "export", "--until", "2999-01-01", "--to", str(tmp_path / "arc"))
    assert r.exit_code == 1, r.output
    # refused by the log's verification before anything is written (since the export
    # verifies the log first), as the written archive's would refuse it
    assert r.stderr == (f"error: the log up to --until does not verify (checkpoint 1: signed "
                        f"by key {kid}, not made by this key ring (its private part does not "
                        "open under the master key)); nothing exported: see `govgate audit "
                        "verify`\n")
    assert not (tmp_path / "arc").exists()  # nothing unverified left to be taken
    # and the trust file leaves the planted key out
    r = run(gateway, "keys")
    assert r.exit_code == 0, r.output
    kids = [k["kid"] for k in json.loads(r.output)["keys"]]
    assert len(kids) == 1 and kid not in kids


def test_the_purge_refuses_an_archive_re_signed_elsewhere(gateway: dict[str, Any],
                                                          tmp_path: Path) -> None:
    until = (datetime.now(UTC) - timedelta(days=200)).strftime("%Y-%m-%d")
    arc, forged = tmp_path / "arc", tmp_path / "forged"
    assert run(gateway, "export", "--until", until, "--to", str(arc)).exit_code == 0
    kid = json.loads((arc / "manifest.sig").read_text())["kid"]
    forge(arc, forged, kid=kid, change=False)  # the same records, another key
    r = run(gateway, "purge", "--until", until, "--archive", str(forged))
    assert r.exit_code == 1, r.output
    assert "the archive does not verify: " in r.stderr
    assert f"manifest.json: signed by key {kid}, not made by this key ring" in r.stderr
    with gateway["engine"].connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM audit_records WHERE chain_id = :c"),
                         {"c": gateway["chain"]}).scalar_one()
    assert n == 12
    r = run(gateway, "purge", "--until", until, "--archive", str(arc))
    assert r.exit_code == 0 and r.output.startswith("purged 12 records"), r.output


def test_an_export_whose_record_cannot_be_written_leaves_no_archive(
        gateway: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding: the archive was written first and ``audit_export`` appended after; when
    that write failed the command said so (exit 1) but left the archive, an export of
    the whole log nobody recorded."""
    append_sync = AuditLog.append_sync

    def refuse_exports(self: AuditLog, record: Any) -> Any:
        if record.event_type == "audit_export":
            raise AuditWriteError("audit log unavailable")
        return append_sync(self, record)

    monkeypatch.setattr(AuditLog, "append_sync", refuse_exports)
    made, kept = tmp_path / "made", tmp_path / "kept"
    kept.mkdir()
    for arc in (made, kept):
        r = run(gateway, "export", "--until", "2999-01-01", "--to", str(arc))
        assert r.exit_code == 1 and "audit log unavailable" in r.stderr, r.output
    assert not made.exists()  # the folder it made goes too
    assert kept.is_dir() and not any(kept.iterdir())  # the operator's own folder stays
