"""idp: DPoP, sender-constrained access tokens (RFC 9449; gateway.idp.dpop).
``clients.dpop_bound``: the client's token requests must carry a proof;
``idp_dpop_jtis``: the proofs already seen (replay, shared by every process);
``idp_dpop_refresh``: a public client's refresh token bound to its proof's key.

Revision ID: 0029_dpop
Revises: 0028_client_require_pkce
"""

import sqlalchemy as sa
from alembic import op

revision = "0029_dpop"
down_revision = "0028_client_require_pkce"  # the clients table's branch
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("dpop_bound", sa.Boolean, nullable=False,
                                       server_default=sa.false()))
    op.create_table(
        "idp_dpop_jtis",
        sa.Column("jkt", sa.String(64), nullable=False),
        sa.Column("jti", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jkt", "jti", name="pk_idp_dpop_jtis"),
    )
    op.create_table(
        "idp_dpop_refresh",
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("jkt", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_idp_dpop_refresh"),
    )


def downgrade() -> None:
    op.drop_table("idp_dpop_refresh")
    op.drop_table("idp_dpop_jtis")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("dpop_bound")
