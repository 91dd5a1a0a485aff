"""The usage rollup (``audit_usage_daily``) recomputed from ``audit_records``.

The writer (and the journal's indexer) add to the rollup in the transaction that
stores the records; this rebuilds it after that went wrong: a restore of the records
without the rollup, migration 0025's back-fill (which left days whose records were
purged as ``unconfirmed``), a bug. Each day (UTC, as the rollup's) is one transaction:
its rows deleted and written again from its records, grouped in SQL (memory bounded by
one day's distinct groups, not its records). Running it twice changes nothing.

A day whose records were purged, wholly or in part (it begins before the last purge's
``--until``, the signed seal's ``until``), keeps its rows: they are all that is left of
those records. While a day is rebuilt no writer adds to the rollup (PostgreSQL: the
table locked against writers; SQLite: the transaction begins as a writer), so a record
committed meanwhile is counted once: by the rebuild, or by its writer after it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from audit.errors import AuditError
from audit.stats import check_days
from audit.tables import STATUS_CLASS, anchors, records, usage
from audit.verify import SEAL_EVENT
from texts import Text

DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
Key = tuple[str, str, str, str, str, str]  # system .. status_class, as the rollup's


@dataclass(frozen=True)
class DayRebuilt:
    day: str
    state: str  # rebuilt | unchanged | kept (records purged)
    before: int  # the rollup's count for the day before
    after: int


def day_number(day: str) -> int:
    return (date.fromisoformat(day) - EPOCH).days


def day_label(n: int) -> str:
    return (EPOCH + timedelta(days=n)).isoformat()


def purged_until(engine: sa.Engine) -> int | None:
    """The latest ``until`` (UTC ms) of the purges, or None: none ever. Fails closed: an
    anchor whose seal cannot be read raises (every day would otherwise look whole)."""
    with engine.connect() as conn:
        anchor = conn.execute(sa.select(anchors.c.seal_chain, anchors.c.seal_seq)
                              .order_by(anchors.c.created_at.desc()).limit(1)).first()
        if anchor is None:
            return None
        seals = {(r.chain_id, r.seq): r.extra for r in conn.execute(
            sa.select(records.c.chain_id, records.c.seq, records.c.extra)
            .where(records.c.event_type == SEAL_EVENT))}
    try:
        # the anchors' seal and any older one still held: a later purge with an earlier
        # --until does not make days whole again
        return max(int(json.loads(str(extra))["until"]) for extra in [
            seals[(anchor.seal_chain, anchor.seal_seq)], *seals.values()])
    except (TypeError, ValueError, KeyError):  # no seal, not JSON, no until
        raise AuditError(Text(
            "audit.rebuild_no_seal",
            "the last purge's seal ({chain}/{seq}) cannot be read: which days were purged "
            "is unknown; nothing rebuilt", chain=anchor.seal_chain,
            seq=anchor.seal_seq)) from None


def _days(engine: sa.Engine, since: str | None, until: str | None) -> range:
    check_days(since, until)
    with engine.connect() as conn:
        first, last = conn.execute(sa.select(sa.func.min(records.c.ts),
                                             sa.func.max(records.c.ts))).one()
        # without a bound: from the oldest record's day (or row's) to the newest's
        old_day, new_day = conn.execute(sa.select(sa.func.min(usage.c.day),
                                                  sa.func.max(usage.c.day))).one()
    lows = [n for n in (first // DAY_MS if first is not None else None,
                        day_number(old_day) if old_day else None) if n is not None]
    highs = [n for n in (last // DAY_MS if last is not None else None,
                         day_number(new_day) if new_day else None) if n is not None]
    start = day_number(since) if since else min(lows, default=0)
    end = day_number(until) if until else max(highs, default=-1)
    return range(start, end + 1)


def _counted(conn: sa.Connection, day: int) -> Counter[Key]:
    status = records.c.status
    stmt = (sa.select(records.c.system, records.c.resource, records.c.department,
                      records.c.event_type, records.c.outcome, status,
                      sa.func.count().label("n"))
            .where(records.c.ts >= day * DAY_MS, records.c.ts < (day + 1) * DAY_MS)
            .group_by(records.c.system, records.c.resource, records.c.department,
                      records.c.event_type, records.c.outcome, status))
    out: Counter[Key] = Counter()
    for r in conn.execute(stmt):
        # the writer's key (audit.writer): NULL and "" are both ""
        out[(r.system or "", r.resource or "", r.department or "", r.event_type, r.outcome,
             STATUS_CLASS.get(r.status, ""))] += int(r.n)
    return out


def _stored(conn: sa.Connection, label: str) -> Counter[Key]:
    rows = conn.execute(sa.select(usage.c.system, usage.c.resource, usage.c.department,
                                  usage.c.event_type, usage.c.outcome, usage.c.status_class,
                                  usage.c["count"]).where(usage.c.day == label))
    return Counter({tuple(r[:6]): int(r[6]) for r in rows})  # type: ignore[misc]


def rebuild_usage(engine: sa.Engine, *, since: str | None = None, until: str | None = None,
                  progress: Callable[[DayRebuilt], None] | None = None) -> list[DayRebuilt]:
    """Recompute the rollup's days ``since`` .. ``until`` (inclusive, UTC; by default
    every day with records or rows) from the records (module docstring)."""
    days = _days(engine, since, until)
    boundary = purged_until(engine)
    writer = engine.execution_options(govgate_write=True)
    postgres = engine.dialect.name == "postgresql"
    done: list[DayRebuilt] = []
    for day in days:
        label = day_label(day)
        with writer.begin() as conn:
            if postgres:  # writers wait (their ROW EXCLUSIVE conflicts), readers do not
                conn.execute(sa.text(f"LOCK TABLE {usage.name} IN SHARE ROW EXCLUSIVE MODE"))
            before = _stored(conn, label)
            if boundary is not None and day * DAY_MS < boundary:
                result = DayRebuilt(label, "kept", before.total(), before.total())
            else:
                after = _counted(conn, day)
                if after == before:
                    result = DayRebuilt(label, "unchanged", before.total(), after.total())
                else:
                    conn.execute(sa.delete(usage).where(usage.c.day == label))
                    if after:
                        conn.execute(sa.insert(usage), [_row(label, k, n) for k, n in
                                                        sorted(after.items())])
                    result = DayRebuilt(label, "rebuilt", before.total(), after.total())
        done.append(result)
        if progress is not None:
            progress(result)
    return done


def _row(day: str, key: Key, n: int) -> dict[str, Any]:
    system, resource, department, event_type, outcome, status_class = key
    return {"day": day, "system": system, "resource": resource, "department": department,
            "event_type": event_type, "outcome": outcome, "status_class": status_class,
            "count": n}
