"""A migration mirrors its package's tables.py: the same columns, nullability and
indexes (the migrations are hand-written copies, docs/architecture.md)."""

from __future__ import annotations

import sqlalchemy as sa


def assert_mirrors(engine: sa.Engine, metadata: sa.MetaData) -> None:
    insp = sa.inspect(engine)
    for table in metadata.sorted_tables:
        cols = {c["name"]: c for c in insp.get_columns(table.name)}
        assert set(cols) == {c.name for c in table.columns}, table.name
        for c in table.columns:
            assert cols[c.name]["nullable"] == c.nullable, (table.name, c.name)
        want = {tuple(ix.columns.keys()) for ix in table.indexes}
        got = {tuple(ix["column_names"]) for ix in insp.get_indexes(table.name)}
        assert want <= got, (table.name, want - got)
