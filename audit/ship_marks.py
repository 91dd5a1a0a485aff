"""Shipping watermarks kept in the database: per target and chain, the last ``seq`` a
receiver accepted (migration ``0021_audit_ship_marks`` mirrors the table).

A watermark only moves forward (``advance``): two shippers that race (``serve
--workers N`` on two hosts) may send a record twice, never skip one. The lag of a
target (:func:`lag`) is what is committed above its watermarks: records and the time
of the oldest, from the chains whose head is beyond the mark only (an index probe per
such chain, nothing for a chain that is caught up).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from audit.tables import chains, records

metadata = sa.MetaData()

marks = sa.Table(
    "audit_ship_marks",
    metadata,
    sa.Column("target", sa.String(64), primary_key=True),  # "syslog"
    sa.Column("chain_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),  # the last seq the target accepted
    sa.Column("updated_at", sa.BigInteger, nullable=False),  # UTC ms
)


@dataclass(frozen=True)
class Lag:
    records: int  # committed, not yet accepted by the target
    oldest_ts: int | None  # UTC ms of the oldest of them

    def seconds(self, now_ms: int) -> float:
        """How far behind the target is: the age of its oldest waiting record."""
        return 0.0 if self.oldest_ts is None else max(0.0, (now_ms - self.oldest_ts) / 1000)


def read_marks(conn: sa.Connection, target: str) -> dict[str, int]:
    """Chain id → the last ``seq`` the target accepted."""
    return {r.chain_id: int(r.seq) for r in conn.execute(
        sa.select(marks.c.chain_id, marks.c.seq).where(marks.c.target == target))}


def advance(engine: sa.Engine, target: str, heads: dict[str, int], now_ms: int) -> None:
    """Move the target's watermarks up to ``heads`` (never down)."""
    with engine.begin() as conn:
        known = read_marks(conn, target)
        for chain_id, seq in heads.items():
            if chain_id not in known:
                conn.execute(sa.insert(marks).values(target=target, chain_id=chain_id,
                                                     seq=seq, updated_at=now_ms))
            elif seq > known[chain_id]:
                conn.execute(sa.update(marks).where(
                    marks.c.target == target, marks.c.chain_id == chain_id,
                    marks.c.seq < seq).values(seq=seq, updated_at=now_ms))


def chain_heads(conn: sa.Connection) -> dict[str, int]:
    return {r.chain_id: int(r.head_seq) for r in conn.execute(
        sa.select(chains.c.chain_id, chains.c.head_seq))}


def lag_over(conn: sa.Connection, shipped: dict[str, int]) -> Lag:
    """What is committed above ``shipped`` (chain id → last seq shipped)."""
    waiting = 0
    oldest: int | None = None
    for chain_id, head in chain_heads(conn).items():
        done = shipped.get(chain_id, 0)
        if head <= done:
            continue
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.min(records.c.ts))
            .where(records.c.chain_id == chain_id, records.c.seq > done)).one()
        waiting += int(row[0])
        if row[1] is not None:
            oldest = int(row[1]) if oldest is None else min(oldest, int(row[1]))
    return Lag(waiting, oldest)


def lag(engine: sa.Engine, target: str) -> Lag:
    with engine.connect() as conn:
        return lag_over(conn, read_marks(conn, target))
