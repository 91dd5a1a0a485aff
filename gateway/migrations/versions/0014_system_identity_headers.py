"""systems: identity_headers (assertion | plain | both) and remote_user, for systems
that cannot verify a JWT and read the caller from plain request headers

Revision ID: 0014_system_identity_headers
Revises: 0013_system_case_sensitive_paths
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_system_identity_headers"
down_revision = "0013_system_case_sensitive_paths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("identity_headers", sa.String(16), nullable=False,
                                       server_default="assertion"))
    op.add_column("systems", sa.Column("remote_user", sa.Boolean, nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("remote_user")
        batch.drop_column("identity_headers")
