"""0021_delegations mirrors gateway/delegation_tables.py and hangs off the users' line."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.delegation_tables import delegations
from gateway.storage import head_revisions
from tests.schema import assert_mirrors


def test_the_migration_mirrors_the_table(engine: sa.Engine) -> None:
    only = sa.MetaData()
    delegations.to_metadata(only)
    assert_mirrors(engine, only)
    heads = head_revisions()
    assert "0021_delegations" in heads and "0020_user_source" not in heads
