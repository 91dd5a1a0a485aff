"""Fixtures for the audit tests: a migrated database, a signer, a writer factory."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit.record import AuditRecord
from audit.tables import metadata
from audit.writer import AuditLog
from gateway.storage import create_engine, upgrade


class FakeKeys:
    """HMAC stand-in for KeyService.sign/verify (used when keys/ is not importable)."""

    def __init__(self) -> None:
        self.key = b"test-audit-key"

    def sign(self, use: str, payload: bytes) -> tuple[str, bytes]:
        return "fake-1", hmac.new(self.key, use.encode() + payload, hashlib.sha256).digest()

    def verify(self, use: str, kid: str, payload: bytes, sig: bytes) -> None:
        good = hmac.new(self.key, use.encode() + payload, hashlib.sha256).digest()
        if kid != "fake-1" or not hmac.compare_digest(good, sig):
            raise ValueError("bad signature")

    def public_jwk(self, kid: str) -> dict[str, Any]:
        return {"kty": "oct", "kid": kid}


@pytest.fixture
def audit_engine(db_url: str) -> Iterator[sa.Engine]:
    eng = create_engine(db_url)
    upgrade(eng)
    if "audit_records" not in sa.inspect(eng).get_table_names():
        metadata.create_all(eng)
    yield eng
    eng.dispose()


def _real_keys(engine: sa.Engine, tmp_path: Path) -> Any:
    try:
        from keys import KeyService
        from keys.master import FileMasterKey
        from keys.profiles import get_profile
    except ImportError:
        return None
    if "keys" not in {t.split("_")[0] for t in sa.inspect(engine).get_table_names()}:
        return None
    master = FileMasterKey.create(tmp_path / "master.key")
    ks = KeyService(engine, master, get_profile("standard"))
    ks.bootstrap()
    return ks


@pytest.fixture
def keys(audit_engine: sa.Engine, tmp_path: Path) -> Any:
    return _real_keys(audit_engine, tmp_path) or FakeKeys()


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
