"""Fixtures: the demo organisation and catalogue on a fresh database, a frozen clock
(Monday 2026-03-02 09:00 China Standard Time) and a real audit log."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from audit import AuditLog
from audit.tables import records
from gateway.clock import FrozenClock
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.setup import initialise
from gateway.statefile import load_file

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.yaml"
FINANCE_KEY = ROOT / "examples" / "keys" / "finance-system.jwk.json"
MONDAY = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 CST


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY)


@pytest.fixture
def services(settings: Settings, clock: FrozenClock,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    # the demo's seven accounts at OWASP argon2 cost take half a second: not our subject
    from argon2 import PasswordHasher

    from gateway import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64,
                                                             parallelism=1))
    initialise(settings, password_factory=lambda: secrets.token_urlsafe(16) + "-Aa1!")
    svc = open_services(settings, clock=clock)
    svc.audit = AuditLog(svc.engine, keys=svc.keys, writer_id="catalogue-test",
                         clock=lambda: clock().timestamp())
    svc.state_applier().apply(load_file(DEMO))
    yield svc
    from gateway.proxy_policies import close_policies

    close_policies(svc)  # the proxy starts the policies' reload thread
    svc.audit.close_sync()
    svc.close()


def audit_rows(services: Services, prefix: str | tuple[str, ...] = "") -> list[dict[str, Any]]:
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(records).order_by(records.c.id)).mappings().all()
    out = []
    for r in rows:
        if r["event_type"].startswith(prefix):
            d = dict(r)
            d["items"] = json.loads(d["items"])
            d["extra"] = json.loads(d["extra"])
            out.append(d)
    return out


def finance_private_key() -> dict[str, Any]:
    return json.loads(FINANCE_KEY.read_text())
