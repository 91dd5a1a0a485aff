"""Clients: ``require_pkce`` (``clients.require_pkce``, gateway.idp.oauth2.rfc7636);
mirrors gateway/tables.py. Existing clients keep the rule they had (a confidential client
may leave PKCE out; public clients always send it) until their state file, the CLI or the
console says otherwise; ``govgate compliance`` reports each one without it.

Revision ID: 0028_client_require_pkce
Revises: 0022_idp_acting
"""

import sqlalchemy as sa
from alembic import op

revision = "0028_client_require_pkce"
down_revision = "0022_idp_acting"  # the clients table's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("require_pkce", sa.Boolean, nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_pkce")
