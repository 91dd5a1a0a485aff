"""Clients: ``static_credential`` and ``api_key_hash`` (gateway.proxy.static_credentials):
a client_credentials client an old system stands for may call ``/s/`` with HTTP Basic
(its client id and secret) or an ``X-Api-Key`` of its own instead of a token. "off"
for every existing client: nothing changes until an operator opts one in.

Revision ID: 0032_legacy_static_credential
Revises: 0031_idp7_lenient_audience
"""

import sqlalchemy as sa
from alembic import op

revision = "0032_legacy_static_credential"
down_revision = "0031_idp7_lenient_audience"  # the clients table's line
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("static_credential", sa.String(16), nullable=False,
                                       server_default="off"))
    op.add_column("clients", sa.Column("api_key_hash", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("api_key_hash")
        batch.drop_column("static_credential")
