"""Policy lines in the database, and the casbin adapter over them.

Every write bumps the version row in the same transaction, so a process that
polls the version (``policies.reload``) sees every committed change.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import casbin
import sqlalchemy as sa
from casbin import persist
from sqlalchemy.engine import Connection, Engine

from policies.engine import PolicyLine
from policies.tables import policy_lines, policy_version

MODEL_PATH = Path(__file__).with_name("model.conf")


def line_from_row(row: Any) -> PolicyLine:
    # subjects, departments, actions and effects repeat across lines: one string each
    # (100,000 lines: 58 → 40 MiB of index, bench/bench_memory.py)
    return PolicyLine(sys.intern(row.subject), sys.intern(row.department), row.object,
                      sys.intern(row.action), sys.intern(row.effect), row.id,
                      row.ungoverned_reason)


def load_lines(conn: Connection) -> list[PolicyLine]:
    rows = conn.execute(sa.select(policy_lines).order_by(policy_lines.c.id))
    return [line_from_row(r) for r in rows]


def read_version(conn: Connection) -> int:
    value = conn.execute(
        sa.select(policy_version.c.version).where(policy_version.c.id == 1)
    ).scalar()
    return int(value or 0)


def bump_version(conn: Connection, now: datetime) -> int:
    """Increase the version by one (inside the caller's transaction); returns it."""
    result = conn.execute(
        policy_version.update()
        .where(policy_version.c.id == 1)
        .values(version=policy_version.c.version + 1, updated_at=now)
    )
    if result.rowcount == 0:
        conn.execute(policy_version.insert().values(id=1, version=1, updated_at=now))
    return read_version(conn)


def find_line(conn: Connection, line: PolicyLine) -> PolicyLine | None:
    c = policy_lines.c
    row = conn.execute(
        sa.select(policy_lines).where(
            c.subject == line.subject, c.department == line.department,
            c.object == line.object, c.action == line.action, c.effect == line.effect,
        )
    ).first()
    return line_from_row(row) if row is not None else None


def insert_line(
    conn: Connection, line: PolicyLine, now: datetime, source: str = "cli"
) -> tuple[PolicyLine, bool]:
    """Store ``line`` unless present; returns (stored line, created). Bumps the version."""
    found = find_line(conn, line)
    if found is not None:
        if found.ungoverned != line.ungoverned:  # marked, unmarked or re-explained
            conn.execute(policy_lines.update().where(policy_lines.c.id == found.id)
                         .values(ungoverned_reason=line.ungoverned))
            bump_version(conn, now)
            return PolicyLine(*found.key(), found.id, line.ungoverned), True
        return found, False
    result = conn.execute(
        policy_lines.insert().values(
            subject=line.subject, department=line.department, object=line.object,
            action=line.action, effect=line.effect, source=source, created_at=now,
            ungoverned_reason=line.ungoverned,
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    new_id = pk[0]
    bump_version(conn, now)
    return PolicyLine(line.subject, line.department, line.object, line.action, line.effect,
                      int(new_id), line.ungoverned), True


def delete_line(conn: Connection, line: PolicyLine, now: datetime) -> PolicyLine | None:
    """Delete ``line`` (by id when it has one); returns what was deleted."""
    found = (
        _by_id(conn, line.id) if line.id is not None and not line.subject else find_line(conn, line)
    )
    if found is None:
        return None
    conn.execute(policy_lines.delete().where(policy_lines.c.id == found.id))
    bump_version(conn, now)
    return found


def _by_id(conn: Connection, line_id: int) -> PolicyLine | None:
    row = conn.execute(sa.select(policy_lines).where(policy_lines.c.id == line_id)).first()
    return line_from_row(row) if row is not None else None


def _from_rule(rule: list[str]) -> PolicyLine:
    subject, department, obj, action, effect = [*rule, "allow"][:5]
    return PolicyLine(subject, department, obj, action, effect)


class DatabaseAdapter(persist.Adapter):  # type: ignore[misc]
    """casbin adapter over ``policy_lines`` (for casbin's own enforcer and tools)."""

    def __init__(self, engine: Engine, clock: Any = None) -> None:
        self.engine = engine
        self.clock = clock

    def load_policy(self, model: Any) -> None:
        with self.engine.connect() as conn:
            for line in load_lines(conn):
                persist.load_policy_line("p, " + ", ".join(line.casbin()), model)

    def _now(self) -> datetime:
        from datetime import UTC

        return self.clock() if self.clock else datetime.now(UTC)

    def save_policy(self, model: Any) -> bool:
        with self.engine.begin() as conn:
            conn.execute(policy_lines.delete())
            for rule in model.get_policy("p", "p"):
                insert_line(conn, _from_rule(rule), self._now(), "casbin")
            bump_version(conn, self._now())
        return True

    def add_policy(self, sec: str, ptype: str, rule: list[str]) -> None:
        if sec == "p":
            # finds, then writes: begins as a writer (see policies.service.Policies.add)
            with self.engine.execution_options(govgate_write=True).begin() as conn:
                insert_line(conn, _from_rule(rule), self._now(), "casbin")

    def remove_policy(self, sec: str, ptype: str, rule: list[str]) -> None:
        if sec == "p":
            with self.engine.execution_options(govgate_write=True).begin() as conn:
                delete_line(conn, _from_rule(rule), self._now())

    def remove_filtered_policy(self, sec: str, ptype: str, field_index: int,
                               *field_values: str) -> None:
        raise NotImplementedError("use govgate policy remove")


def casbin_enforcer(lines: list[PolicyLine] | None = None) -> casbin.Enforcer:
    """A plain casbin enforcer over ``model.conf`` holding ``lines`` (the reference
    semantics; far too slow per request, used by tests and ``policy test --casbin``)."""
    enforcer = casbin.Enforcer(str(MODEL_PATH))
    for line in lines or []:
        enforcer.add_policy(*line.casbin())
    return enforcer
