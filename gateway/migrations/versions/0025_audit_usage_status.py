"""audit: the usage rollup knows the answer's class (``audit_usage_daily.status_class``,
mirrors audit/tables.py), so a proxied call the system answered 404 or 500 is not
counted as a delivery (audit/stats.py)

The column joins the primary key, so the table is rebuilt (the same on SQLite and
PostgreSQL; the rollup is not partitioned). Back-fill: each ``proxy_request`` row is
split by the class of the status its records name; what the records no longer cover
(purged behind an archive) and every other event's rows keep the class "" (not known:
an allowed proxied call of that part counts as ``unconfirmed``, never as delivered).

Revision ID: 0025_audit_usage_status
Revises: 0008_audit_partial_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0025_audit_usage_status"
# audit's tables, beside 0021_audit_partitions (it only reads the records, partitioned or
# not): the benchmark's one-table layout (0021 taken back) keeps it
down_revision = "0008_audit_partial_indexes"
branch_labels = None
depends_on = None

TABLE = "audit_usage_daily"
OLD = "audit_usage_daily_old"
INDEXES = (("ix_audit_usage_system", "system"), ("ix_audit_usage_resource", "resource"),
           ("ix_audit_usage_department", "department"))
KEYS = ("day", "system", "resource", "department", "event_type", "outcome")


def _set_aside() -> None:
    """Rename the table out of the way and free its key's and indexes' names."""
    op.rename_table(TABLE, OLD)
    for name, _ in INDEXES:
        op.drop_index(name, table_name=OLD)
    if op.get_bind().dialect.name == "postgresql":  # SQLite's key has no name of its own
        op.execute(f"ALTER TABLE {OLD} DROP CONSTRAINT pk_audit_usage_daily")


def _create(with_class: bool) -> None:
    extra = [sa.Column("status_class", sa.String(3), nullable=False, server_default="")
             ] if with_class else []
    op.create_table(
        TABLE,
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(128), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        *extra,
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(*KEYS, *(["status_class"] if with_class else []),
                                name="pk_audit_usage_daily"),
    )
    for name, column in INDEXES:
        op.create_index(name, TABLE, [column, "day"])


def _day_sql(dialect: str) -> str:
    # the writer's day: the UTC day of ts (ms), YYYY-MM-DD
    if dialect == "postgresql":
        return "to_char(to_timestamp(ts / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    return "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')"


CLASS_SQL = ("CASE WHEN status >= 100 AND status < 600 "
             "THEN CAST(status / 100 AS VARCHAR(1)) || 'xx' ELSE '' END")
COLUMNS = ", ".join((*KEYS, "status_class", "count"))
ON = " AND ".join(f"o.{k} = k.{k}" for k in KEYS)
GROUPED = ", ".join(KEYS)


def upgrade() -> None:
    _set_aside()
    _create(with_class=True)
    day = _day_sql(op.get_bind().dialect.name)
    # (every name in these statements is a constant of this module)
    # what the records tell, class by class
    op.execute(
        f"INSERT INTO {TABLE} ({COLUMNS}) "  # noqa: S608
        f"SELECT {day}, COALESCE(system, ''), COALESCE(resource, ''), "
        f"COALESCE(department, ''), event_type, outcome, {CLASS_SQL}, COUNT(*) "
        "FROM audit_records WHERE event_type = 'proxy_request' "
        "GROUP BY 1, 2, 3, 4, 5, 6, 7")
    # the rest of each old row: no record tells its class
    op.execute(
        f"INSERT INTO {TABLE} ({COLUMNS}) "  # noqa: S608
        f"SELECT {', '.join('o.' + k for k in KEYS)}, '', o.count - COALESCE(k.n, 0) "
        f"FROM {OLD} o LEFT JOIN (SELECT {GROUPED}, SUM(count) AS n FROM {TABLE} "
        f"GROUP BY {GROUPED}) k ON {ON} "
        "WHERE o.count > COALESCE(k.n, 0) "
        f"ON CONFLICT ({', '.join(KEYS)}, status_class) "
        f"DO UPDATE SET count = {TABLE}.count + excluded.count")
    op.drop_table(OLD)


def downgrade() -> None:
    _set_aside()
    _create(with_class=False)
    op.execute(f"INSERT INTO {TABLE} ({GROUPED}, count) "  # noqa: S608
               f"SELECT {GROUPED}, SUM(count) FROM {OLD} GROUP BY {GROUPED}")
    op.drop_table(OLD)
