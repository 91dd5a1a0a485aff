"""policies: policy lines and the policy version counter (mirrors policies/tables.py)

Revision ID: 0005_policies
Revises: 0001_organisation
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_policies"
down_revision = "0001_organisation"
branch_labels = ("policies",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("object", sa.String(500), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("effect", sa.String(8), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_lines"),
        sa.UniqueConstraint(
            "subject", "department", "object", "action", "effect",
            name="uq_policy_lines_subject_department_object_action_effect",
        ),
    )
    op.create_table(
        "policy_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_version"),
    )


def downgrade() -> None:
    op.drop_table("policy_version")
    op.drop_table("policy_lines")
