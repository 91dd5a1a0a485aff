"""Clients: ``id_token_signed_response_alg`` (OpenID Connect Dynamic Client Registration
section 2; gateway.idp.oauth2.oidc.id_token_key): NULL, every existing client, keeps the
``token`` key's algorithm; RS256 is signed by the ring's new ``token_rs256`` key, which
``govgate init`` / start-up creates. Refresh tokens: ``amr``, how the person signed in,
so a refreshed ID token says it as the first did (NULL in older rows: no ``amr``).
Clients: ``consent_required`` (NULL: the default rule, gateway.idp.oauth2.consent);
``idp_consents``: what each person consented to each client.

Revision ID: 0032_oidc8_rs256_consent
Revises: 0031_idp7_lenient_audience
"""

import sqlalchemy as sa
from alembic import op

revision = "0032_oidc8_rs256_consent"
down_revision = "0032_legacy_static_credential"  # the clients' line, after the fixed credential
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clients", sa.Column("id_token_signed_response_alg", sa.String(16),
                                       nullable=True))
    op.add_column("idp_refresh_tokens", sa.Column("amr", sa.String(64), nullable=True))
    op.add_column("clients", sa.Column("consent_required", sa.Boolean, nullable=True))
    op.create_table(
        "idp_consents",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("idp_consents")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("consent_required")
    with op.batch_alter_table("idp_refresh_tokens") as batch:
        batch.drop_column("amr")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("id_token_signed_response_alg")
