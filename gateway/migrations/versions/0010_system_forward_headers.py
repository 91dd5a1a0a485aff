"""systems: forward_headers, the only client headers a system receives (allow-list
mode of gateway.proxy.headers); NULL keeps the default (every header but the dropped
families)

Revision ID: 0010_system_forward_headers
Revises: 0008_audit_partial_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_system_forward_headers"
# the newest revision when written; re-chained at merge if another lands first
down_revision = "0008_audit_partial_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("forward_headers", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("forward_headers")
