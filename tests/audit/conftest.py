"""Fixtures for the audit tests: a migrated database, a signer, a writer factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit.record import AuditRecord
from audit.writer import AuditLog
from keys import FileMasterKey, KeyService, get_profile


@pytest.fixture
def audit_engine(engine: sa.Engine) -> sa.Engine:
    """The migrated engine (audit tables from migration 0003_audit)."""
    return engine


@pytest.fixture
def keys(audit_engine: sa.Engine, tmp_path: Path) -> KeyService:
    """A real key ring with an ``audit`` signing key."""
    ks = KeyService(audit_engine, FileMasterKey.create(tmp_path / "master.key"),
                    get_profile("standard"))
    ks.bootstrap()
    return ks


@pytest.fixture
def make_log(audit_engine: sa.Engine, keys: Any) -> Iterator[Callable[..., AuditLog]]:
    logs: list[AuditLog] = []

    def make(**kw: Any) -> AuditLog:
        kw.setdefault("keys", keys)
        kw.setdefault("writer_id", "test-writer")
        log = AuditLog(audit_engine, **kw)
        logs.append(log)
        return log

    yield make
    for log in logs:
        log.close_sync()


def rec(i: int = 0, **kw: Any) -> AuditRecord:
    kw.setdefault("event_type", "proxy_request")
    kw.setdefault("outcome", "allow")
    kw.setdefault("actor_user", f"user{i % 3}")
    kw.setdefault("department", "czt")
    kw.setdefault("system", "vehicles")
    kw.setdefault("resource", "JG-0001")
    kw.setdefault("request_id", f"req-{i}")
    kw.setdefault("reason", f"grant {i}")
    return AuditRecord(**kw)
