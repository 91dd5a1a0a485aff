"""systems: case_sensitive_paths, for a system whose server tells /API/x from /api/x;
the catalogue then matches its routes letter for letter (default: without case, as
most department systems read paths)

Revision ID: 0013_system_case_sensitive_paths
Revises: 0010_system_forward_headers
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_system_case_sensitive_paths"
down_revision = "0010_system_forward_headers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("systems", sa.Column("case_sensitive_paths", sa.Boolean, nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("case_sensitive_paths")
