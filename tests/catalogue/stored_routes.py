"""A catalogue stored at an older migration, with the demo's JG-0001 in it: for the
tests of the migrations that add a route's columns (0023, 0024)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from catalogue.tables import resources
from gateway.storage import _alembic_config, write_transaction

STORED = {"code": "JG-0001", "name": "公务用车", "summary": "", "provider": "jgswj",
          "system": "vehicles", "share_type": "unconditional", "conditions": "", "basis": "",
          "share_method": "api", "update_cycle": "", "open_attr": "", "route_method": "GET",
          "route_path": "/api/vehicles", "route_records": "items", "status": "published",
          "version": 1, "created_at": datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
          "updated_at": datetime(2026, 3, 2, 1, 0, tzinfo=UTC)}


def migrate(engine: sa.Engine, revision: str, *, down: bool = False) -> None:
    with write_transaction(engine) as conn:
        (command.downgrade if down else command.upgrade)(_alembic_config(conn), revision)


def store_at(engine: sa.Engine, revision: str, **columns: str) -> None:
    """Migrate ``engine``'s empty database to ``revision`` and store JG-0001 there,
    ``columns`` beside the ones every revision since 0018 has."""
    migrate(engine, revision)
    row = {**STORED, **columns}
    with engine.begin() as conn:
        # only the columns named: the table of today has more than the stored one
        conn.execute(resources.insert().values(**row))


def stored_column(engine: sa.Engine, column: str) -> object:
    with engine.connect() as conn:
        return conn.execute(sa.select(resources.c[column])).scalar()


def columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("catalogue_resources")}
