"""systems: assertion (per_request | per_caller), whether the proxy signs an assertion
for every request or reuses one per caller and system for up to 30 s
(gateway.proxy.caller_assertion)

Revision ID: 0021_system_assertion_reuse
Revises: 0019_system_identity_tls_only
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_system_assertion_reuse"
down_revision = "0019_system_identity_tls_only"  # the systems table's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("assertion", sa.String(16), nullable=False,
                                       server_default="per_request"))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("assertion")
