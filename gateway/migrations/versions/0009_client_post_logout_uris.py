"""idp: each client's post-logout redirect URIs (OpenID Connect RP-Initiated Logout
1.0 section 3.1, ``post_logout_redirect_uris``), registered apart from its redirect
URIs. Existing clients start with none: until they are registered (state file or
``govgate client add --post-logout-redirect-uri``), a logout shows the signed-out
page instead of redirecting.

Revision ID: 0009_client_post_logout_uris
Revises: 0007_idp_session_auth_time
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_client_post_logout_uris"
down_revision = "0007_idp_session_auth_time"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("post_logout_redirect_uris", sa.JSON, nullable=False,
                                       server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("post_logout_redirect_uris")
