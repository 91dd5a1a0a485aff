"""The audit package's tables (its own MetaData; migration 0003_audit mirrors it)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

chains = sa.Table(
    "audit_chains",
    metadata,
    sa.Column("chain_id", sa.String(64), primary_key=True),
    sa.Column("hash_name", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),  # the writer id that claimed it
    sa.Column("lease_token", sa.String(64), nullable=False),  # the live writer instance
    sa.Column("lease_until", sa.BigInteger, nullable=False),  # UTC ms; 0 = released
    sa.Column("head_seq", sa.BigInteger, nullable=False),
    sa.Column("head_hash", sa.String(128), nullable=False),
    sa.Column("last_ckpt", sa.BigInteger, nullable=False),  # newest checkpoint it wrote
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | closed
    sa.Index("ix_audit_chains_owner", "owner", "status"),
)

# Columns that many records leave empty (a client-credentials token has no user, an
# IdP event no system, only catalogue access has a resource) are indexed only where
# set: every index costs each append (measured: the writer's CPU per record fell by
# a third without the secondary indexes), and ``col = :value`` lets both SQLite and
# PostgreSQL use a partial index ``WHERE col IS NOT NULL``.
PARTIAL_INDEXED = ("actor_user", "actor_client", "system", "resource")
# and, in the migration only (its expression is each database's own JSON function):
# ``ix_audit_records_act_sub`` on the delegate ``extra.act.sub`` where there is one
# (0032_edges_act_sub_index, audit/act_sub.py)


def _partial(column: str) -> sa.Index:
    where = sa.text(f"{column} IS NOT NULL")
    return sa.Index(f"ix_audit_records_{column}", column, "ts", "id",
                    sqlite_where=where, postgresql_where=where)


records = sa.Table(
    "audit_records",
    metadata,
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
    sa.Column("items", sa.Text, nullable=False),  # canonical JSON text
    sa.Column("purpose", sa.Text, nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("status", sa.Integer, nullable=True),
    sa.Column("latency_ms", sa.BigInteger, nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Column("req_hash", sa.String(128), nullable=True),
    sa.Column("resp_hash", sa.String(128), nullable=True),
    sa.Column("extra", sa.Text, nullable=False),  # canonical JSON text
    sa.UniqueConstraint("chain_id", "seq", name="uq_audit_records_chain_seq"),
    sa.Index("ix_audit_records_ts", "ts", "id"),
    sa.Index("ix_audit_records_event_type", "event_type", "ts", "id"),
    sa.Index("ix_audit_records_outcome", "outcome", "ts", "id"),
    _partial("actor_user"),
    _partial("actor_client"),
    sa.Index("ix_audit_records_department", "department", "ts", "id"),
    _partial("system"),
    _partial("resource"),
    sa.Index("ix_audit_records_request_id", "request_id"),
)

checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("prev_hash", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(128), nullable=False),
    sa.Column("hash_name", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the canonical JSON that was signed
    sa.Column("kid", sa.String(128), nullable=False),
    sa.Column("signature", sa.Text, nullable=False),  # base64url
    sa.Column("writer", sa.String(64), nullable=False),  # the chain id of the writer
    sa.Index("ix_audit_checkpoints_ts", "ts"),
)

# one row per chain whose head was purged: where the remaining chain starts
anchors = sa.Table(
    "audit_anchors",
    metadata,
    sa.Column("chain_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),  # last purged seq
    sa.Column("hash", sa.String(128), nullable=False),  # its hash
    sa.Column("seal_chain", sa.String(64), nullable=False),  # the sealing record
    sa.Column("seal_seq", sa.BigInteger, nullable=False),
    sa.Column("archive", sa.String(128), nullable=False),  # manifest hash of the archive
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# a usage row's ``status_class``: the class of the status a record names ("2xx", "4xx"),
# "" for none (an event without a status; a row from before migration 0025 whose
# records were gone): a proxied call counts as delivered only below 400 (audit/stats.py)
STATUS_CLASS: dict[int | None, str] = {s: f"{s // 100}xx" for s in range(100, 600)}

# usage figures, maintained in the append transaction (no scans for the portal)
usage = sa.Table(
    "audit_usage_daily",
    metadata,
    sa.Column("day", sa.String(10), nullable=False),  # YYYY-MM-DD (UTC)
    sa.Column("system", sa.String(64), nullable=False),  # "" when none
    sa.Column("resource", sa.String(128), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status_class", sa.String(3), nullable=False, server_default=""),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("day", "system", "resource", "department", "event_type", "outcome",
                            "status_class", name="pk_audit_usage_daily"),
    sa.Index("ix_audit_usage_system", "system", "day"),
    sa.Index("ix_audit_usage_resource", "resource", "day"),
    sa.Index("ix_audit_usage_department", "department", "day"),
)
