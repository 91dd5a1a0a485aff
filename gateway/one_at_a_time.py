"""``one_at_a_time``: a periodic job that several processes on one database (``serve
--workers N``, several ``serve`` commands) would otherwise run together.

Every worker runs the maintenance loop, and their loops start together, so a job that
checks "is it due?" and then acts (the scheduled directory sync) would run once per
worker in the same second. On PostgreSQL the job holds a session advisory lock named
after it while it checks and acts: another process finds it taken and skips the round.
SQLite serves one process, which needs no lock.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    return int.from_bytes(hashlib.sha256(f"govgate:{name}".encode()).digest()[:8], "big",
                          signed=True)


@contextlib.contextmanager
def one_at_a_time(engine: Engine, name: str) -> Iterator[bool]:
    """True while this process alone runs ``name``; False when another process does
    (skip the round). Released at the end, or with the connection if the process dies."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(name)
    with engine.connect() as conn:
        held = bool(conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                    .scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
