"""Records that no checkpoint signed in time: checkpoints deleted, or never written.

Hashes need no key: an insider with the database can delete every checkpoint,
re-hash every record (with ``ckpt`` 0) and rewrite the chain registry, and every
link holds again (found 2026-12-05, docs/seams.md). What cannot be forged without
the ``audit`` key is a checkpoint, and a writer signs one every
``audit_checkpoint_seconds`` (every chain's head, at the latest that long after a
record it wrote). So between two checkpoints that sign a chain's head, the chain's
records span at most that interval (plus the commit, the journal's indexing and the
clocks of several processes: ``SLACK_MS``). A stretch of records that no checkpoint
split although one record in it was written more than that after an earlier one
(forward in time: a clock stepped back does not count) means its checkpoints were
deleted, or never written. Legitimate states stay clean: the young log (its first
records before the first checkpoint is due), a gateway stopped for a week (its last
records were signed at ``close``, or, after a ``kill -9``, are the last few seconds
of its chain, signed by the next checkpoint any writer makes), a retention purge, a
writer that appends synchronously (the CLI: no timer; the first record at least the
interval after its last checkpoint makes it sign, so only a stretch's last record may
be late: one after it is needed), and
in journal mode the records a checkpoint missed because they were not indexed yet
(they wait, unsigned, for the writer's next records: written before the last
checkpoint that signed the head before them, they do not start a stretch).

Which of the two: an ``audit`` key the ring made (its kid carries the day it was
made, bound to its sealed private part) existed when the stretch began: a
checkpointer could sign and the log has none: TAMPERED. None existed (a log written
without keys, or the keys' rows deleted too): UNANCHORED, consistent but vouched
for by nothing signed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from audit.chain import Problem, at_record
from texts import Text

SLACK_MS = 300_000  # commit, indexing and clock differences between processes

KeyBefore = Callable[[int], "str | None"]  # an audit key the ring made by this time (ms)


@dataclass
class Stretch:
    """The records of one chain between two checkpoints that sign its head."""

    cover: int  # index into the chain's signed heads (len: no checkpoint signs them yet)
    after: int | None  # the last checkpoint that signed the head before: its ts
    oldest_seq: int = 0
    oldest_ts: int | None = None  # of the records written after ``after``
    late: tuple[int, int, int, int] | None = None  # (seq, ts, later seq, later ts)
    last_late: tuple[int, int, int, int] | None = None  # the same, while it is the last


@dataclass
class Coverage:
    """Fed each record's chain, seq and ts (each chain's in ascending seq); ``findings``."""

    checkpoint_seconds: float
    # chain -> [(head seq signed, the first checkpoint that signed it: its seq and ts,
    # the ts of the last one that signed that same head)], in checkpoint order
    signed: dict[str, list[tuple[int, int, int, int]]] = field(default_factory=dict)
    _heads: dict[str, list[int]] = field(default_factory=dict)
    _open: dict[str, Stretch] = field(default_factory=dict)
    _late: list[tuple[str, Stretch]] = field(default_factory=list)

    @property
    def grace_ms(self) -> int:
        return int(self.checkpoint_seconds * 1000) + SLACK_MS

    def sign(self, chain_id: str, head_seq: int, cp_seq: int, cp_ts: int) -> None:
        """Checkpoint ``cp_seq`` signed ``chain_id``'s head at ``head_seq``."""
        heads = self.signed.setdefault(chain_id, [])
        if not heads or head_seq > heads[-1][0]:
            heads.append((head_seq, cp_seq, cp_ts, cp_ts))
        elif head_seq == heads[-1][0]:
            h, n, first_ts, last_ts = heads[-1]
            heads[-1] = (h, n, first_ts, max(last_ts, cp_ts))

    def feed(self, chain_id: str, seq: int, ts: int) -> None:
        heads = self._heads.get(chain_id)
        if heads is None:
            heads = self._heads[chain_id] = [h[0] for h in self.signed.get(chain_id, ())]
        st = self._open.get(chain_id)
        if st is None or (st.cover < len(heads) and seq > heads[st.cover]):
            cover = bisect_left(heads, seq)
            if st is not None and st.late is not None:
                self._late.append((chain_id, st))
            after = self.signed[chain_id][cover - 1][3] if cover else None
            st = self._open[chain_id] = Stretch(cover, after)
        if st.after is not None and ts <= st.after:
            return  # written before a checkpoint that missed it (journal mode: not indexed)
        if st.late is None and st.last_late is not None:
            st.late = st.last_late  # a record after it: not the one that made a sync writer sign
        if st.oldest_ts is None or ts < st.oldest_ts:
            st.oldest_seq, st.oldest_ts = seq, ts
        elif st.last_late is None and ts - st.oldest_ts > self.grace_ms:
            st.last_late = (st.oldest_seq, st.oldest_ts, seq, ts)

    def findings(self, key_before: KeyBefore | None
                 ) -> tuple[list[Problem], list[Problem]]:
        """(tampered, unanchored): one problem per stretch, oldest first per chain."""
        stretches = self._late + [(c, s) for c, s in self._open.items() if s.late is not None]
        tampered: list[Problem] = []
        unanchored: list[Problem] = []
        for chain_id, st in sorted(stretches, key=lambda cs: (cs[0], cs[1].cover)):
            assert st.late is not None
            seq, ts, later_seq, later_ts = st.late
            heads = self.signed.get(chain_id, [])
            first = (Text("audit.signed_late", "first signed by checkpoint {n} of {when}",
                          n=heads[st.cover][1], when=_when(heads[st.cover][2]))
                     if st.cover < len(heads) else
                     Text("audit.signed_never", "signed by no checkpoint"))
            kid = key_before(ts) if key_before is not None else None
            where = at_record(chain_id, seq)
            common = {"first": first, "later": later_seq,
                      "minutes": max(1, (later_ts - ts) // 60000),
                      "every": f"{self.checkpoint_seconds:g}"}
            if kid is not None:
                tampered.append(Problem("unsigned", where, Text(
                    "audit.checkpoints_deleted", "{first}, though seq {later} was written "
                    "{minutes} min after it, a checkpoint is due every {every} s and audit key "
                    "{kid} could sign: its checkpoints were deleted (or none could be written: "
                    "the gateway's log then says \"audit checkpoint failed\")",
                    kid=kid, **common)))
            else:
                unanchored.append(Problem("unanchored", where, Text(
                    "audit.checkpoints_never", "{first}, though seq {later} was written "
                    "{minutes} min after it and a checkpoint is due every {every} s; the key "
                    "ring holds no audit key made by then: the checkpointer never ran (a log "
                    "written without keys), or its keys and checkpoints were deleted: only a "
                    "copy held elsewhere (an export, the syslog receiver) tells",
                    **common)))
        return tampered, unanchored


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
