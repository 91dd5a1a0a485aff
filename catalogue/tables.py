"""Tables the catalogue owns (migrations ``0006_catalogue``,
``0018_catalogue_steward``, ``0023_catalogue_route_query`` and
``0024_catalogue_route_envelope`` mirror them).

Department, system and client codes are plain strings: the gateway owns those
tables and checks the references before anything is written here. Every
change to resources or grants bumps ``catalogue_version`` in the same
transaction; each gateway process polls that one row to reload within 1 s.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

resources = sa.Table(
    "catalogue_resources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("provider", sa.String(64), nullable=False, index=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("share_type", sa.String(16), nullable=False),
    sa.Column("conditions", sa.Text, nullable=False, default=""),
    sa.Column("basis", sa.Text, nullable=False, default=""),
    sa.Column("share_method", sa.String(16), nullable=False, default="api"),
    sa.Column("update_cycle", sa.String(64), nullable=False, default=""),
    sa.Column("open_attr", sa.String(200), nullable=False, default=""),
    sa.Column("route_method", sa.String(8), nullable=False),
    sa.Column("route_path", sa.String(500), nullable=False),
    sa.Column("route_records", sa.String(200), nullable=False, default=""),
    # the query parameters a consumer may send, separated by spaces ("": none at all);
    # NULL: not listed (any but the projection ones: catalogue.query)
    sa.Column("route_query", sa.Text, nullable=True),
    # the envelope keys kept beside the records, separated by spaces ("": none);
    # NULL: not listed (pagination counts only: catalogue.envelope)
    sa.Column("route_envelope", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, default=1),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
)

items = sa.Table(
    "catalogue_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "resource_id",
        sa.Integer,
        sa.ForeignKey("catalogue_resources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("type", sa.String(16), nullable=False, default="string"),
    sa.Column("level", sa.Integer, nullable=False, default=1),
    sa.Column("mask", sa.String(32), nullable=True),
    sa.Column("encrypt", sa.Boolean, nullable=False, default=False),
    sa.Column("authoritative", sa.Boolean, nullable=False, default=False),
    sa.Column("shareable", sa.Boolean, nullable=False, default=True),
    sa.UniqueConstraint("resource_id", "name"),
)

applications = sa.Table(
    "catalogue_applications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("resource", sa.String(64), nullable=False, index=True),
    sa.Column("consumer", sa.String(64), nullable=False, index=True),
    sa.Column("client_id", sa.String(128), nullable=True),
    sa.Column("applicant", sa.String(128), nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("purpose", sa.String(500), nullable=False),
    sa.Column("basis", sa.Text, nullable=False, default=""),
    sa.Column("valid_from", sa.Date, nullable=True),
    sa.Column("until", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("grant_id", sa.Integer, nullable=True),
    # when the application went to the provider's department head (负责人): overdue, or
    # referred by the steward; cleared when an escalation starts a new time limit
    sa.Column("head_escalated_at", sa.DateTime(timezone=True), nullable=True),
)

# an application's timeline, one row per step, written in the step's transaction:
# submitted, approved (what was granted), rejected, escalated, referred (to the
# department head; ``actor`` "govgate" when overdue), closed, revoked (its grant)
application_events = sa.Table(
    "catalogue_application_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "application_id",
        sa.Integer,
        sa.ForeignKey("catalogue_applications.id", ondelete="CASCADE",
                      name="fk_catalogue_application_events_application"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # the application's, after the step
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("actor_department", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),  # reason, or the approval's note
    sa.Column("detail", sa.JSON, nullable=False),
)

# notices of a referral to deliver (outbox): written with the referral, delivered by
# the gateway (webhook, e-mail) after it commits, retried until sent or abandoned
notices = sa.Table(
    "catalogue_notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "event_id",
        sa.Integer,
        sa.ForeignKey("catalogue_application_events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("application_id", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending|sent|abandoned
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# the operator's holiday calendar: one row per announced year (catalogue.calendar)
calendar = sa.Table(
    "catalogue_calendar",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("source", sa.Text, nullable=False, default=""),
    sa.Column("holidays", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

grants = sa.Table(
    "catalogue_grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("resource", sa.String(64), nullable=False, index=True),
    sa.Column("consumer", sa.String(64), nullable=False, index=True),
    sa.Column("client_id", sa.String(128), nullable=True),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("purpose", sa.String(500), nullable=False),
    sa.Column("basis", sa.Text, nullable=False, default=""),
    sa.Column("valid_from", sa.Date, nullable=True),
    sa.Column("until", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("application_id", sa.Integer, nullable=True),
    sa.Column("approved_by", sa.String(128), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Column("revoke_reason", sa.Text, nullable=True),
)

version = sa.Table(
    "catalogue_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
