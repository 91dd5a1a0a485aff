"""idp: portal sessions, authorization codes, refresh tokens, deny list, assertion jtis
(mirrors gateway/idp/oauth2/tables.py)

Revision ID: 0004_idp
Revises: 0003_audit
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_idp"
down_revision = "0003_audit"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "idp_sessions",
        sa.Column("sid", sa.String(64), primary_key=True),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("amr", sa.String(64), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_idp_sessions_username", "idp_sessions", ["username"])
    op.create_table(
        "idp_authorization_codes",
        sa.Column("code_hash", sa.String(128), primary_key=True),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("redirect_uri", sa.String(500), nullable=False),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=True),
        sa.Column("code_challenge_method", sa.String(16), nullable=True),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("amr", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("family_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_idp_authorization_codes_sid", "idp_authorization_codes", ["sid"])
    op.create_table(
        "idp_refresh_tokens",
        sa.Column("token_hash", sa.String(128), primary_key=True),
        sa.Column("family_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("sid", sa.String(64), nullable=True),
        sa.Column("scope", sa.String(500), nullable=False),
        sa.Column("auth_time", sa.BigInteger, nullable=False),
        sa.Column("access_jti", sa.String(64), nullable=True),
        sa.Column("access_expires_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_idp_refresh_tokens_family_id", "idp_refresh_tokens", ["family_id"])
    op.create_index("ix_idp_refresh_tokens_username", "idp_refresh_tokens", ["username"])
    op.create_index("ix_idp_refresh_tokens_sid", "idp_refresh_tokens", ["sid"])
    op.create_table(
        "idp_revocations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "idp_assertion_jtis",
        sa.Column("client_id", sa.String(128), primary_key=True),
        sa.Column("jti", sa.String(128), primary_key=True),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    for name in ("idp_assertion_jtis", "idp_revocations", "idp_refresh_tokens",
                 "idp_authorization_codes", "idp_sessions"):
        op.drop_table(name)
