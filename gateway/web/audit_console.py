"""What the auditor console does, for its API (``gateway.web.api.audit``) and its pages
(``gateway.web.portal.audit_pages``) alike: who may, exports, verification, checkpoints.

Only the audit administrator (``auditor``, 审计管理员) reads the log (三员分立).
Every read, export and verification is itself appended to the log before its answer
leaves, refusals included (``audit_query``, ``audit_export``, ``audit_verify``).

An export holds the records of a filter (its time range and every other filter; not
its page: ``limit`` and ``cursor`` are ignored) up to the newest record when it began
(``audit.query.newest_id``), so the count its audit record states is the number of
records written, however many are appended meanwhile. At most ``MAX_EXPORT``
records: a wider filter is refused with the number it matched.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from audit import AuditQueryError
from audit.checkpoints import Checkpoint, list_checkpoints, signature_ok
from audit.export import CSV_COLUMNS
from audit.journal import Journal
from audit.journal_verify import verify_journal
from audit.key_trust import TrustedKids
from audit.query import (
    MAX_SQL_INT,
    QueryFilter,
    count_matching,
    iter_matching,
    newest_id,
    parse_filters,
    parse_time,
)
from audit.spreadsheet import SafeWriter
from audit.tables import records
from audit.verify import VerifyReport, keyservice_sigcheck, verify_database
from gateway.department_scope import reach as department_reach
from gateway.tables import systems
from texts import Text

AUDITOR = "auditor"
MAX_EXPORT = 100_000
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json",
                "jsonl": "application/x-ndjson"}
EXPORT_COLUMNS = ("id", *CSV_COLUMNS, "prev_hash")
# a page's parameters an export does not take from the current filter
PAGE_ONLY = ("limit", "cursor", "lang")


def is_auditor(principal: Any) -> bool:
    return AUDITOR in set(getattr(principal, "roles", ()) or ())


#: why a department's auditor is refused what covers every department's records
PROVINCE_ONLY = Text("audit.province_auditor",
                     "verifying the log, its checkpoints and its figures cover every "
                     "department's records: a province-level audit administrator's; a "
                     "department's reads its departments' records")


@dataclass(frozen=True)
class Reach:
    """The records an auditor reads: those of a department in ``departments`` (the
    actor's) or about a system in ``systems``; both None: every record."""

    departments: frozenset[str] | None = None
    systems: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.departments is None and self.systems is None

    def within(self, f: QueryFilter) -> QueryFilter:
        """``f`` cut to this reach."""
        return f if self.everything else replace(f, departments=self.departments,
                                                 systems=self.systems)

    def holds(self, record: Mapping[str, Any]) -> bool:
        return self.everything or (record.get("department") in (self.departments or ())
                                   or record.get("system") in (self.systems or ()))


def log_reach(engine: sa.Engine, principal: Any) -> Reach:
    """What an auditor reads (docs/auditor-console.md, "Who reads what"): at province
    level every record; a department's auditor the records of that department and
    those below it (the actor's department), and every record about their systems (who
    used their data, from whichever department)."""
    covered = department_reach(engine, getattr(principal, "department", None))
    if covered is None:
        return Reach()
    with engine.connect() as conn:
        owned = frozenset(conn.execute(sa.select(systems.c.code).where(
            systems.c.department_code.in_(sorted(covered)))).scalars()) \
            if covered else frozenset()
    return Reach(covered, owned)


class TooManyRecords(AuditQueryError):
    """The filter matches more records than one export holds."""

    def __init__(self, count: int) -> None:
        super().__init__("until", Text(
            "audit.export_too_many",
            "the filter matches {count} records; an export holds at most {limit}: "
            "narrow the time range or add a filter", count=count, limit=MAX_EXPORT))
        self.count = count


@dataclass(frozen=True)
class Export:
    filter: QueryFilter
    format: str
    upto_id: int
    count: int
    started: str  # ISO time

    @property
    def media_type(self) -> str:
        return EXPORT_TYPES[self.format]

    def filename(self) -> str:
        stamp = self.started.replace(":", "").replace("-", "")[:15]
        return f"audit-{stamp}.{self.format}"

    def audit_extra(self) -> dict[str, Any]:
        return {"filters": self.filter.as_dict(), "format": self.format, "records": self.count,
                "upto_id": self.upto_id}


def prepare_export(engine: sa.Engine, params: Mapping[str, str], now: datetime,
                   reach: Reach | None = None) -> Export:
    """The export of ``params`` (filters and ``format``) within ``reach`` (None: every
    record): checked, counted, fixed."""
    fmt = params.get("format") or "csv"
    if fmt not in EXPORT_TYPES:
        raise AuditQueryError("format", Text("audit.not_one_of", "{value!r} is not one of {known}",
                                             value=fmt, known=", ".join(EXPORT_TYPES)))
    f = parse_filters({k: v for k, v in params.items()
                       if k != "format" and k not in PAGE_ONLY})
    if reach is not None:
        f = reach.within(f)
    upto = newest_id(engine)
    count = count_matching(engine, f, upto)
    if count > MAX_EXPORT:
        raise TooManyRecords(count)
    return Export(f, fmt, upto, count, now.astimezone(UTC).isoformat(timespec="seconds"))


def export_chunks(engine: sa.Engine, export: Export) -> Iterator[bytes]:
    """The export's file, a batch of records at a time (UTF-8; CSV with a BOM so that a
    spreadsheet reads the Chinese; every cell formula-safe, ``audit.spreadsheet``)."""
    rows = iter_matching(engine, export.filter, export.upto_id)
    if export.format == "csv":
        yield from _csv(rows)
    elif export.format == "jsonl":
        for row in rows:
            yield (json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode()
    else:
        head = {"exported_at": export.started, "filters": export.filter.as_dict(),
                "count": export.count}
        yield (json.dumps(head, ensure_ascii=False, sort_keys=True)[:-1]
               + ', "records": [').encode()
        for n, row in enumerate(rows):
            yield (("," if n else "") + "\n"
                   + json.dumps(row, ensure_ascii=False, sort_keys=True)).encode()
        yield b"\n]}\n"


def _csv(rows: Iterator[dict[str, Any]], batch: int = 500) -> Iterator[bytes]:
    out = io.StringIO()
    out.write("\ufeff")
    writer = SafeWriter(out)
    writer.writerow(EXPORT_COLUMNS)
    for n, row in enumerate(rows, 1):
        writer.writerow(row.get(c) for c in EXPORT_COLUMNS)
        if n % batch == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


# -- verification -------------------------------------------------------------------------


def parse_range(params: Mapping[str, str]) -> tuple[int | None, int | None]:
    """``since`` and ``until`` of a verification (either may be empty: the whole log)."""

    since = parse_time("since", params["since"]) if params.get("since") else None
    until = parse_time("until", params["until"]) if params.get("until") else None
    if since is not None and until is not None and since >= until:
        raise AuditQueryError("until", Text("audit.after_since", "must be after since"))
    return since, until


def count_in_range(engine: sa.Engine, since: int | None, until: int | None) -> int:

    stmt = sa.select(sa.func.count()).select_from(records)
    if since is not None:
        stmt = stmt.where(records.c.ts >= since)
    if until is not None:
        stmt = stmt.where(records.c.ts < until)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def verify_range(engine: sa.Engine, keys: Any, since: int | None, until: int | None,
                 progress: Callable[[int], None] | None = None, *,
                 journal: Path | None = None,
                 checkpoint_seconds: float | None = None) -> VerifyReport:
    """``audit.verify.verify_database`` over ``[since, until)``, checkpoint signatures
    checked with the key ring; in journal mode (``journal``: its directory) the journal
    against the tables too, as ``govgate audit verify`` does: the records written since
    the last checkpoint are evidence there when the table's tail was cut. With
    ``checkpoint_seconds``, records no checkpoint signed in time (``audit.coverage``)."""
    rep = verify_database(engine, keyservice_sigcheck(keys), since=since, until=until,
                          progress=progress, checkpoint_seconds=checkpoint_seconds)
    if journal is not None and journal.is_dir():
        for problem in verify_journal(engine, Journal(journal)).problems:
            rep.add(problem)
    return rep


def report_dict(rep: VerifyReport) -> dict[str, Any]:
    def when(ms: int | None) -> str | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")

    return {"intact": rep.intact, "unanchored": rep.unanchored,
            "summary": str(rep.summary()), "records": rep.records,
            "chains": rep.chains, "checkpoints": rep.checkpoints,
            "first_time": when(rep.first_ts), "last_time": when(rep.last_ts),
            "problems": [{"kind": p.kind, "where": str(p.where), "detail": str(p.detail)}
                         for p in rep.problems or rep.unsigned]}


# -- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedCheckpoint:
    checkpoint: Checkpoint
    signature_ok: bool

    @property
    def heads(self) -> dict[str, dict[str, Any]]:
        try:
            return self.checkpoint.heads
        except ValueError:
            return {}

    def to_dict(self) -> dict[str, Any]:
        out = self.checkpoint.to_dict()
        out["signature_ok"] = self.signature_ok
        out["time"] = datetime.fromtimestamp(self.checkpoint.ts / 1000, UTC).isoformat(
            timespec="milliseconds").replace("+00:00", "Z")
        return out


def checked_checkpoints(engine: sa.Engine, keys: Any, *, before: int | None, limit: int
                        ) -> list[CheckedCheckpoint]:
    trusted = TrustedKids(keys)  # a page's checkpoints share a few kids
    return [CheckedCheckpoint(cp, signature_ok(cp, keys, trusted))
            for cp in list_checkpoints(engine, before=before, limit=limit)]


def parse_page(params: Mapping[str, str], max_limit: int = 200) -> tuple[int | None, int]:
    """``before`` (a checkpoint number) and ``limit`` of the checkpoint list."""
    for key in params:
        if key not in ("before", "limit", "lang"):
            raise AuditQueryError(key, Text("audit.unknown_filter", "unknown filter"))
    before = _int(params, "before")
    limit = _int(params, "limit")
    if limit is None:
        limit = 50
    elif not 1 <= limit <= max_limit:
        raise AuditQueryError("limit", Text("audit.limit_range", "between 1 and {limit}",
                                            limit=max_limit))
    return before, limit


def _int(params: Mapping[str, str], key: str) -> int | None:
    value = params.get(key)
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise AuditQueryError(key, Text("audit.not_integer", "not an integer")) from None
    if not 0 <= number <= MAX_SQL_INT:  # else the database driver fails on it (a 500)
        raise AuditQueryError(key, Text("audit.int_range", "between 0 and {max}",
                                        max=MAX_SQL_INT))
    return number
