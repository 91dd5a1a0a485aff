"""catalogue: an application's timeline (its events, carried over from the old
``history`` column), notices to deliver, the holiday calendar, the referral to the
department head; the ``dept_head`` role (mirrors catalogue/tables.py)

The role row goes into the organisation's ``roles`` table from here, on the
catalogue's branch: the department head (负责人) exists for the catalogue's
referrals, and the organisation's trunk has several heads to choose from.

Revision ID: 0018_catalogue_steward
Revises: 0006_catalogue
"""

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0018_catalogue_steward"
down_revision = "0006_catalogue"
branch_labels = None
depends_on = None

DEPT_HEAD = ("dept_head", "部门负责人", False)


def _history(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        raw = json.loads(raw)
    return [h for h in raw or [] if isinstance(h, dict)]


def _at(value: Any, fallback: Any) -> Any:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return fallback
    return fallback


def upgrade() -> None:
    # the old history first, step by step: rebuilding the applications table (SQLite)
    # must happen before any row refers to it. The first entry is the submission,
    # whatever status it left (an application for a resource not shared starts escalated)
    conn = op.get_bind()
    apps = sa.table("catalogue_applications", sa.column("id", sa.Integer),
                    sa.column("history", sa.JSON),
                    sa.column("created_at", sa.DateTime(timezone=True)))
    rows = []
    for app in conn.execute(sa.select(apps.c.id, apps.c.history, apps.c.created_at)):
        for k, h in enumerate(_history(app.history)):
            status = str(h.get("status") or "submitted")
            detail = {"narrowed": bool(h["narrowed"])} if "narrowed" in h else {}
            rows.append({
                "application_id": app.id, "kind": "submitted" if k == 0 else status,
                "status": status, "actor": str(h.get("by") or ""), "actor_department": None,
                "reason": h.get("reason"), "detail": detail,
                "at": _at(h.get("at"), app.created_at),
            })
    with op.batch_alter_table("catalogue_applications") as batch:
        batch.drop_column("history")
        batch.add_column(sa.Column("head_escalated_at", sa.DateTime(timezone=True),
                                   nullable=True))
    events = op.create_table(
        "catalogue_application_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("application_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("actor_department", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_application_events"),
        sa.ForeignKeyConstraint(
            ["application_id"], ["catalogue_applications.id"], ondelete="CASCADE",
            name="fk_catalogue_application_events_application",  # PostgreSQL: 63 at most
        ),
    )
    op.create_index("ix_catalogue_application_events_application_id",
                    "catalogue_application_events", ["application_id"])
    if rows:
        op.bulk_insert(events, rows)
    op.create_table(
        "catalogue_notices",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("application_id", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalogue_notices"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["catalogue_application_events.id"], ondelete="CASCADE",
            name="fk_catalogue_notices_event_id_catalogue_application_events",
        ),
    )
    op.create_index("ix_catalogue_notices_status", "catalogue_notices", ["status"])
    op.create_table(
        "catalogue_calendar",
        sa.Column("year", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("holidays", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year", name="pk_catalogue_calendar"),
    )
    roles = sa.table("roles", sa.column("code", sa.String), sa.column("name", sa.String),
                     sa.column("is_admin", sa.Boolean))
    if conn.execute(sa.select(roles.c.code).where(roles.c.code == DEPT_HEAD[0])).first() is None:
        op.bulk_insert(roles, [dict(zip(("code", "name", "is_admin"), DEPT_HEAD, strict=True))])


def downgrade() -> None:
    conn = op.get_bind()
    events = sa.table("catalogue_application_events", sa.column("id", sa.Integer),
                      sa.column("application_id", sa.Integer),
                      sa.column("at", sa.DateTime(timezone=True)),
                      sa.column("status", sa.String), sa.column("actor", sa.String),
                      sa.column("reason", sa.Text))
    history: dict[int, list[dict[str, Any]]] = {}
    for e in conn.execute(sa.select(events).order_by(events.c.id)):
        entry = {"at": e.at.isoformat() if e.at else None, "by": e.actor, "status": e.status}
        if e.reason:
            entry["reason"] = e.reason
        history.setdefault(e.application_id, []).append(entry)
    op.drop_table("catalogue_calendar")
    op.drop_index("ix_catalogue_notices_status", "catalogue_notices")
    op.drop_table("catalogue_notices")
    op.drop_index("ix_catalogue_application_events_application_id",
                  "catalogue_application_events")
    op.drop_table("catalogue_application_events")
    with op.batch_alter_table("catalogue_applications") as batch:
        batch.drop_column("head_escalated_at")
        batch.add_column(sa.Column("history", sa.JSON, nullable=True))
    apps = sa.table("catalogue_applications", sa.column("id", sa.Integer),
                    sa.column("history", sa.JSON))
    for app in conn.execute(sa.select(apps.c.id)).all():
        conn.execute(apps.update().where(apps.c.id == app.id)
                     .values(history=history.get(app.id, [])))
    with op.batch_alter_table("catalogue_applications") as batch:
        batch.alter_column("history", existing_type=sa.JSON, nullable=False)
    conn.execute(sa.text("DELETE FROM roles WHERE code = :code AND NOT EXISTS "
                         "(SELECT 1 FROM user_roles WHERE role_code = :code)"),
                 {"code": DEPT_HEAD[0]})
