"""Audit chains as an older version of the code wrote them, for the compatibility test.

``python -m tests.audit.legacy_chains OUT.json``, run with another commit's tree first on
``PYTHONPATH``, writes one chain in database mode and one in journal mode with that
code (SQLite, sha256, no checkpoints) and dumps what it stored: the chains' registry
rows, the records' rows and the journal's segment files. ``tests/audit/data/`` holds
such a dump from f5d2294 (before the audit record's CPU work of 2026-12-05), which
``test_legacy_chains.py`` loads and verifies with the current code.
"""

from __future__ import annotations

import base64
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from audit import AuditLog, AuditRecord
from audit.indexer import Indexer
from audit.journal import Journal
from audit.tables import chains, records
from gateway.storage import create_engine, upgrade

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def legacy_records(tag: str) -> list[AuditRecord]:
    """Records whose encoding reaches every case: text to escape, non-ASCII, NUL, floats,
    big integers, nulls, secrets to redact, nested extra, items."""
    odd = "引号\"反斜杠\\换行\n制表\t\x01\u2028😀 /</script>"
    return [
        AuditRecord(event_type="proxy_request", outcome="allow", ts=1_764_900_000_000 + i,
                    actor_user=f"zhang.san{i}", actor_client="finance-system",
                    department="czt", source_ip="10.0.0.7", system="vehicles",
                    resource="JG-0007", items=("plate_number", "车牌号", odd[:5]),
                    purpose="费用核算", reason=f"grant {i} {JWT}", status=200, latency_ms=3 + i,
                    request_id=f"{tag}-req-{i}", req_hash="AB" * 32, resp_hash="cd" * 32,
                    extra={"method": "GET", "target": f"/s/vehicles/api/x?q={odd}",
                           "rule": "allow", "line_id": None, "grants": [17, 2**60],
                           "shape": True, "ratio": 0.1 + i, "tiny": 1e-300, "neg": -0.0,
                           "nested": {"authorization": "Basic dXNlcjpwYXNz", "z": [odd, None]},
                           "nul\x00key": "nul\x00value", 7: "int key"})
        for i in range(4)
    ] + [
        AuditRecord(event_type="token_issued", outcome="success", ts=1_764_900_001_000,
                    actor_client="finance-system", source_ip="127.0.0.1", status=200,
                    extra={"grant_type": "client_credentials", "scope": "openid"}),
        AuditRecord(event_type="login", outcome="failure", ts=1_764_900_002_000,
                    actor_user="a\x00b", reason="bad \ud800 surrogate " + "x" * 2100),
        AuditRecord(event_type="audit.verify", outcome="error", ts=0),
    ]


def dump(engine: sa.Engine, journal_dir: Path) -> dict[str, Any]:
    with engine.connect() as conn:
        chain_rows = [dict(r._mapping) for r in conn.execute(
            sa.select(chains).order_by(chains.c.chain_id))]
        record_rows = [dict(r._mapping) for r in conn.execute(
            sa.select(*(c for c in records.c if c.name != "id"))
            .order_by(records.c.chain_id, records.c.seq))]
    segments = {str(p.relative_to(journal_dir)): base64.b64encode(p.read_bytes()).decode()
                for p in sorted(journal_dir.rglob("*.seg"))}
    return {"chains": chain_rows, "records": record_rows, "segments": segments}


def write(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/govgate.db")
        upgrade(engine)
        log = AuditLog(engine, writer_id="legacy-db")
        log.append_many_sync(legacy_records("db"))
        log.close_sync()
        journal = Journal(Path(tmp) / "audit-journal")
        jlog = AuditLog(engine, writer_id="legacy-journal", journal=journal)
        jlog.attach_indexer(Indexer(engine, journal, own=jlog.journal_position))
        jlog.open()
        jlog.append_many_sync(legacy_records("journal")[:3])
        jlog.append_many_sync(legacy_records("journal")[3:])
        jlog.close_sync()
        data = dump(engine, journal.root)
        engine.dispose()
    out.write_text(json.dumps(data, ensure_ascii=True, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
