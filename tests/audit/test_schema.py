"""Migration 0003_audit creates exactly what audit/tables.py declares."""

from __future__ import annotations

import sqlalchemy as sa

from audit.tables import metadata


def test_migration_mirrors_tables(audit_engine: sa.Engine) -> None:
    insp = sa.inspect(audit_engine)
    for table in metadata.sorted_tables:
        cols = {c["name"]: c for c in insp.get_columns(table.name)}
        assert set(cols) == {c.name for c in table.columns}, table.name
        for c in table.columns:
            assert cols[c.name]["nullable"] == c.nullable, (table.name, c.name)
        want = {tuple(ix.columns.keys()) for ix in table.indexes}
        got = {tuple(ix["column_names"]) for ix in insp.get_indexes(table.name)}
        assert want <= got, (table.name, want - got)
