"""The journal's indexer in a process of its own (``audit_indexer = "process"``): real
child processes on the test's database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit import AuditLog
from audit.journal import Journal
from gateway.indexer_process import IndexerProcess
from gateway.services import open_services
from gateway.settings import load_settings
from gateway.setup import initialise
from tests.audit.conftest import rec
from tests.audit.test_journal import journal_ok, stored
from tests.audit.test_writer import verify_ok

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pair(make_log: Callable[..., AuditLog], db_url: str, tmp_path: Path
         ) -> Iterator[tuple[AuditLog, IndexerProcess, Journal]]:
    journal = Journal(tmp_path / "journal", segment_bytes=8000)
    log = make_log(journal=journal)
    indexer = IndexerProcess(db_url, journal.root, own=log.journal_position,
                             interval=3600, on_checkpoint=log.note_checkpoint)
    log.attach_indexer(indexer)
    yield log, indexer, journal
    indexer.stop()


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether ``pid`` has ended (a zombie its parent has not reaped yet counts)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_the_child_loads_what_the_writer_made_durable(
        pair: tuple[AuditLog, IndexerProcess, Journal], audit_engine: sa.Engine,
        keys: Any) -> None:
    log, indexer, journal = pair
    log.append_many_sync([rec(i) for i in range(40)])
    log.append_many_sync([rec(i) for i in range(40, 90)])
    assert stored(audit_engine) == []
    assert indexer.run_once() == 90
    assert [s[1] for s in stored(audit_engine)] == list(range(1, 91))
    assert indexer.pid is not None and indexer.pid != os.getpid()
    assert indexer.run_once(paced=True) == 0  # nothing new: nothing twice
    child = indexer.pid
    log.close_sync()  # stops the indexer: a last round, then the child ends
    assert _gone(child)
    verify_ok(audit_engine, keys)
    journal_ok(audit_engine, journal)


def test_a_child_killed_is_started_again_and_nothing_is_lost(
        pair: tuple[AuditLog, IndexerProcess, Journal], audit_engine: sa.Engine) -> None:
    log, indexer, _ = pair
    log.append_many_sync([rec(i) for i in range(10)])
    assert indexer.run_once() == 10
    first = indexer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert _gone(first)
    log.append_many_sync([rec(i) for i in range(10, 25)])
    assert indexer.run_once() == 15
    assert indexer.pid not in (None, first)
    assert [s[1] for s in stored(audit_engine)] == list(range(1, 26))


def test_the_child_ends_with_its_gateway_even_on_kill_9(db_url: str, tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from gateway.indexer_process import IndexerProcess
        p = IndexerProcess({db_url!r}, Path({str(tmp_path / "j")!r}), own=lambda: None)
        p.run_once()
        print(p.pid, flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # alive while its gateway is
        parent.kill()
        parent.wait()
        assert _gone(child)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


def test_the_setting_chooses_the_process_and_reads_see_their_writes(
        env: dict[str, str]) -> None:
    env = {**env, "GOVGATE_AUDIT_PATH": "journal", "GOVGATE_AUDIT_INDEXER": "process",
           "GOVGATE_AUDIT_INDEX_SECONDS": "3600"}
    initialise(load_settings(env), password_factory=lambda: "Admin-Passw0rd-2026!")
    services = open_services(load_settings(env), environ=env)
    try:
        assert isinstance(services.audit.indexer, IndexerProcess)
        services.audit.append_sync(rec(3, request_id="r-process"))
        services.settle_audit()  # what the audit API and pages do before they read
        assert [s[2] for s in stored(services.engine)] == ["r-process"]
    finally:
        services.close()
    with pytest.raises(Exception, match="audit_indexer"):
        load_settings({**env, "GOVGATE_AUDIT_INDEXER": "fork"})
