"""Migration 0018_catalogue_steward: it mirrors catalogue/tables.py, stays on the
catalogue's branch (no new head), carries an existing application's old ``history``
over into its timeline, adds the ``dept_head`` role, and goes back down."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from catalogue.tables import metadata
from gateway.storage import (
    _alembic_config,
    create_engine,
    head_revisions,
    upgrade,
    write_transaction,
)
from tests.schema import assert_mirrors


def _to(engine: sa.Engine, target: str, down: bool = False) -> None:
    with write_transaction(engine) as conn:
        (command.downgrade if down else command.upgrade)(_alembic_config(conn), target)


def test_the_catalogue_branch_has_one_head() -> None:
    heads = head_revisions()
    # 0023_catalogue_route_query and 0024_catalogue_route_envelope follow it on one line
    assert "0024_catalogue_route_envelope" in heads
    assert not heads & {"0023_catalogue_route_query", "0018_catalogue_steward",
                        "0006_catalogue"}


def test_migration_mirrors_the_tables(engine: sa.Engine) -> None:
    assert_mirrors(engine, metadata)


def test_the_old_history_becomes_the_timeline_and_back(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        _to(engine, "0006_catalogue")
        filed = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
        history = [
            {"at": filed.isoformat(), "by": "wang.wu", "status": "submitted"},
            {"at": "2026-03-03T01:00:00+00:00", "by": "zhang.san", "status": "rejected",
             "reason": "不必要"},
            {"at": "2026-03-04T01:00:00+00:00", "by": "wang.wu", "status": "escalated",
             "reason": "请协调"},
        ]
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO catalogue_applications (resource, consumer, applicant, items, "
                "purpose, basis, until, status, due_at, created_at, reason, history) VALUES "
                "('JG-0001', 'nn-jgsw', 'wang.wu', :items, '核算', '', '2026-12-31', "
                "'escalated', :due, :filed, '请协调', :history)"),
                {"items": json.dumps(["plate_number"]), "due": filed, "filed": filed,
                 "history": json.dumps(history, ensure_ascii=False)})
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT kind, status, actor, reason FROM catalogue_application_events "
                "ORDER BY id")).all()
            role = conn.execute(sa.text("SELECT name FROM roles WHERE code = 'dept_head'")
                                ).scalar()
            cols = {c["name"] for c in sa.inspect(conn).get_columns("catalogue_applications")}
        assert [tuple(r) for r in rows] == [
            ("submitted", "submitted", "wang.wu", None),
            ("rejected", "rejected", "zhang.san", "不必要"),
            ("escalated", "escalated", "wang.wu", "请协调")]
        assert role == "部门负责人"
        assert "history" not in cols and "head_escalated_at" in cols

        _to(engine, "0006_catalogue", down=True)
        with engine.connect() as conn:
            back = conn.execute(sa.text("SELECT history FROM catalogue_applications")).scalar()
            tables = set(sa.inspect(conn).get_table_names())
        back = json.loads(back) if isinstance(back, str) else back
        assert [(h["by"], h["status"], h.get("reason")) for h in back] == [
            ("wang.wu", "submitted", None), ("zhang.san", "rejected", "不必要"),
            ("wang.wu", "escalated", "请协调")]
        assert "catalogue_application_events" not in tables
    finally:
        engine.dispose()
