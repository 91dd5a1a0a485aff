"""Chains written by f5d2294's code (before the audit record's CPU work) still verify with
``govgate audit verify``, and the current writer continues them, in both audit paths.

``data/f5d2294_chains.json`` is what that code stored (``tests/audit/legacy_chains.py``):
one chain in database mode, one in journal mode with its segment file.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audit import AuditLog
from audit.chain import RECORD_COLUMNS, chain_records, hash_function
from audit.indexer import Indexer
from audit.journal import Journal, read_frames
from audit.tables import chains, records
from gateway.cli.audit_cmd import audit
from gateway.services import key_service, master_key
from gateway.settings import load_settings
from keys import FileMasterKey
from tests.audit.legacy_chains import legacy_records

LEGACY = json.loads((Path(__file__).parent / "data" / "f5d2294_chains.json").read_text())


@pytest.fixture
def jenv(env: dict[str, str]) -> dict[str, str]:
    """The environment of a gateway in journal mode (verify checks the journal too)."""
    return {**env, "GOVGATE_AUDIT_PATH": "journal"}


@pytest.fixture
def legacy(jenv: dict[str, str], engine: sa.Engine) -> Path:
    """The legacy rows in the test's database, the legacy segment in its journal folder
    (and a key ring, as `govgate init` leaves, for verify's signature checks)."""
    settings = load_settings(jenv)
    FileMasterKey.create(settings.master_key_path)
    key_service(settings, engine, master_key(settings, jenv)).bootstrap()
    with engine.begin() as conn:
        conn.execute(sa.insert(chains), LEGACY["chains"])
        conn.execute(sa.insert(records), LEGACY["records"])
    folder = settings.audit_journal_path
    assert folder is not None
    for name, data in LEGACY["segments"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(base64.b64decode(data))
    return folder


def verify(env: dict[str, str]) -> Any:
    return CliRunner().invoke(audit, ["verify"], env=env, catch_exceptions=False)


def _chain_of(owner: str) -> dict[str, Any]:
    return next(c for c in LEGACY["chains"] if c["owner"] == owner)


def test_legacy_chains_verify_and_are_continued(legacy: Path, engine: sa.Engine,
                                                jenv: dict[str, str]) -> None:
    r = verify(jenv)
    assert r.exit_code == 0, r.output
    assert "intact: 14 records, 2 chains" in r.output
    assert "7 records of 1 chains checked" in r.output

    db_chain, j_chain = _chain_of("legacy-db"), _chain_of("legacy-journal")
    log = AuditLog(engine, writer_id="legacy-db")
    stored = log.append_many_sync(legacy_records("db-again"))
    log.close_sync()
    assert (stored[0].chain_id, stored[0].seq, stored[0].prev_hash) == (
        db_chain["chain_id"], 8, db_chain["head_hash"])

    journal = Journal(legacy)
    jlog = AuditLog(engine, writer_id="legacy-journal", journal=journal)
    jlog.attach_indexer(Indexer(engine, journal, own=jlog.journal_position))
    jlog.open()
    jstored = jlog.append_many_sync(legacy_records("journal-again"))
    jlog.close_sync()
    assert (jstored[0].chain_id, jstored[0].seq, jstored[0].prev_hash) == (
        j_chain["chain_id"], 8, j_chain["head_hash"])
    # the new frames follow the legacy ones in the same segment file
    (segment,) = journal.segments(j_chain["chain_id"])
    assert [row[1] for _, row in read_frames(segment)] == list(range(1, 15))

    r = verify(jenv)
    # written without keys, the continued records (2025 again after 1970: the legacy data's
    # made-up times) are a stretch no checkpoint signed and no audit key could have:
    # consistent, every hash and link holds, but UNANCHORED (audit.coverage), never damage
    assert r.exit_code == 3, r.output
    assert "consistent but UNANCHORED: 28 records, 2 chains" in r.output
    assert "14 records of 1 chains checked" in r.output


def test_a_changed_legacy_record_is_still_found(legacy: Path, engine: sa.Engine,
                                                jenv: dict[str, str]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(records).where(
            records.c.chain_id == _chain_of("legacy-db")["chain_id"], records.c.seq == 3)
            .values(purpose="费用核算 "))
    r = verify(jenv)
    assert r.exit_code == 1
    assert "\nfirst bad: record chain=" in r.output and "seq=3" in r.output


@pytest.mark.parametrize(("owner", "tag"), [("legacy-db", "db"), ("legacy-journal", "journal")])
def test_the_same_records_chain_to_the_same_bytes(owner: str, tag: str) -> None:
    """Not only verifiable: the new writer's rows for the same records are f5d2294's, byte
    for byte (every column, hashes included)."""
    chain_id = _chain_of(owner)["chain_id"]
    stored = [tuple(r[c] for c in RECORD_COLUMNS) for r in LEGACY["records"]
              if r["chain_id"] == chain_id]
    assert chain_records(legacy_records(tag), chain_id=chain_id, seq=0, prev_hash="", ckpt=0,
                         hasher=hash_function("sha256")) == stored
