"""``Policies``: the policy lines of one database, their index, hot reload and changes.

    policies = Policies(engine)          # loads the lines, starts nothing
    policies.start()                     # poll for changes made by other processes
    policies.decide(Query(...))          # -> Decision (allowed, rule, reason, line)
    policies.add(line, actor="sec.admin")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from policies import adapter
from policies.engine import Decision, PolicyEngine, PolicyLine, Query
from policies.reload import DEFAULT_INTERVAL, PolicyWatcher
from policies.tables import policy_lines

ChangeHook = Callable[[str, dict[str, Any]], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Policies:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        on_change: ChangeHook | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.db = engine
        self.clock = clock
        self.on_change = on_change
        self.interval = interval
        self.engine = PolicyEngine()
        self._lock = threading.Lock()
        self._watcher: PolicyWatcher | None = None
        self._loaded = False
        self.refresh()

    # -- reading ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.engine.version

    def refresh(self) -> bool:
        """Reload if the stored version moved; True when a new index was swapped in."""
        with self._lock:
            with self.db.connect() as conn:
                version = adapter.read_version(conn)
                if self._loaded and version == self.engine.version:
                    return False
                lines = adapter.load_lines(conn)
            self.engine.replace(lines, version)
            self._loaded = True
            return True

    def start(self) -> None:
        """Start polling for changes (idempotent)."""
        if self._watcher is None or not self._watcher.running:
            self._watcher = PolicyWatcher(self, self.interval)
            self._watcher.start()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def decide(self, query: Query) -> Decision:
        return self.engine.decide(query)

    def decide_caller(self, username: str | None, client_id: str | None,
                      roles: frozenset[str], department: str, obj: str, action: str,
                      owner: str | None, case_sensitive: bool = False) -> Decision:
        """The decision for a caller holding these fields (the proxy's hot path):
        ``decide`` without building the Query (``PolicyIndex.decide_caller``)."""
        return self.engine.decide_caller(username, client_id, roles, department, obj,
                                         action, owner, case_sensitive)

    def lines(self, *, department: str | None = None, subject: str | None = None
              ) -> list[PolicyLine]:
        with self.db.connect() as conn:
            out = adapter.load_lines(conn)
        return [
            line for line in out
            if (department is None or line.department == department)
            and (subject is None or line.subject == subject)
        ]

    def get(self, line_id: int) -> PolicyLine | None:
        with self.db.connect() as conn:
            row = conn.execute(
                sa.select(policy_lines).where(policy_lines.c.id == line_id)
            ).first()
        if row is None:
            return None
        return adapter.line_from_row(row)

    # -- changing --------------------------------------------------------------------

    def add(self, line: PolicyLine, *, actor: str | None = None, source: str = "cli"
            ) -> tuple[PolicyLine, bool]:
        """Store ``line`` (a no-op if present); audited; this process sees it at once."""
        # finds the line, then inserts: "govgate_write" begins the transaction as a
        # writer (on SQLite BEGIN IMMEDIATE, see gateway.storage.write_transaction), or a
        # commit by another connection in between (the audit log's) would fail the insert
        with self.db.execution_options(govgate_write=True).begin() as conn:
            stored, created = adapter.insert_line(conn, line, self.clock(), source)
        if created:
            self._changed("policy_add", stored, actor)
        return stored, created

    def remove(self, line: PolicyLine, *, actor: str | None = None) -> PolicyLine | None:
        """Delete ``line`` (by id when only the id is set); returns what was deleted."""
        with self.db.execution_options(govgate_write=True).begin() as conn:  # as in add()
            gone = adapter.delete_line(conn, line, self.clock())
        if gone is not None:
            self._changed("policy_remove", gone, actor)
        return gone

    def _changed(self, event: str, line: PolicyLine, actor: str | None) -> None:
        self.refresh()
        if self.on_change is not None:
            detail = {"line_id": line.id, "line": str(line), "actor": actor}
            detail.update(line.to_entry())
            detail["effect"] = line.effect
            self.on_change(event, detail)
