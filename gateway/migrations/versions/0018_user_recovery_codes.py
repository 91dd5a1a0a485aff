"""Account: recovery codes, the one-time codes that replace a TOTP code when the
device is lost (keyed hashes only; gateway.idp.recovery_codes)

Revision ID: 0018_user_recovery_codes
Revises: 0016_system_tls
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_user_recovery_codes"
down_revision = "0016_system_tls"  # the organisation's branch: the users table's
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_recovery_codes",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_recovery_codes"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_user_recovery_codes_user_id_users"),
        sa.UniqueConstraint("code_hash", name="uq_user_recovery_codes_code_hash"),
    )
    op.create_index("ix_user_recovery_codes_user_id", "user_recovery_codes", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_user_recovery_codes_user_id", table_name="user_recovery_codes")
    op.drop_table("user_recovery_codes")
