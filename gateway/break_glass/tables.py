"""The break-glass tables (migrations ``0021_break_glass``, ``0030_break_glass_notices``)."""

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
    # the audit administrators' notices of its activation and of its end (early or by
    # expiry) planned: set once, by whichever process claims it (gateway.break_glass.notice)
    sa.Column("activation_noticed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("end_noticed_at", sa.DateTime(timezone=True), nullable=True),
)

approvals = sa.Table(
    "break_glass_approvals",
    metadata,
    sa.Column("break_glass_id", sa.String(32),
              sa.ForeignKey("break_glass.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("approver", sa.String(128), primary_key=True),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
)

# one notice to one audit administrator, until its ``auditor_notice`` record is written
# (gateway.break_glass.notice): planned with the step's claim, written at once and,
# when that fails, by the maintenance round
notices = sa.Table(
    "break_glass_notices",
    metadata,
    sa.Column("break_glass_id", sa.String(32),
              sa.ForeignKey("break_glass.id", ondelete="CASCADE"), primary_key=True),
    # break_glass_activated | break_glass_ended | break_glass_expired
    sa.Column("step", sa.String(32), primary_key=True),
    sa.Column("auditor", sa.String(128), primary_key=True),
    sa.Column("department", sa.String(64), nullable=True),  # the auditor's
    sa.Column("by", sa.String(128), nullable=True),  # who took the step; none: expiry
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    # a process writing it now; a claim older than notice.LEASE is taken again
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("written_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("tries", sa.Integer, nullable=False, default=0),
)
