"""The second factor's own bound on guessing (NIST SP 800-63B 5.2.2: at most 100
consecutive failed attempts per account).

The account lock (``lockout_threshold`` within ``lockout_window_seconds``) paces code
guesses, 5 per 15 minutes, but it ends by itself and its count starts again, so someone
who has the password could try TOTP codes (3 in a million per try, the ±1 window) and
recovery codes for ever. Here every wrong TOTP or recovery code of an account is counted
in a row in ``user_factor_failures``, whatever the lock's window did meanwhile, and only
a passed second factor (a code, a recovery code, a security key) starts the count again.
At ``mfa_failure_limit`` (100) the account's codes are locked: none is checked, on any
session, until an administrator unlocks the account (``govgate user unlock``, the system
administrator's console) or resets its authenticator, either of which clears the row. A
security key still passes (it cannot be guessed), and the password still leads to the
forced change and the key step: the owner is never locked out of every way back.

The row lives in the database, read and written under a row lock, so every gateway
process counts the same failures (a guesser gains nothing by spreading codes over them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from gateway.clock import Clock, utcnow
from gateway.storage import write_transaction
from gateway.tables import user_factor_failures as failures_table


@dataclass(frozen=True)
class FactorCount:
    """The account's codes counted in a row, ``locked``: refused before this attempt
    (nothing is checked), ``just_locked``: this attempt is the limit-th (audit the lock
    once if it is wrong)."""

    failures: int
    locked: bool
    just_locked: bool = False


class FactorFailures:
    def __init__(self, engine: Engine, *, limit: int = 100, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.limit = limit
        self.clock = clock

    def locked(self, user_id: int) -> bool:
        """Are the account's codes locked (until an administrator unlocks)?"""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(failures_table.c.failures, failures_table.c.locked_at)
                               .where(failures_table.c.user_id == user_id)).first()
        return row is not None and (row.locked_at is not None or row.failures >= self.limit)

    def attempt(self, user_id: int) -> FactorCount:
        """Count a code about to be checked, before it is checked, as a wrong one: None
        of several sent at once is checked past the limit (each waits for the row, and
        those after the limit-th are refused); a right one then clears the count
        (:meth:`passed`). ``locked`` with ``failures`` unchanged: refused, check
        nothing; ``just_locked``: this is the limit-th, checked, and the codes are
        locked unless it is right."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            row = _row_for_update(conn, user_id, now)
            if row.locked_at is not None or row.failures >= self.limit:
                return FactorCount(int(row.failures), True)
            count = int(row.failures) + 1
            values: dict[str, Any] = {"failures": count, "last_failed_at": now}
            just = count >= self.limit
            if just:
                values["locked_at"] = now
            conn.execute(failures_table.update().where(failures_table.c.user_id == user_id)
                         .values(**values))
        return FactorCount(count, False, just)

    def locked_users(self, user_ids: list[int]) -> set[int]:
        """Which of ``user_ids`` have their codes locked (the administrator's list)."""
        if not user_ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(failures_table.c.user_id).where(
                failures_table.c.user_id.in_(user_ids),
                sa.or_(failures_table.c.locked_at.is_not(None),
                       failures_table.c.failures >= self.limit))).scalars())

    def counts(self, user_ids: list[int]) -> dict[int, FactorCount]:
        """The wrong codes in a row of those of ``user_ids`` that have any, and whether
        their codes are locked (what the administrators' lists show beside the account
        lock; none listed: no wrong code since the last passed factor)."""
        if not user_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(failures_table.c.user_id, failures_table.c.failures,
                                          failures_table.c.locked_at)
                                .where(failures_table.c.user_id.in_(user_ids))).all()
        return {int(r.user_id): FactorCount(int(r.failures), r.locked_at is not None
                                            or r.failures >= self.limit)
                for r in rows if r.failures or r.locked_at is not None}

    def passed(self, user_id: int) -> None:
        """A second factor passed: the count starts again."""
        clear(self.engine, user_id)


def clear(engine: Engine | Connection, user_id: int) -> None:
    """Forget the account's wrong codes and lift the codes' lock (a passed factor, an
    administrator's unlock or reset of the authenticator)."""
    statement = failures_table.delete().where(failures_table.c.user_id == user_id)
    if isinstance(engine, Connection):
        engine.execute(statement)
        return
    with engine.begin() as conn:
        conn.execute(statement)


def _row_for_update(conn: Connection, user_id: int, now: Any) -> Any:
    """The account's row, created empty if missing, locked until commit (on SQLite the
    write transaction already serialises writers)."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    conn.execute(dialect.insert(failures_table).values(
        user_id=user_id, failures=0, last_failed_at=now).on_conflict_do_nothing())
    return conn.execute(sa.select(failures_table)
                        .where(failures_table.c.user_id == user_id).with_for_update()).one()
