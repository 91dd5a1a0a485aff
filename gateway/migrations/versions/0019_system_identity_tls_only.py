"""systems: identity_tls_only, for a system whose identity headers (the assertion,
plain headers) must travel only over verified TLS (gateway.proxy.endpoint)

Revision ID: 0019_system_identity_tls_only
Revises: 0016_system_tls
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_system_identity_tls_only"
down_revision = "0016_system_tls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("identity_tls_only", sa.Boolean, nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("identity_tls_only")
