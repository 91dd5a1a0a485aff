"""Monthly partitions of ``audit_records`` on PostgreSQL (migration 0021_audit_partitions).

On PostgreSQL the table is ``PARTITION BY RANGE (ts)``: one partition per UTC
calendar month, named ``audit_records_pYYYYMM`` and holding ``[first ms of the
month, first ms of the next)``, and a DEFAULT partition (``audit_records_default``)
so that an insert never fails for want of a month. SQLite keeps one table and every
function here answers "nothing to do" there.

:func:`ensure_partitions` creates the current month and the next ones ahead, and any
month that has rows in the DEFAULT partition, moving those rows into it (the served
gateway calls it from its maintenance round; ``govgate audit partitions --ensure``).
:func:`drop_covered` is the purge's fast path: a month wholly older than the purge
bound, every row of which the row-wise purge would delete, is dropped whole.

The writer, the indexer and the queries keep using the table by its name: the
partitions are PostgreSQL's business. The primary key is ``(id, ts)`` and the unique
key ``(chain_id, seq, ts)`` because PostgreSQL requires the partition key in both.
``(chain_id, seq, ts)`` alone would let a second row with the same chain and seq but
another ``ts`` in; what still stops it: one writer holds a chain's lease and numbers
its records from the head it compare-and-sets in ``audit_chains`` in the same
transaction, and if such a row got in anyway, :func:`audit.verify.verify_database`
reports the repeated seq (each seq must link to the hash before it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

TABLE = "audit_records"
DEFAULT = f"{TABLE}_default"
AHEAD = 3  # months created ahead of the current one
_BOUNDS = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


@dataclass(frozen=True)
class Partition:
    name: str
    lower: int | None  # UTC ms, inclusive; None for the DEFAULT partition
    upper: int | None  # UTC ms, exclusive

    @property
    def month(self) -> str:
        """``YYYY-MM``, or ``default``."""
        if self.lower is None:
            return "default"
        return datetime.fromtimestamp(self.lower / 1000, UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class Ensured:
    created: tuple[str, ...] = ()
    moved: int = 0  # rows moved out of the DEFAULT partition


@dataclass
class Dropped:
    partitions: list[str] = field(default_factory=list)
    records: int = 0


def month_start(ms: int) -> int:
    """The first millisecond (UTC) of the month ``ms`` falls in."""
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1000)


def next_month(start: int) -> int:
    d = datetime.fromtimestamp(start / 1000, UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def partition_name(start: int) -> str:
    return f"{TABLE}_p" + datetime.fromtimestamp(start / 1000, UTC).strftime("%Y%m")


def is_partitioned(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.exec_driver_sql(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = %(t)s AND pg_table_is_visible(c.oid)", {"t": TABLE}).first())


def partitions(conn: sa.Connection) -> list[Partition]:
    """The partitions of ``audit_records`` by month, the DEFAULT one last; [] on SQLite."""
    if not is_partitioned(conn):
        return []
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE p.relname = %(t)s AND pg_table_is_visible(p.oid)", {"t": TABLE}).fetchall()
    out = []
    for name, bound in rows:
        m = _BOUNDS.search(bound or "")
        out.append(Partition(name, int(m[1]), int(m[2])) if m else Partition(name, None, None))
    return sorted(out, key=lambda p: (p.lower is None, p.lower or 0))


def _months_in_default(conn: sa.Connection) -> set[int]:
    # UTC month starts in ms, as month_start computes them; table names here are ours,
    # never input
    rows = conn.exec_driver_sql(
        "SELECT DISTINCT (extract(epoch FROM date_trunc('month', "  # noqa: S608
        f"to_timestamp(ts / 1000.0) AT TIME ZONE 'UTC')) * 1000)::bigint FROM {DEFAULT}")
    return {int(r[0]) for r in rows}


def ensure_partitions(engine: sa.Engine, now_ms: int, *, ahead: int = AHEAD) -> Ensured:
    """Create the month of ``now_ms`` and ``ahead`` months after it, and every month
    that has rows in the DEFAULT partition (moving them in); nothing on SQLite."""
    with engine.connect() as conn:
        if not is_partitioned(conn):
            return Ensured()
        have = {p.lower for p in partitions(conn)}
        wanted = _months_in_default(conn)
    start = month_start(now_ms)
    for _ in range(ahead + 1):
        wanted.add(start)
        start = next_month(start)
    created: list[str] = []
    moved = 0
    for lower in sorted(wanted - have):
        with engine.begin() as conn:
            moved += _create_month(conn, lower)
        created.append(partition_name(lower))
    return Ensured(tuple(created), moved)


def _create_month(conn: sa.Connection, lower: int) -> int:
    """One month's partition, its rows taken out of DEFAULT first (PostgreSQL refuses a
    partition whose range DEFAULT still holds rows of); returns the rows moved."""
    upper, name = next_month(lower), partition_name(lower)
    # no insert may land in DEFAULT for this month until the partition exists
    conn.exec_driver_sql(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
    if conn.exec_driver_sql("SELECT to_regclass(%(n)s)", {"n": name}).scalar_one():
        return 0  # made by another process meanwhile
    rng = {"lo": lower, "hi": upper}
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE moved_records (LIKE {TABLE}) ON COMMIT DROP")
    moved = conn.exec_driver_sql(
        f"WITH gone AS (DELETE FROM {DEFAULT} WHERE ts >= %(lo)s AND ts < %(hi)s "  # noqa: S608
        "RETURNING *) INSERT INTO moved_records SELECT * FROM gone", rng).rowcount
    conn.exec_driver_sql(f"CREATE TABLE {name} PARTITION OF {TABLE} "
                         f"FOR VALUES FROM ({lower}) TO ({upper})")
    if moved:
        conn.exec_driver_sql(f"INSERT INTO {TABLE} SELECT * FROM moved_records")  # noqa: S608
    return moved


def drop_covered(conn: sa.Connection, until: int, ends: Mapping[str, int]) -> Dropped:
    """Drop every month partition wholly older than ``until`` whose rows all lie within
    ``ends`` (chain -> last seq the purge deletes): exactly what the row-wise purge
    would delete, in one statement each. Runs inside the purge's transaction."""
    dropped = Dropped()
    if not ends or not is_partitioned(conn):
        return dropped
    params: dict[str, object] = {}
    covered = []
    for i, (chain_id, end) in enumerate(sorted(ends.items())):
        params[f"c{i}"], params[f"e{i}"] = chain_id, end
        covered.append(f"(chain_id = %(c{i})s AND seq <= %(e{i})s)")
    outside = " OR ".join(covered)
    for p in partitions(conn):
        if p.upper is None or p.upper > until:
            continue
        stray = conn.exec_driver_sql(
            f"SELECT 1 FROM {p.name} WHERE NOT ({outside}) LIMIT 1", params).first()  # noqa: S608
        if stray:
            continue  # rows the purge keeps: this month goes row by row
        dropped.records += conn.exec_driver_sql(f"SELECT count(*) FROM {p.name}").scalar_one()  # noqa: S608
        conn.exec_driver_sql(f"DROP TABLE {p.name}")
        dropped.partitions.append(p.name)
    return dropped
