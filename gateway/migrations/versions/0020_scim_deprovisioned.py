"""scim_deprovisioned: the accounts a SCIM client deleted (disabled, kept, 404 to SCIM)

Revision ID: 0020_scim_deprovisioned
Revises: 0018_user_recovery_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_scim_deprovisioned"
down_revision = "0018_user_recovery_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scim_deprovisioned",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scim_deprovisioned")
