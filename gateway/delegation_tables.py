"""The ``delegations`` table (委托): user A lets colleague B act for A, for named roles
and systems, for a bounded period, once A's department head approves
(``gateway.delegations``; migration ``0021_delegations``)."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.tables import metadata

delegations = sa.Table(
    "delegations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delegator", sa.String(64), nullable=False, index=True),  # A
    sa.Column("delegate", sa.String(64), nullable=False, index=True),  # B
    # A's department when asked: whose head approves
    sa.Column("department_code", sa.String(64), nullable=False, index=True),
    sa.Column("roles", sa.JSON, nullable=False),  # role codes A lends
    sa.Column("systems", sa.JSON, nullable=False),  # system codes A lends
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    # requested → approved | rejected; approved → revoked ("expired" is read from ends_at)
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),  # the approver's, on a rejection
    sa.Column("revoked_by", sa.String(64), nullable=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)
