"""The break-glass tables (migration ``0021_break_glass``)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

break_glass = sa.Table(
    "break_glass",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # bg_ + 16 hex digits
    sa.Column("username", sa.String(128), nullable=False, index=True),
    sa.Column("department", sa.String(64), nullable=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("resource", sa.String(64), nullable=True),  # a catalogue resource on it
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("duration_seconds", sa.Integer, nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    # the second approval: active from then until ends_at
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True, index=True),
    # ended by a security administrator (before or after activation)
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_by", sa.String(128), nullable=True),
    sa.Column("end_reason", sa.Text, nullable=True),
    sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True),
    # the audit administrator's review
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("reviewed_by", sa.String(128), nullable=True),
    sa.Column("finding", sa.Text, nullable=True),
)

approvals = sa.Table(
    "break_glass_approvals",
    metadata,
    sa.Column("break_glass_id", sa.String(32),
              sa.ForeignKey("break_glass.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("approver", sa.String(128), primary_key=True),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
)
