"""The WebAuthn tables (migration ``0021_webauthn``), on the gateway's metadata: a
credential belongs to a user and goes with the user."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.tables import metadata

webauthn_credentials = sa.Table(
    "webauthn_credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # base64url of the authenticator's credential id (at most 1023 bytes)
    sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),
    sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE, as registered
    sa.Column("sign_count", sa.BigInteger, nullable=False),
    sa.Column("transports", sa.String(200), nullable=False),  # comma-separated
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
)

# one row per ceremony under way: found by the keyed hash of the browser's ceremony
# cookie, taken (deleted) once, whatever its answer
webauthn_challenges = sa.Table(
    "webauthn_challenges",
    metadata,
    sa.Column("token_hash", sa.String(128), primary_key=True),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("sid", sa.String(64), nullable=True),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("challenge", sa.String(128), nullable=False),
    sa.Column("name", sa.String(64), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
