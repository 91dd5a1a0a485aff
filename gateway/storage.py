"""Engines for SQLite (embedded default) and PostgreSQL, and the schema migrations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway import revisions
from gateway.errors import StorageError
from texts import Text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # FULL: a committed transaction survives power loss (the audit log relies on it)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def create_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take it over so that
        # BEGIN IMMEDIATE-style locking follows SQLAlchemy's transaction boundaries.
        event.listen(engine, "connect", _disable_pysqlite_begin)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(url, **kwargs)


def _disable_pysqlite_begin(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# the execution option that makes a SQLite transaction begin as a writer; packages
# that get only an engine (catalogue) set it by this name
WRITE_OPTION = "govgate_write"


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that takes the write lock when it begins (SQLite: ``BEGIN
    IMMEDIATE``; PostgreSQL: an ordinary transaction).

    On SQLite a transaction that reads and then writes fails at once with
    "database is locked" if another connection commits in between (its read
    snapshot is stale; the busy timeout does not apply). One that begins as a
    writer waits for the lock instead, up to the busy timeout."""
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        yield conn


def _alembic_config(connection: sa.Connection) -> Config:
    # alembic only where a schema changes (``govgate init``, tests): gateway.revisions
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revisions() -> frozenset[str]:
    """Every package keeps its migrations on its own branch; these are the branch heads."""
    return revisions.heads()


def head_revision() -> str:
    """The heads as one printable string."""
    return "+".join(sorted(head_revisions()))


# alembic's record of the revisions a schema is at (alembic.runtime.migration), read
# as alembic reads it: no table, no revision
VERSION_TABLE = "alembic_version"


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return frozenset()
        return frozenset(conn.execute(
            sa.select(sa.column("version_num")).select_from(sa.table(VERSION_TABLE))
        ).scalars())


def current_revision(engine: Engine) -> str | None:
    heads = current_revisions(engine)
    return "+".join(sorted(heads)) if heads else None


def _unknown_revisions(current: frozenset[str]) -> set[str]:
    return set(current) - revisions.known()


# what a caller meets when the database is down, its disk full or its pool exhausted:
# the server's fault, not the request's, answered 503 (a constraint violation or a
# bad statement stays a 500: a bug to see)
STORAGE_FAILURES: tuple[type[Exception], ...] = (
    sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


def unavailable() -> StorageError:
    """The 503 a request gets when one of ``STORAGE_FAILURES`` stopped it."""
    return StorageError(Text("storage.unavailable", "the database is unavailable; try again"))


def check_reachable(engine: Engine) -> None:
    """Raise StorageError with a one-line reason if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StorageError(Text("storage.unreachable", "database unreachable: {detail}",
                                detail=reason)) from None


def check_schema(engine: Engine) -> None:
    """Raise StorageError unless the schema is exactly at this release's heads."""
    check_reachable(engine)
    current = current_revisions(engine)
    if current == head_revisions():
        return
    if not current:
        raise StorageError(Text("storage.no_schema",
                                "database has no govgate schema: run `govgate init`"))
    if _unknown_revisions(current):
        raise StorageError(Text(
            "storage.newer", "database schema {rev} is newer than this govgate (knows up to "
            "{head})", rev="+".join(sorted(current)), head=head_revision()))
    raise StorageError(Text(
        "storage.older", "database schema {rev} is older than {head}: run `govgate init`",
        rev="+".join(sorted(current)), head=head_revision()))


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to head; refuse a schema newer than this release."""
    check_reachable(engine)
    current = current_revisions(engine)
    if _unknown_revisions(current):
        raise StorageError(Text(
            "storage.newer_upgrade", "database schema {rev} is newer than this govgate (knows "
            "up to {head}); upgrade govgate instead", rev="+".join(sorted(current)),
            head=head_revision()))
    if current == head_revisions():
        # nothing to do: alembic would execute every script to find that out (0.1 s
        # and more at each `govgate init`, `govgate serve` and test world's start)
        return
    from alembic import command

    # alembic reads the current revision, then changes the schema
    with write_transaction(engine) as conn:
        command.upgrade(_alembic_config(conn), "heads")
