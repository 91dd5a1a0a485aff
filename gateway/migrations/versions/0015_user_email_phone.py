"""users: optional e-mail address and phone number (with verified flags), released
as OpenID Connect claims when a relying party is granted the email or phone scope

Revision ID: 0015_user_email_phone
Revises: 0014_system_identity_headers
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_user_email_phone"
down_revision = "0014_system_identity_headers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email", sa.String(254), nullable=True))
    op.add_column("users", sa.Column("email_verified", sa.Boolean, nullable=False,
                                     server_default=sa.false()))
    op.add_column("users", sa.Column("phone_number", sa.String(32), nullable=True))
    op.add_column("users", sa.Column("phone_number_verified", sa.Boolean, nullable=False,
                                     server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        for column in ("phone_number_verified", "phone_number", "email_verified", "email"):
            batch.drop_column(column)
