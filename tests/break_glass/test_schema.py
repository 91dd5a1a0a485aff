"""Migrations 0021_break_glass and 0030_break_glass_notices create what
gateway/break_glass/tables.py declares; the operator's maximum duration is bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.break_glass.tables import metadata
from gateway.errors import SettingsError
from gateway.settings import load_settings
from tests.schema import assert_mirrors


def test_migration_mirrors_tables(engine: sa.Engine) -> None:
    assert_mirrors(engine, metadata)


@pytest.mark.parametrize("hours", ["0", "25"])
def test_the_maximum_is_one_to_24_hours(hours: str) -> None:
    with pytest.raises(SettingsError, match="break_glass_max_hours"):
        load_settings({"GOVGATE_BREAK_GLASS_MAX_HOURS": hours})
    assert load_settings({"GOVGATE_BREAK_GLASS_MAX_HOURS": "2"}).break_glass_max_hours == 2


def test_the_notices_migration_marks_what_was_told_before(engine: sa.Engine) -> None:
    """Upgrading a database that holds break-glass: those activated are not announced
    again, those over not told of their end again; an active one is left for its
    expiry notice, a pending one untouched."""
    from alembic import command

    from gateway.break_glass.tables import break_glass
    from gateway.storage import _alembic_config, upgrade, write_transaction

    with write_transaction(engine) as conn:
        command.downgrade(_alembic_config(conn), "0030_break_glass_notices@-1")
    now = datetime.now(UTC)
    columns = ("id", "username", "system", "reason", "duration_seconds", "requested_at",
               "activated_at", "ends_at", "ended_at")
    old = sa.table("break_glass", *(sa.column(c, sa.DateTime(timezone=True))
                                    if c.endswith("_at") else sa.column(c) for c in columns))
    hour = timedelta(hours=1)
    with engine.begin() as conn:
        for n, (activated, ends, ended) in enumerate([
                (now, now + hour, None), (now - 2 * hour, now - hour, None),
                (now - 2 * hour, now + hour, now), (None, None, None)]):
            conn.execute(old.insert().values(
                id=f"bg_{n}", username="u", system="s", reason="r", duration_seconds=60,
                requested_at=now, activated_at=activated, ends_at=ends, ended_at=ended))
    upgrade(engine)
    b = break_glass.c
    with engine.connect() as conn:
        marks = conn.execute(sa.select(b.id, b.activation_noticed_at.is_not(None),
                                       b.end_noticed_at.is_not(None)).order_by(b.id)).all()
    assert [tuple(m) for m in marks] == [("bg_0", True, False), ("bg_1", True, True),
                                         ("bg_2", True, True), ("bg_3", False, False)]
