"""delegations: user A lets colleague B act for A (委托), named roles and systems, a
bounded period, approved by A's department head (mirrors gateway/delegation_tables.py)

Revision ID: 0021_delegations
Revises: 0020_user_source
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_delegations"
down_revision = "0020_user_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("delegator", sa.String(64), nullable=False),
        sa.Column("delegate", sa.String(64), nullable=False),
        sa.Column("department_code", sa.String(64), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("systems", sa.JSON, nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_delegations"),
    )
    for column in ("delegator", "delegate", "department_code"):
        op.create_index(f"ix_delegations_{column}", "delegations", [column])


def downgrade() -> None:
    op.drop_table("delegations")
