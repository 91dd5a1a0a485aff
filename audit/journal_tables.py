"""The journal's watermarks (migration 0021_audit_journal mirrors it).

One row per segment file: how far the indexer loaded it (``offset``, the byte after
the last loaded frame, and ``last_seq``), and when it was removed (loaded and covered
by a checkpoint). ``audit verify`` compares the journal with the tables up to here.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

segments = sa.Table(
    "audit_journal_segments",
    metadata,
    sa.Column("chain_id", sa.String(64), primary_key=True),
    sa.Column("first_seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("removed_at", sa.BigInteger, nullable=True),  # UTC ms; NULL: still on disk
)
