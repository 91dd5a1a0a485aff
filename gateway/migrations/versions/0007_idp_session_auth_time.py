"""idp: when a portal session's user last authenticated (OIDC ``auth_time``,
``max_age`` and ``prompt=login``), apart from when the session was created

Revision ID: 0007_idp_session_auth_time
Revises: 0004_idp
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_idp_session_auth_time"
down_revision = "0004_idp"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable: a session created before this revision falls back to created_at,
    # which was its authentication time until now
    op.add_column("idp_sessions",
                  sa.Column("authenticated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idp_sessions") as batch:
        batch.drop_column("authenticated_at")
