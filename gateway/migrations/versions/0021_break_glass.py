"""break_glass, break_glass_approvals: emergency access granted by two security
administrators and reviewed by the audit administrator (gateway.break_glass)

Revision ID: 0021_break_glass
Revises: 0020_user_source
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_break_glass"
down_revision = "0020_user_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "break_glass",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("username", sa.String(128), nullable=False, index=True),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("duration_seconds", sa.Integer, nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True, index=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(128), nullable=True),
        sa.Column("end_reason", sa.Text, nullable=True),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(128), nullable=True),
        sa.Column("finding", sa.Text, nullable=True),
    )
    op.create_table(
        "break_glass_approvals",
        sa.Column("break_glass_id", sa.String(32),
                  sa.ForeignKey("break_glass.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("approver", sa.String(128), primary_key=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("break_glass_approvals")
    op.drop_table("break_glass")
