"""Migration 0003_audit creates exactly what audit/tables.py declares."""

from __future__ import annotations

import sqlalchemy as sa

from audit.tables import metadata
from tests.schema import assert_mirrors


def test_migration_mirrors_tables(audit_engine: sa.Engine) -> None:
    assert_mirrors(audit_engine, metadata)


def test_sparse_columns_have_partial_indexes_the_queries_use(audit_engine: sa.Engine) -> None:
    from audit.query import QueryFilter, build_query
    from audit.tables import PARTIAL_INDEXED

    insp = sa.inspect(audit_engine)
    names = {ix["name"] for ix in insp.get_indexes("audit_records")}
    assert {f"ix_audit_records_{c}" for c in PARTIAL_INDEXED} <= names
    if audit_engine.dialect.name != "sqlite":
        return  # PostgreSQL plans a seq scan on a table this small whatever the indexes
    with audit_engine.connect() as conn:
        for f, index in ((QueryFilter(user="zhang.san"), "ix_audit_records_actor_user"),
                         (QueryFilter(resource="JG-0001", since=1),
                          "ix_audit_records_resource")):
            compiled = build_query(f).compile(audit_engine)
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled),
                                        tuple(compiled.params[k] for k in compiled.positiontup)
                                        ).fetchall()
            assert index in str(plan), plan
