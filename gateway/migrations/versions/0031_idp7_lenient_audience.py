"""Clients: ``lenient_assertion_audience`` (``clients.lenient_assertion_audience``,
gateway.idp.oauth2.rfc7523): this client's assertions may still name the token endpoint
or several audiences (the rule before draft-ietf-oauth-rfc7523bis), one client at a
time instead of the gateway-wide ``client_assertion_audience`` setting. False for
every existing client: the setting keeps doing what it did.

Revision ID: 0031_idp7_lenient_audience
Revises: 0029_dpop
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_idp7_lenient_audience"
down_revision = "0031_dpop2_code_jkt"  # after the codes' dpop_jkt, on the clients' line
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("lenient_assertion_audience", sa.Boolean,
                                       nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("lenient_assertion_audience")
