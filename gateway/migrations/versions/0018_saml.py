"""SAML 2.0 identity provider: its signing key (sealed), accepted AuthnRequests (one
response each), what each portal session released to each SP (single logout), and
each system's registered service provider (gateway.idp.saml)

Revision ID: 0018_saml
Revises: 0017_cas_tickets
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_saml"
down_revision = "0017_cas_tickets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saml_signing_keys",
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("cert_pem", sa.Text, nullable=False),
        sa.Column("key_sealed", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name="pk_saml_signing_keys"),
    )
    op.create_table(
        "saml_requests",
        sa.Column("request_hash", sa.String(128), nullable=False),
        sa.Column("handle_hash", sa.String(128), nullable=False),
        sa.Column("sp_entity_id", sa.String(1024), nullable=False),
        sa.Column("system_code", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(256), nullable=False),
        sa.Column("acs_url", sa.String(2048), nullable=False),
        sa.Column("relay_state", sa.String(1024), nullable=True),
        sa.Column("name_id_format", sa.String(256), nullable=True),
        sa.Column("force_authn", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_passive", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("binding", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_hash", name="pk_saml_requests"),
        sa.UniqueConstraint("handle_hash", name="uq_saml_requests_handle_hash"),
    )
    op.create_table(
        "saml_sessions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("sp_entity_id", sa.String(1024), nullable=False),
        sa.Column("system_code", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("name_id", sa.String(256), nullable=False),
        sa.Column("name_id_format", sa.String(256), nullable=False),
        sa.Column("session_index", sa.String(256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_saml_sessions"),
    )
    op.create_index("ix_saml_sessions_sid", "saml_sessions", ["sid"])
    op.add_column("systems", sa.Column("saml_sp", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("saml_sp")
    op.drop_index("ix_saml_sessions_sid", table_name="saml_sessions")
    op.drop_table("saml_sessions")
    op.drop_table("saml_requests")
    op.drop_table("saml_signing_keys")
