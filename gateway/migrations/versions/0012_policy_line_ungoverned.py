"""policies: a line may be marked ungoverned (with the reason) to reach another
department's system that publishes catalogue resources without the catalogue

Revision ID: 0012_policy_line_ungoverned
Revises: 0005_policies
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_policy_line_ungoverned"
down_revision = "0005_policies"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: every line stored before is governed (the catalogue-only rule holds)
    op.add_column("policy_lines",
                  sa.Column("ungoverned_reason", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_lines") as batch:
        batch.drop_column("ungoverned_reason")
