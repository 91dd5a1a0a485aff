"""Migration 0003_audit creates exactly what audit/tables.py declares."""

from __future__ import annotations

import re

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


def test_the_user_filter_reads_the_delegates_index(audit_engine: sa.Engine) -> None:
    """The user filter's delegate half (``extra.act.sub``, 委托) reads the partial index
    of migration 0032_edges_act_sub_index in ``ts`` order, on SQLite and on PostgreSQL
    (its partitions' copies of it), and the user's half its own: neither reads every
    record (the base read the log along ``ts``, every record's JSON for a name on none)."""
    from audit.query import QueryFilter, page_query

    compiled = page_query(QueryFilter(user="li.si")).compile(audit_engine)
    with audit_engine.connect() as conn:
        if audit_engine.dialect.name == "sqlite":
            plan = str(conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled),
                tuple(compiled.params[k] for k in compiled.positiontup)).fetchall())
            assert "ix_audit_records_act_sub" in plan and "ix_audit_records_actor_user" in (
                plan) and "SCAN audit_records" not in plan, plan
            return
        # a table this small is read whole whatever its indexes unless told not to
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + str(compiled),
                                                            compiled.params))
    assert "Seq Scan" not in plan and not re.search(r"_(p\d{6}|default)_ts_id_idx", plan), (
        plan)  # not along ts alone
    assert "_expr_ts_id_idx" in plan and "_actor_user_ts_id_idx" in plan, plan  # each half's
