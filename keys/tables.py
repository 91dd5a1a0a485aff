"""The tables ``keys`` owns (its own MetaData; migration 0002_keys mirrors it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Data keys (DEKs), wrapped by the master key. One active per profile; retired ones
# still open what they sealed. The id goes into every blob.
data_keys = sa.Table(
    "keys_data_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("profile", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # active | retired
    sa.Column("wrapped", sa.LargeBinary, nullable=False),
    sa.Column("master_key_id", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index(
    "uq_keys_data_keys_active",
    data_keys.c.profile,
    unique=True,
    sqlite_where=sa.text("state = 'active'"),
    postgresql_where=sa.text("state = 'active'"),
)

# Asymmetric signing keys; the private key is sealed by the envelope.
signing_keys = sa.Table(
    "keys_signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),
    sa.Column("key_use", sa.String(16), nullable=False),
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending|active|retired|destroyed
    sa.Column("private_blob", sa.LargeBinary, nullable=True),  # NULL once destroyed
    sa.Column("public_jwk", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Index(
    "uq_keys_signing_keys_active",
    signing_keys.c.key_use,
    unique=True,
    sqlite_where=sa.text("state = 'active'"),
    postgresql_where=sa.text("state = 'active'"),
)
sa.Index(
    "uq_keys_signing_keys_pending",
    signing_keys.c.key_use,
    unique=True,
    sqlite_where=sa.text("state = 'pending'"),
    postgresql_where=sa.text("state = 'pending'"),
)

# Small named secrets sealed by the envelope (the MAC root key).
sealed_secrets = sa.Table(
    "keys_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("blob", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
