"""One record's place in its chain, for an auditor looking at it.

``record_position`` reads the record, recomputes its hash, and looks at its
neighbours and the first signed checkpoint that covers it:

    writer        the chain's owner (the writer id) and its hash
    hash_ok       the stored hash is the hash of the stored fields
    prev_ok       the record before it in the chain has the hash this one links to
                  (None for the first record, or when that record was purged)
    next_ok       the record after it links to this one's hash (None: the chain's head)
    checkpoint    the first checkpoint that signed a head at or after this record

This is a look at one record, not a verification of the log: ``audit.verify``
checks every record, link and signature.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from audit.chain import hash_function, record_payload
from audit.query import row_dict
from audit.tables import chains, checkpoints, records

# checkpoints read while looking for the one that covers a record
CHECKPOINT_SCAN = 200


@dataclass(frozen=True)
class Neighbour:
    id: int
    seq: int
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Position:
    record: dict[str, Any]  # query.row_dict of the record
    writer: str  # the chain's owner
    hash_name: str
    hash_ok: bool
    previous: Neighbour | None
    prev_ok: bool | None
    next: Neighbour | None
    next_ok: bool | None
    checkpoint: dict[str, Any] | None  # seq, ts, kid, head_seq, writer

    def to_dict(self) -> dict[str, Any]:
        def n(x: Neighbour | None) -> dict[str, Any] | None:
            return None if x is None else x.__dict__.copy()

        return {"record": self.record, "writer": self.writer, "hash_name": self.hash_name,
                "hash_ok": self.hash_ok, "previous": n(self.previous),
                "prev_ok": self.prev_ok, "next": n(self.next), "next_ok": self.next_ok,
                "checkpoint": self.checkpoint}


def _neighbour(conn: sa.Connection, chain_id: str, seq: int) -> Neighbour | None:
    row = conn.execute(sa.select(records.c.id, records.c.seq, records.c.hash,
                                 records.c.prev_hash)
                       .where(records.c.chain_id == chain_id, records.c.seq == seq)).first()
    return None if row is None else Neighbour(int(row.id), int(row.seq), str(row.hash),
                                               str(row.prev_hash))


def _covering_checkpoint(conn: sa.Connection, chain_id: str, seq: int, seen: int
                         ) -> dict[str, Any] | None:
    """The first checkpoint after ``seen`` (the newest the writer had seen when it
    wrote the record, so none before covers it) whose head of the chain is at ``seq``
    or later."""
    rows = conn.execute(sa.select(checkpoints.c.seq, checkpoints.c.ts, checkpoints.c.kid,
                                  checkpoints.c.payload, checkpoints.c.writer)
                        .where(checkpoints.c.seq > seen).order_by(checkpoints.c.seq)
                        .limit(CHECKPOINT_SCAN))
    for row in rows:
        try:
            head = json.loads(row.payload).get("heads", {}).get(chain_id)
            head_seq = int(head["seq"]) if head else 0
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a damaged checkpoint covers nothing; verification reports it
        if head_seq >= seq:
            return {"seq": int(row.seq), "ts": int(row.ts), "kid": row.kid,
                    "head_seq": head_seq, "writer": row.writer}
    return None


def record_position(engine: sa.Engine, record_id: int) -> Position | None:
    """The record with ``record_id`` and its place in its chain, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(records).where(records.c.id == record_id)).first()
        if row is None:
            return None
        raw = dict(row._mapping)
        chain = conn.execute(sa.select(chains.c.owner, chains.c.hash_name)
                             .where(chains.c.chain_id == raw["chain_id"])).first()
        hash_name = chain.hash_name if chain is not None else "sha256"
        try:
            digest = hash_function(hash_name)(record_payload(raw)).hex()
            hash_ok = hmac.compare_digest(digest, str(raw["hash"]))
        except (TypeError, ValueError):
            hash_ok = False
        seq = int(raw["seq"])
        previous = _neighbour(conn, raw["chain_id"], seq - 1) if seq > 1 else None
        after = _neighbour(conn, raw["chain_id"], seq + 1)
        checkpoint = _covering_checkpoint(conn, raw["chain_id"], seq, int(raw["ckpt"]))
    prev_ok = (hmac.compare_digest(previous.hash, str(raw["prev_hash"]))
               if previous is not None else None)
    next_ok = (hmac.compare_digest(after.prev_hash, str(raw["hash"]))
               if after is not None else None)
    return Position(record=row_dict(row), writer=chain.owner if chain is not None else "",
                    hash_name=hash_name, hash_ok=hash_ok, previous=previous,
                    prev_ok=prev_ok, next=after, next_ok=next_ok, checkpoint=checkpoint)
