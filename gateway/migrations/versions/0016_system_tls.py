"""systems: tls, how to speak TLS to the system (its CA, a client certificate with
its key sealed by the key ring, a version floor; gateway.proxy.upstream_tls)

Revision ID: 0016_system_tls
Revises: 0015_user_email_phone
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_system_tls"
down_revision = "0015_user_email_phone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("tls", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("tls")
