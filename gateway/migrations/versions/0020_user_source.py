"""users: source, where an account comes from: ``local`` (the gateway holds its
password) or ``directory`` (LDAP / Active Directory; gateway.directory signs it in by a
bind and never stores its password)

Revision ID: 0020_user_source
Revises: 0018_user_recovery_codes
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_user_source"
down_revision = "0018_user_recovery_codes"  # the users table's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("source", sa.String(16), nullable=False,
                                     server_default="local"))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("source")
