"""Engines for SQLite (embedded default) and PostgreSQL, and the schema migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway.errors import StorageError

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
    conn.exec_driver_sql("BEGIN")


def _alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_reachable(engine: Engine) -> None:
    """Raise StorageError with a one-line reason if the database cannot be reached."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StorageError(f"database unreachable: {reason}") from None


def check_schema(engine: Engine) -> None:
    """Raise StorageError unless the schema is exactly at this release's head."""
    check_reachable(engine)
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if current is None:
        raise StorageError("database has no govgate schema: run `govgate init`")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
    if current not in known:
        raise StorageError(
            f"database schema {current} is newer than this govgate (knows up to {head})"
        )
    raise StorageError(f"database schema {current} is older than {head}: run `govgate init`")


def upgrade(engine: Engine) -> None:
    """Create or upgrade the schema to head; refuse a schema newer than this release."""
    check_reachable(engine)
    current = current_revision(engine)
    if current is not None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
        if current not in known:
            raise StorageError(
                f"database schema {current} is newer than this govgate "
                f"(knows up to {head_revision()}); upgrade govgate instead"
            )
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
