"""keys: data keys, signing keys, sealed secrets (mirrors keys/tables.py)

Revision ID: 0002_keys
Revises: 0001_organisation
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_keys"
down_revision = "0001_organisation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keys_data_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("profile", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("wrapped", sa.LargeBinary, nullable=False),
        sa.Column("master_key_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_keys_data_keys_active", "keys_data_keys", ["profile"], unique=True,
        sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "keys_signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("key_use", sa.String(16), nullable=False),
        sa.Column("alg", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("private_blob", sa.LargeBinary, nullable=True),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "uq_keys_signing_keys_active", "keys_signing_keys", ["key_use"], unique=True,
        sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'"),
    )
    op.create_index(
        "uq_keys_signing_keys_pending", "keys_signing_keys", ["key_use"], unique=True,
        sqlite_where=sa.text("state = 'pending'"),
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.create_table(
        "keys_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("blob", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_index("uq_keys_signing_keys_pending", table_name="keys_signing_keys")
    op.drop_index("uq_keys_signing_keys_active", table_name="keys_signing_keys")
    op.drop_index("uq_keys_data_keys_active", table_name="keys_data_keys")
    for name in ("keys_secrets", "keys_signing_keys", "keys_data_keys"):
        op.drop_table(name)
