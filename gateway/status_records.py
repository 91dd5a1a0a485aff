"""Who last changed an account's status, read from the audit log: no column says it
(a ``disabled_by`` column would, with a migration). An identity source (the directory
sync, a SCIM client) re-enables only the accounts it disabled itself, so that an
administrator's disable (an incident) is not undone by the next sync or push.

The record of a change is appended after the account's ``updated_at`` is set, by the
same process (one clock), within ``AFTER_MS`` (a large sync's apply before its records
are written). A later change of the account, an administrator's disable a millisecond
after a client's included, moves ``updated_at`` past it, and then nothing is found:
the caller keeps the account disabled (the operator enables it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit.tables import records
from gateway.clock import as_utc

AFTER_MS = 600_000


def changes_near(engine: Engine, updated_at: datetime, *where: Any) -> Iterator[dict[str, Any]]:
    """The ``extra`` of each successful ``admin_change`` record matching ``where``
    written in the ``AFTER_MS`` from ``updated_at`` on."""
    at = int(as_utc(updated_at).timestamp() * 1000)
    with engine.connect() as conn:
        found = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "admin_change", records.c.outcome == "success",
            records.c.ts.between(at, at + AFTER_MS), *where))
        for (extra,) in found:
            yield json.loads(extra)
