"""The auditors' query: filters on indexed columns, cursor pagination, newest first.

    query_records(engine, f)            one page and the cursor of the next
    count_matching(engine, f, upto_id)  how many records an export of ``f`` holds
    iter_matching(engine, f, upto_id)   every record of ``f`` (an export), page by page
    newest_id(engine)                   the ceiling that fixes an export's set of records

The free text (``text``) is a substring of the reason, the purpose or the extra
fields (the request target, the grants used, what was withheld...), without case.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from audit.act_sub import acted_by
from audit.errors import AuditQueryError
from audit.record import OUTCOMES
from audit.tables import records
from texts import Text

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# filter name -> column, for the exact-match filters
EXACT = {
    "user": records.c.actor_user,
    "department": records.c.department,
    "client": records.c.actor_client,
    "event_type": records.c.event_type,
    "outcome": records.c.outcome,
    "system": records.c.system,
    "resource": records.c.resource,
    "request_id": records.c.request_id,
}
FILTER_NAMES = ("since", "until", *EXACT, "text", "limit", "cursor")
# the ``user`` filter matches the record's user (A) or the delegate acting for them (B,
# ``extra.act.sub``); a page's records say which (``matched_as``)
MATCHED_USER, MATCHED_DELEGATE = "user", "delegate"
# what the free text searches
TEXT_COLUMNS = ("reason", "purpose", "extra")
EXPORT_BATCH = 1000

_NAME = re.compile(r"^[\w.:@/+-]{1,128}\Z")


@dataclass(frozen=True)
class QueryFilter:
    since: int | None = None  # UTC ms, inclusive
    until: int | None = None  # UTC ms, exclusive
    user: str | None = None
    department: str | None = None
    client: str | None = None
    event_type: str | None = None
    outcome: str | None = None
    system: str | None = None
    resource: str | None = None
    request_id: str | None = None
    text: str | None = None  # substring of the reason, purpose or extra fields
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None
    # the reader's reach, never a parameter: records of one of these departments (the
    # actor's) or about one of these systems; None: every record
    departments: frozenset[str] | None = None
    systems: frozenset[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The filters that are set (for the audit record of the query itself)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None and f.name not in _NOT_FILTERS}


_NOT_FILTERS = ("limit", "departments", "systems")


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    next_cursor: str | None


def parse_time(field: str, value: str) -> int:
    """UTC milliseconds from integer ms or ISO 8601 (a date, or a time; naive means UTC)."""
    text = value.strip()
    if re.fullmatch(r"\d{1,16}", text):
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AuditQueryError(field, Text("audit.not_a_time",
                                         "not a time: {value!r} (ISO 8601 or epoch ms)",
                                         value=value)) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


# the largest value of a 64-bit SQL integer (a record's id, a checkpoint's number)
MAX_SQL_INT = 2**63 - 1


def encode_cursor(ts: int, row_id: int) -> str:
    return base64.urlsafe_b64encode(f"{ts}.{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        ts, row_id = (int(part) for part in raw.split("."))
        # a made-up cursor past what an SQL integer holds fails in the driver, not here
        if not (0 <= ts <= MAX_SQL_INT and 0 <= row_id <= MAX_SQL_INT):
            raise ValueError("out of range")
        return ts, row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AuditQueryError("cursor", Text("audit.not_a_cursor",
                                            "not a cursor from a previous page")) from None


def parse_filters(params: Mapping[str, str]) -> QueryFilter:
    """A :class:`QueryFilter` from request or CLI parameters; AuditQueryError names the field."""
    values: dict[str, Any] = {}
    for key in params:
        if key not in FILTER_NAMES:
            raise AuditQueryError(key, Text("audit.unknown_filter", "unknown filter"))
    for key in ("since", "until"):
        if params.get(key):
            values[key] = parse_time(key, params[key])
    for key in EXACT:
        value = params.get(key)
        if value is None or value == "":
            continue
        if not _NAME.match(value):
            raise AuditQueryError(key, Text("audit.bad_value", "bad value"))
        values[key] = value
    if values.get("outcome") is not None and values["outcome"] not in OUTCOMES:
        raise AuditQueryError("outcome", Text(
            "audit.not_one_of", "{value!r} is not one of {known}", value=values["outcome"],
            known=", ".join(sorted(OUTCOMES))))
    if params.get("text"):
        if len(params["text"]) > 200:
            raise AuditQueryError("text", Text("audit.text_length", "at most 200 characters"))
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in params["text"]):
            # PostgreSQL refuses a NUL in any text (a 500), SQLite ends the pattern there
            # (it matches everything); no record holds a control character to find
            raise AuditQueryError("text", Text("audit.text_control",
                                               "no control characters"))
        values["text"] = params["text"]
    if params.get("limit"):
        try:
            limit = int(params["limit"])
        except ValueError:
            raise AuditQueryError("limit", Text("audit.not_integer", "not an integer")) from None
        if not 1 <= limit <= MAX_LIMIT:
            raise AuditQueryError("limit", Text("audit.limit_range", "between 1 and {limit}",
                                                limit=MAX_LIMIT))
        values["limit"] = limit
    if params.get("cursor"):
        decode_cursor(params["cursor"])
        values["cursor"] = params["cursor"]
    if "since" in values and "until" in values and values["since"] >= values["until"]:
        raise AuditQueryError("until", Text("audit.after_since", "must be after since"))
    return QueryFilter(**values)


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def row_dict(row: Any) -> dict[str, Any]:
    m = dict(row._mapping)
    m["items"] = json.loads(m["items"] or "[]")
    m["extra"] = json.loads(m["extra"] or "{}")
    m["time"] = datetime.fromtimestamp(m["ts"] / 1000, UTC).isoformat(timespec="milliseconds"
                                                                      ).replace("+00:00", "Z")
    return m


def build_query(f: QueryFilter, *, upto_id: int | None = None,
                columns: Any = None) -> sa.Select[Any]:
    """The records of ``f`` newest first (``ts``, then ``id``: a stable order), at most
    ``upto_id`` when given."""
    stmt = sa.select(*(columns if columns is not None else [records]))
    if upto_id is not None:
        stmt = stmt.where(records.c.id <= upto_id)
    if f.since is not None:
        stmt = stmt.where(records.c.ts >= f.since)
    if f.until is not None:
        stmt = stmt.where(records.c.ts < f.until)
    for key, column in EXACT.items():
        value = getattr(f, key)
        if key == "user" and value is not None:
            # the person acted for (A, ``actor_user``) or the delegate who acted (B,
            # ``extra.act.sub``, 委托): an auditor asking about B must find B's acts too
            stmt = stmt.where(sa.or_(column == value, acted_by(value)))
        elif value is not None:
            stmt = stmt.where(column == value)
    if f.departments is not None or f.systems is not None:
        reach = [c.in_(sorted(v)) for c, v in ((records.c.department, f.departments),
                                                (records.c.system, f.systems)) if v]
        stmt = stmt.where(sa.or_(*reach) if reach else sa.false())
    if f.text:
        pattern = _like(f.text)
        stmt = stmt.where(sa.or_(*(records.c[c].ilike(pattern, escape="\\")
                                   for c in TEXT_COLUMNS)))
    if f.cursor:
        ts, row_id = decode_cursor(f.cursor)
        stmt = stmt.where(sa.tuple_(records.c.ts, records.c.id) < sa.tuple_(ts, row_id))
    return stmt.order_by(records.c.ts.desc(), records.c.id.desc())


def page_query(f: QueryFilter) -> sa.Select[Any]:
    """The statement of one page of ``f`` (a row more than the page: is there a next).
    With the user filter, its two halves each on its own: the user's records along
    the ``actor_user`` index and the delegate's along ``ix_audit_records_act_sub``
    (migration 0032_edges_act_sub_index), each up to a page in order, then merged. As
    one ``OR`` neither SQLite nor PostgreSQL could read an index in ``ts`` order, and
    PostgreSQL read the whole log along ``ts`` for a name on no record."""
    if f.user is None:
        return build_query(f).limit(f.limit + 1)
    others = replace(f, user=None)
    halves = [build_query(others).where(half).limit(f.limit + 1).subquery()
              for half in (records.c.actor_user == f.user,
                           sa.and_(acted_by(f.user), sa.or_(records.c.actor_user.is_(None),
                                                            records.c.actor_user != f.user)))]
    both = sa.union_all(*(sa.select(h) for h in halves)).subquery()
    return sa.select(both).order_by(both.c.ts.desc(), both.c.id.desc()).limit(f.limit + 1)


def query_records(engine: sa.Engine, f: QueryFilter) -> Page:
    """One page of records matching ``f``, newest first, and the cursor of the next page."""
    stmt = page_query(f)
    with engine.connect() as conn:
        rows = conn.execute(stmt).fetchall()
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    out = [row_dict(r) for r in rows]
    if f.user is not None:  # which of the record's people the user filter found
        for m in out:
            m["matched_as"] = MATCHED_USER if m["actor_user"] == f.user else MATCHED_DELEGATE
    cursor = encode_cursor(rows[-1].ts, rows[-1].id) if more and rows else None
    return Page(out, cursor)


def newest_id(engine: sa.Engine) -> int:
    """The highest record id now (0 for an empty log): an export reads up to it, so the
    records it counted, audited and wrote are the same ones while others are appended."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(records.c.id), 0)))
                   .scalar_one())


def count_matching(engine: sa.Engine, f: QueryFilter, upto_id: int) -> int:
    """How many records match ``f`` (its cursor included) up to ``upto_id``."""
    inner = build_query(f, upto_id=upto_id, columns=[records.c.id]).order_by(None)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inner.subquery()))
                   .scalar_one())


def iter_matching(engine: sa.Engine, f: QueryFilter, upto_id: int,
                  batch: int = EXPORT_BATCH) -> Iterator[dict[str, Any]]:
    """Every record matching ``f`` up to ``upto_id``, newest first, read ``batch`` at a
    time (keyset: each batch is one short query, no transaction held between them)."""
    cursor = f.cursor
    while True:
        page_filter = replace(f, cursor=cursor, limit=batch)
        stmt = build_query(page_filter, upto_id=upto_id).limit(batch)
        with engine.connect() as conn:
            rows = conn.execute(stmt).fetchall()
        for row in rows:
            yield row_dict(row)
        if len(rows) < batch:
            return
        cursor = encode_cursor(rows[-1].ts, rows[-1].id)
