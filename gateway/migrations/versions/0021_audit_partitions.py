"""audit: on PostgreSQL, audit_records partitioned by month of ts (audit/partitions.py)

The table keeps its name, columns, id sequence and index names; its rows move into
one partition per UTC month present, the current month and the three after it get
theirs, and a DEFAULT partition takes whatever no month holds. PostgreSQL wants the
partition key in every unique key: the primary key becomes (id, ts) and
uq_audit_records_chain_seq (chain_id, seq, ts) (why that is enough: audit/partitions.py).
SQLite keeps one table: nothing changes there.

Revision ID: 0021_audit_partitions
Revises: 0008_audit_partial_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_audit_partitions"
down_revision = "0008_audit_partial_indexes"
branch_labels = None
depends_on = None

INDEXES = (
    ("ts", ["ts", "id"], False),
    ("event_type", ["event_type", "ts", "id"], False),
    ("outcome", ["outcome", "ts", "id"], False),
    ("actor_user", ["actor_user", "ts", "id"], True),
    ("actor_client", ["actor_client", "ts", "id"], True),
    ("department", ["department", "ts", "id"], False),
    ("system", ["system", "ts", "id"], True),
    ("resource", ["resource", "ts", "id"], True),
    ("request_id", ["request_id"], False),
)

# (name, first ms, first ms of the next month) of every UTC month with rows in the old
# table, and of this month and the three after it
MONTHS = """
WITH m AS (
  SELECT DISTINCT date_trunc('month', to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC') AS s
    FROM audit_records_old
  UNION
  SELECT generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'),
                         date_trunc('month', now() AT TIME ZONE 'UTC') + interval '3 months',
                         interval '1 month'))
SELECT 'audit_records_p' || to_char(s, 'YYYYMM'),
       (extract(epoch FROM s) * 1000)::bigint,
       (extract(epoch FROM s + interval '1 month') * 1000)::bigint
  FROM m ORDER BY 2
"""


def _set_aside() -> str:
    """Rename audit_records to audit_records_old and free its constraint and index
    names; returns its id sequence, which stays."""
    seq = op.get_bind().exec_driver_sql(
        "SELECT pg_get_serial_sequence('audit_records', 'id')").scalar_one()
    op.execute("ALTER TABLE audit_records RENAME TO audit_records_old")
    op.execute("ALTER TABLE audit_records_old DROP CONSTRAINT audit_records_pkey")
    op.execute("ALTER TABLE audit_records_old DROP CONSTRAINT uq_audit_records_chain_seq")
    for name, _, _ in INDEXES:
        op.execute(f"DROP INDEX ix_audit_records_{name}")
    return str(seq)


def _take_over(seq: str, key: str, unique: str) -> None:
    """Copy the rows of audit_records_old into the new audit_records, drop the old
    one, then build the keys and indexes (faster once than row by row)."""
    op.execute(f"ALTER SEQUENCE {seq} OWNED BY audit_records.id")
    op.execute("INSERT INTO audit_records SELECT * FROM audit_records_old")
    op.execute("DROP TABLE audit_records_old")
    op.execute(f"ALTER TABLE audit_records ADD CONSTRAINT audit_records_pkey PRIMARY KEY ({key})")
    op.execute(f"ALTER TABLE audit_records ADD CONSTRAINT uq_audit_records_chain_seq "
               f"UNIQUE ({unique})")
    for name, cols, partial in INDEXES:
        where = sa.text(f"{name} IS NOT NULL") if partial else None
        op.create_index(f"ix_audit_records_{name}", "audit_records", cols,
                        postgresql_where=where)
    op.execute("ANALYZE audit_records")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    seq = _set_aside()
    op.execute("CREATE TABLE audit_records (LIKE audit_records_old INCLUDING DEFAULTS) "
               "PARTITION BY RANGE (ts)")
    for name, lower, upper in op.get_bind().exec_driver_sql(MONTHS).fetchall():
        op.execute(f"CREATE TABLE {name} PARTITION OF audit_records "
                   f"FOR VALUES FROM ({lower}) TO ({upper})")
    op.execute("CREATE TABLE audit_records_default PARTITION OF audit_records DEFAULT")
    _take_over(seq, "id, ts", "chain_id, seq, ts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    seq = _set_aside()  # the partitions go with it
    op.execute("CREATE TABLE audit_records (LIKE audit_records_old INCLUDING DEFAULTS)")
    _take_over(seq, "id", "chain_id, seq")
