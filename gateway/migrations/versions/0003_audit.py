"""audit: chains, records, checkpoints, purge anchors, daily usage figures

Revision ID: 0003_audit
Revises: 0002_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_audit"
down_revision = "0002_keys"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_chains",
        sa.Column("chain_id", sa.String(64), primary_key=True),
        sa.Column("hash_name", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("lease_token", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("head_seq", sa.BigInteger, nullable=False),
        sa.Column("head_hash", sa.String(128), nullable=False),
        sa.Column("last_ckpt", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_audit_chains_owner", "audit_chains", ["owner", "status"])

    op.create_table(
        "audit_records",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("prev_hash", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("ckpt", sa.BigInteger, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("actor_user", sa.String(128), nullable=True),
        sa.Column("actor_client", sa.String(128), nullable=True),
        sa.Column("department", sa.String(64), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=True),
        sa.Column("system", sa.String(64), nullable=True),
        sa.Column("resource", sa.String(128), nullable=True),
        sa.Column("items", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.BigInteger, nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("req_hash", sa.String(128), nullable=True),
        sa.Column("resp_hash", sa.String(128), nullable=True),
        sa.Column("extra", sa.Text, nullable=False),
        sa.UniqueConstraint("chain_id", "seq", name="uq_audit_records_chain_seq"),
    )
    for name, cols in (
        ("ts", ["ts", "id"]),
        ("event_type", ["event_type", "ts", "id"]),
        ("outcome", ["outcome", "ts", "id"]),
        ("actor_user", ["actor_user", "ts", "id"]),
        ("actor_client", ["actor_client", "ts", "id"]),
        ("department", ["department", "ts", "id"]),
        ("system", ["system", "ts", "id"]),
        ("resource", ["resource", "ts", "id"]),
        ("request_id", ["request_id"]),
    ):
        op.create_index(f"ix_audit_records_{name}", "audit_records", cols)

    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("prev_hash", sa.String(128), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("hash_name", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("kid", sa.String(128), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("writer", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_ts", "audit_checkpoints", ["ts"])

    op.create_table(
        "audit_anchors",
        sa.Column("chain_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("seal_chain", sa.String(64), nullable=False),
        sa.Column("seal_seq", sa.BigInteger, nullable=False),
        sa.Column("archive", sa.String(128), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )

    op.create_table(
        "audit_usage_daily",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(128), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("day", "system", "resource", "department", "event_type",
                                "outcome", name="pk_audit_usage_daily"),
    )
    op.create_index("ix_audit_usage_system", "audit_usage_daily", ["system", "day"])
    op.create_index("ix_audit_usage_resource", "audit_usage_daily", ["resource", "day"])
    op.create_index("ix_audit_usage_department", "audit_usage_daily", ["department", "day"])


def downgrade() -> None:
    for name in ("audit_usage_daily", "audit_anchors", "audit_checkpoints", "audit_records",
                 "audit_chains"):
        op.drop_table(name)
