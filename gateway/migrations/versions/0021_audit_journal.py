"""audit: the journal's watermarks, one row per segment file (audit/journal_tables.py)

Revision ID: 0021_audit_journal
Revises: 0020_user_source
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_audit_journal"
down_revision = "0020_user_source"  # a new table
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_journal_segments",
        sa.Column("chain_id", sa.String(64), primary_key=True),
        sa.Column("first_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("removed_at", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_journal_segments")
