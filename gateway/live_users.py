"""The users' current department, region, roles and status, for decisions on tokens.

An access token carries the roles and department its user had when it was issued;
a decision made from those claims would let a removed ``data_steward`` approve
applications for the token's whole lifetime. So every bearer principal of a user
is read through :class:`LiveUsers`: its department, region and roles are the
user's current ones, and a user who is gone or disabled is refused.

Every change of a user's roles, department or status bumps the policies'
version counter (``policies.adapter.bump_version``) in the same transaction;
each process checks that counter at most every ``reload_seconds`` (0.5 s) and
reloads the users when it moved, so a change made anywhere holds everywhere
within a second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.tables import departments, user_roles, users
from policies.adapter import read_version


@dataclass(frozen=True, slots=True)
class LiveUser:
    department: str
    region: str
    roles: frozenset[str]
    active: bool
    name: str


class LiveUsers:
    def __init__(self, engine: Engine, *, reload_seconds: float = 0.5) -> None:
        self.engine = engine
        self.reload_seconds = reload_seconds
        self.version = -1  # of the policies' counter, when the users were loaded
        self._users: dict[str, LiveUser] = {}
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Check the counter at the next lookup (this process just changed a user)."""
        self._checked = float("-inf")

    def get(self, username: str) -> LiveUser | None:
        """The user's current view, or None when there is no such user."""
        self._refresh()
        return self._users.get(username)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.reload_seconds:
            return
        with self._lock:
            if now - self._checked < self.reload_seconds:
                return
            with self.engine.connect() as conn:
                version = read_version(conn)
                if version != self.version:
                    self._users = _load(conn)
                    self.version = version
            self._checked = now


def _load(conn: sa.Connection) -> dict[str, LiveUser]:
    roles: dict[int, set[str]] = {}
    for user_id, role in conn.execute(sa.select(user_roles.c.user_id, user_roles.c.role_code)):
        roles.setdefault(user_id, set()).add(role)
    rows = conn.execute(
        sa.select(users.c.id, users.c.username, users.c.department_code, users.c.status,
                  users.c.name, departments.c.region_code)
        .join(departments, departments.c.code == users.c.department_code))
    return {r.username: LiveUser(r.department_code, r.region_code,
                                 frozenset(roles.get(r.id, ())), r.status == "active", r.name)
            for r in rows}
