"""idp: a person acting for another (委托) in the identity provider's answers
(docs/delegation.md, "Acting"). ``clients.system``: the system a client signs users in
to (what a delegation names); ``idp_acting``: the delegation an authorization code, a
refresh-token family or a CAS ticket was issued under, so that the token endpoint and
ticket validation answer for A acted for by B, and refresh stops when it ends.

Revision ID: 0022_idp_acting
Revises: 0009_client_post_logout_uris
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_idp_acting"
down_revision = "0009_client_post_logout_uris"  # the clients table's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("system", sa.String(64), nullable=True))
    op.create_table(
        "idp_acting",
        sa.Column("grant_key", sa.String(160), nullable=False),
        sa.Column("delegation", sa.BigInteger, nullable=False),
        sa.Column("delegate", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("grant_key", name="pk_idp_acting"),
    )


def downgrade() -> None:
    op.drop_table("idp_acting")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("system")
