"""Migration 0021_break_glass creates what gateway/break_glass/tables.py declares; the
operator's maximum duration is bounded."""

from __future__ import annotations

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
