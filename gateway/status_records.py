"""Who last changed an account's status, read from the audit log: no column says it
(a ``disabled_by`` column would, with a migration). An identity source (the directory
sync, a SCIM client) re-enables only the accounts it disabled itself, so that an
administrator's disable (an incident) is not undone by the next sync or push.

A status change is recorded in one of three shapes: the CLI's ``user_disabled`` /
``user_enabled`` (``extra.user``); a console's, an API's or SCIM's action with the
change among its ``effects``; a state document applied (``govgate apply``, the
directory sync: ``state_applied`` naming ``status`` among the user's fields, or
creating the user). The newest of the records that name the account decides; none
found (or only past ``SCANNED`` of them) is no one's, and the caller keeps the account
disabled."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit.tables import records
from gateway.clock import as_utc

STATUS = ("user_disabled", "user_enabled")
SCANNED = 500  # the newest records naming the account that are read


@dataclass(frozen=True)
class StatusChange:
    ts: int
    actor_user: str | None
    actor_client: str | None
    extra: dict[str, Any]
    # the newest record naming the account, whatever it changed (UTC milliseconds)
    newest: int = 0

    def accounts_for(self, updated_at: datetime | None) -> bool:
        """Whether the records read account for the account's row as it is: none of
        them older than its last change. A change recorded in another process's audit
        journal and not yet loaded (within its indexer's interval; longer under load)
        leaves the row newer than every record seen, and may be an administrator's
        disable: the caller decides nothing on a log that is behind."""
        if updated_at is None:
            return True
        return self.newest >= int(as_utc(updated_at).timestamp() * 1000) - 1


def _changes_status(extra: dict[str, Any], username: str) -> bool:
    if extra.get("change") in STATUS and extra.get("user") == username:
        return True
    if extra.get("change") == "state_applied":
        # a create names status when it made the account disabled: that is the
        # disable (an account the directory sync made already locked, or expired, is
        # the sync's); a create of an active account changed no status, and counting
        # it handed an administrator's later disable to the sync whenever that record
        # was not the newest read (tests/directory/test_disabled_by.py)
        return (extra.get("kind"), extra.get("key")) == ("user", username) and \
            "status" in extra.get("fields", ())
    return any(e.get("change") in STATUS and e.get("user") == username
               for e in extra.get("effects", ()) if isinstance(e, dict))


def last_status_change(engine: Engine, username: str) -> StatusChange | None:
    """The newest successful ``admin_change`` record that changed ``username``'s
    status, or None."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(records.c.ts, records.c.actor_user, records.c.actor_client,
                      records.c.extra)
            .where(records.c.event_type == "admin_change", records.c.outcome == "success",
                   records.c.extra.contains(f'"{username}"', autoescape=True))
            .order_by(records.c.ts.desc(), records.c.id.desc()).limit(SCANNED))
        newest = 0
        for row in found:
            newest = newest or row.ts
            extra = json.loads(row.extra)
            if _changes_status(extra, username):
                return StatusChange(row.ts, row.actor_user, row.actor_client, extra, newest)
    return None


def gone_at(engine: Engine, actor: str, username: str, ts: int) -> bool:
    """Whether the summary ``actor`` wrote with the change at ``ts`` (one audit
    transaction: the same millisecond or the next few) names ``username`` as gone."""
    with engine.connect() as conn:
        found = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "admin_change", records.c.actor_user == actor,
            records.c.reason == "directory_synced", records.c.ts.between(ts - 1000, ts + 1000)))
        return any(username in json.loads(extra).get("gone", ()) for (extra,) in found)
