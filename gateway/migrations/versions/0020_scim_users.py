"""scim_users: a SCIM client's externalId of an account, and the accounts a SCIM client
deleted (disabled and kept; 404 to SCIM)

Revision ID: 0020_scim_users
Revises: 0018_user_recovery_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_scim_users"
down_revision = "0018_user_recovery_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_users",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.String(128), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("scim_users")
