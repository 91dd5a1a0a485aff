"""The journal checked on its own and against the tables (``govgate audit verify``).

For each chain directory: the frames link up (hashes recomputed, seq without gaps,
each ``prev`` the hash before it), every frame up to the segment's watermark is in
``audit_records`` and identical, and no record of the chain in the table from the
journal's first seq on is missing from the journal (records purged behind an archive
excepted). Frames past the watermark are
not loaded yet; those that are already in the table must be identical too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from audit.chain import I_SEQ, RECORD_COLUMNS, ChainChecker, Problem, at_record
from audit.journal import Journal, hides_frames, read_frames, segment_seq
from audit.journal_tables import segments
from audit.tables import anchors, chains, records
from texts import Text, os_reason


@dataclass
class JournalReport:
    chains: int = 0
    frames: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_journal(engine: sa.Engine, journal: Journal) -> JournalReport:
    rep = JournalReport()
    with engine.connect() as conn:
        for chain_id in journal.chain_ids():
            paths = journal.segments(chain_id)
            if not paths:
                continue
            rep.chains += 1
            for _attempt in range(3):
                try:
                    problem = _chain(conn, journal, chain_id, rep)
                    break
                except OSError as exc:  # reported, never a crash
                    problem = Problem("damaged", Text("audit.at_chain", "chain {chain}",
                                                      chain=chain_id),
                                      Text("audit.journal_unreadable", "its journal cannot be "
                                           "read: {detail}", detail=os_reason(exc)))
                    if not isinstance(exc, FileNotFoundError):
                        break
                    # the indexer removed a loaded segment meanwhile: again
            if problem is not None:
                rep.problems.append(problem)
    return rep


def _chain(conn: sa.Connection, journal: Journal, chain_id: str, rep: JournalReport
           ) -> Problem | None:
    hash_name = conn.execute(sa.select(chains.c.hash_name)
                             .where(chains.c.chain_id == chain_id)).scalar()
    paths = journal.segments(chain_id)
    if hash_name is None:
        return Problem("inserted", at_record(chain_id, segment_seq(paths[0])), Text(
            "audit.journal_unknown_chain", "a journal of a chain the database does not know"))
    marks = {r.first_seq: r.offset for r in conn.execute(
        sa.select(segments.c.first_seq, segments.c.offset)
        .where(segments.c.chain_id == chain_id))}
    first = segment_seq(paths[0])
    # records purged behind a verified archive are gone from the table, not missing
    purged = conn.execute(sa.select(anchors.c.seq)
                          .where(anchors.c.chain_id == chain_id)).scalar() or 0
    checker = ChainChecker(chain_id, hash_name, anchor_seq=first - 1, trust_first=first > 1)
    # the table's rows as they are now: each was in the journal before it was loaded,
    # while rows loaded after this are of frames that may be read or not below
    until = conn.execute(sa.select(sa.func.max(records.c.seq))
                         .where(records.c.chain_id == chain_id)).scalar() or 0
    if first > max(until, purged) + 1:
        # segments are removed only once loaded: the journal continues the table
        return Problem("missing", at_record(chain_id, max(until, purged) + 1), Text(
            "audit.journal_gap", "records seq {first}..{last} are neither in the table nor "
            "in the journal (a segment not yet loaded was deleted)",
            first=max(until, purged) + 1, last=first - 1))
    table = _table_rows(conn, chain_id, first, until)
    stored = next(table, None)
    for path in paths:
        mark = marks.get(segment_seq(path), 0)
        end = 0
        for end, row in read_frames(path):
            rep.frames += 1
            problem = checker.feed(row)
            if problem is not None:
                return problem
            seq = row[I_SEQ]
            if stored is not None and stored[I_SEQ] < seq:
                return _not_in_journal(chain_id, stored[I_SEQ])
            if stored is not None and stored[I_SEQ] == seq:
                if tuple(stored) != row:
                    return Problem("changed", at_record(chain_id, seq), Text(
                        "audit.journal_differs",
                        "the table's record differs from the journal's"))
                stored = next(table, None)
            elif end <= mark and seq > purged:
                return Problem("missing", at_record(chain_id, seq), Text(
                    "audit.journal_not_loaded",
                    "in the journal below its watermark but not in the table"))
        if end < path.stat().st_size and (path != paths[-1] or
                                          hides_frames(path, end, chain_id)):
            # a crash cuts only the newest segment's last write: this was damaged after
            return Problem("changed", at_record(chain_id, checker.head_seq + 1), Text(
                "audit.journal_damaged", "the frame at byte {offset} of {file} is damaged "
                "and records follow it (edited in the journal)", offset=end, file=path.name))
    if stored is not None:
        return _not_in_journal(chain_id, stored[I_SEQ])
    return None


def _not_in_journal(chain_id: str, seq: Any) -> Problem:
    return Problem("inserted", at_record(chain_id, seq), Text(
        "audit.journal_missing", "in the table but not in the journal"))


def _table_rows(conn: sa.Connection, chain_id: str, first: int, until: int
                ) -> Iterator[tuple[Any, ...]]:
    cols = [records.c[c] for c in RECORD_COLUMNS]
    last = first - 1
    while True:
        page = conn.execute(sa.select(*cols).where(records.c.chain_id == chain_id,
                                                   records.c.seq > last,
                                                   records.c.seq <= until)
                            .order_by(records.c.seq).limit(5000)).fetchall()
        if not page:
            return
        for r in page:
            yield tuple(r)
        last = page[-1][I_SEQ]
