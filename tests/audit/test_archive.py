"""Export to an archive, verify it offline, purge behind it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit import AuditLog, PurgeRefused
from audit.archive import export_archive, purge, verify_archive
from audit.tables import records
from audit.verify import keyservice_sigcheck, verify_database
from tests.audit.conftest import rec

DAY = 86_400.0
NOW = 1_800_000_000.0  # 2027-01-15


@pytest.fixture
def old_log(make_log: Callable[..., AuditLog], audit_engine: sa.Engine) -> AuditLog:
    """Records written 300 .. 291 days ago on two chains, then 10 days ago."""
    now = [NOW - 300 * DAY]
    a = make_log(writer_id="wa", checkpoint_every=4, clock=lambda: now[0])
    b = make_log(writer_id="wb", checkpoint_every=4, clock=lambda: now[0])
    for i in range(10):
        a.append_sync(rec(i))
        b.append_sync(rec(i, actor_user="b"))
        now[0] += DAY
    now[0] = NOW - 10 * DAY
    for i in range(5):
        a.append_sync(rec(100 + i))
    a.close_sync()
    b.close_sync()
    return a


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def test_archive_round_trip(old_log: AuditLog, audit_engine: sa.Engine, keys: Any,
                            tmp_path: Path) -> None:
    res = export_archive(audit_engine, keys, until=ms(NOW - 200 * DAY), to=tmp_path / "arc")
    assert res.records == 20 and res.chains == 2
    rep = verify_archive(tmp_path / "arc")
    assert rep.ok, rep.problems
    assert rep.records == 20 and rep.checkpoints > 0
    manifest = json.loads((tmp_path / "arc" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"records.jsonl", "checkpoints.jsonl", "keys.json"}
    assert json.loads((tmp_path / "arc" / "keys.json").read_text())["keys"][0]["kty"]


def test_archive_tampering_is_detected(old_log: AuditLog, audit_engine: sa.Engine, keys: Any,
                                       tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    export_archive(audit_engine, keys, until=ms(NOW - 200 * DAY), to=arc)
    lines = (arc / "records.jsonl").read_text().splitlines()
    (arc / "records.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    rep = verify_archive(arc)
    assert not rep.ok and "records.jsonl" in str(rep.first_problem)
    # even with the manifest digest "fixed", the signature no longer matches
    m = json.loads((arc / "manifest.json").read_text())
    import hashlib
    m["files"]["records.jsonl"] = hashlib.sha256((arc / "records.jsonl").read_bytes()).hexdigest()
    (arc / "manifest.json").write_text(json.dumps(m))
    assert "signature" in str(verify_archive(arc).first_problem)
    assert not verify_archive(tmp_path / "nowhere").ok


def test_purge_rules_and_sealing(old_log: AuditLog, make_log: Callable[..., AuditLog],
                                 audit_engine: sa.Engine, keys: Any, tmp_path: Path) -> None:
    until = ms(NOW - 295 * DAY)  # the first 5 records of each chain
    sealer = make_log(writer_id="cli", clock=lambda: NOW)
    # no archive yet
    with pytest.raises(PurgeRefused):
        purge(audit_engine, sealer, until=until, archive=tmp_path / "none",
              retention_days=180, now=ms(NOW))
    # too young, whatever the archive
    export_archive(audit_engine, keys, until=ms(NOW), to=tmp_path / "all")
    with pytest.raises(PurgeRefused, match="retention"):
        purge(audit_engine, sealer, until=ms(NOW - 100 * DAY), archive=tmp_path / "all",
              retention_days=180, now=ms(NOW))
    # an archive that does not hold what would be purged
    export_archive(audit_engine, keys, until=ms(NOW - 298 * DAY), to=tmp_path / "short")
    with pytest.raises(PurgeRefused, match="not in the archive"):
        purge(audit_engine, sealer, until=until, archive=tmp_path / "short",
              retention_days=180, now=ms(NOW))
    res = purge(audit_engine, sealer, until=until, archive=tmp_path / "all",
                retention_days=180, now=ms(NOW))
    assert res.records == 10 and set(res.chains.values()) == {5}
    with audit_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(records)).scalar_one() == 16
    rep = verify_database(audit_engine, keyservice_sigcheck(keys))
    assert rep.ok, rep.problems
    # a second purge, then the remaining chain still verifies and re-exports
    res2 = purge(audit_engine, sealer, until=ms(NOW - 292 * DAY), archive=tmp_path / "all",
                 retention_days=180, now=ms(NOW))
    assert res2.records == 6
    rep = verify_database(audit_engine, keyservice_sigcheck(keys))
    assert rep.ok, rep.problems
    export_archive(audit_engine, keys, until=ms(NOW), to=tmp_path / "after")
    assert verify_archive(tmp_path / "after").ok
    # forging an anchor without a sealing record is detected
    with audit_engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_anchors SET seq=seq+1"))
    assert not verify_database(audit_engine, keyservice_sigcheck(keys)).ok
