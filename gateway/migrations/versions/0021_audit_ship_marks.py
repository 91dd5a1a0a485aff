"""audit_ship_marks: per shipping target and audit chain, the last seq the receiver
accepted (audit/ship_marks.py)

Revision ID: 0021_audit_ship_marks
Revises: 0020_user_source
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_audit_ship_marks"
down_revision = "0020_user_source"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_ship_marks",
        sa.Column("target", sa.String(64), primary_key=True),
        sa.Column("chain_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_ship_marks")
