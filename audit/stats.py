"""Usage figures for the portal: counts by day, system, resource and consumer department.

Read from ``audit_usage_daily``, a rollup the writer maintains in the same
transaction as the records, so no query scans the log.

``kind`` is a dimension worked out from the rollup's event type, outcome, department
and ``status_class`` (the class of the status the records name), so that only what
reached a consumer counts as delivered (实绩, not 留痕):

    delivered         a proxied request let through that the system answered below 400
    not_delivered     a proxied request let through that the system answered 400 or
                      more (a 404 for a wrong key, a 500): no data went out
    unconfirmed       let through, the answer not seen: a forward-auth allow (the
                      front proxy fetches the answer, never shown to the gateway),
                      and a proxied allow whose class is not known (a row from before
                      migration 0025 whose records were purged)
    refused           refused for someone known: no grant, policy, scope (deny)
    unauthenticated   refused with no one authenticated (deny, no department: 401)
    failed            an upstream or gateway failure (error)
    other             any other event naming a system or resource (applications, grants)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa

from audit.errors import AuditQueryError
from audit.tables import usage
from texts import Text

DIMENSIONS = ("day", "system", "resource", "department", "event_type", "outcome",
              "status_class", "kind")
KINDS = ("delivered", "not_delivered", "unconfirmed", "refused", "unauthenticated", "failed",
         "other")
PROXIED = "proxy_request"
DELIVERED_CLASSES = frozenset({"1xx", "2xx", "3xx"})  # an answer below 400


def kind_of(event_type: str, outcome: str, department: str, status_class: str = "") -> str:
    """What one rollup row counts (module docstring). Pure."""
    if outcome == "allow" and event_type == PROXIED and status_class:
        return "delivered" if status_class in DELIVERED_CLASSES else "not_delivered"
    if outcome == "allow" and event_type in ("forward_auth", PROXIED):
        return "unconfirmed"
    if outcome == "deny":
        return "refused" if department else "unauthenticated"
    if outcome == "error":
        return "failed"
    return "other"


_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")


def usage_stats(
    engine: sa.Engine,
    *,
    group_by: Sequence[str] = ("day", "system", "resource", "department"),
    since_day: str | None = None,
    until_day: str | None = None,
    system: str | None = None,
    resource: str | None = None,
    department: str | None = None,
    event_type: str | None = None,
    targets_only: bool = True,
) -> list[dict[str, Any]]:
    """``[{dimension: value, ..., "count": n}]``; days are ``YYYY-MM-DD`` (UTC), inclusive.

    ``targets_only`` counts only events that named a system or a resource (data use,
    not logins); ``event_type`` narrows to one event type.
    """
    for dim in group_by:
        if dim not in DIMENSIONS:
            raise AuditQueryError("group_by", Text("audit.not_one_of",
                                                   "{value!r} is not one of {known}",
                                                       value=dim, known=", ".join(DIMENSIONS)))
    check_days(since_day, until_day)
    if "kind" in group_by:
        return _by_kind(engine, list(group_by), since_day=since_day, until_day=until_day,
                        system=system, resource=resource, department=department,
                        event_type=event_type, targets_only=targets_only)
    cols = [usage.c[d] for d in group_by]
    stmt = sa.select(*cols, sa.func.sum(usage.c.count).label("count"))
    if since_day:
        stmt = stmt.where(usage.c.day >= since_day)
    if until_day:
        stmt = stmt.where(usage.c.day <= until_day)
    for name, value in (("system", system), ("resource", resource),
                        ("department", department), ("event_type", event_type)):
        if value is not None:
            stmt = stmt.where(usage.c[name] == value)
    if targets_only:
        stmt = stmt.where(sa.or_(usage.c.system != "", usage.c.resource != ""))
    stmt = stmt.group_by(*cols).order_by(*cols)
    with engine.connect() as conn:
        out = []
        for r in conn.execute(stmt):
            m = dict(r._mapping)
            m["count"] = int(m["count"] or 0)  # no dimensions, no rows: a sum of NULL
            out.append(m)
        return out


def _by_kind(engine: sa.Engine, group_by: list[str], **filters: Any) -> list[dict[str, Any]]:
    """``usage_stats`` with the ``kind`` dimension: counted by what it needs, then summed."""
    stored = [d for d in group_by if d != "kind"]
    needed = list(dict.fromkeys([*stored, "event_type", "outcome", "department",
                                 "status_class"]))
    totals: dict[tuple[Any, ...], int] = {}
    for row in usage_stats(engine, group_by=needed, **filters):
        kind = kind_of(row["event_type"], row["outcome"], row["department"],
                       row["status_class"])
        key = tuple(kind if d == "kind" else row[d] for d in group_by)
        totals[key] = totals.get(key, 0) + row["count"]

    def order(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(KINDS.index(v) if d == "kind" else v
                     for d, v in zip(group_by, key, strict=True))

    return [{**dict(zip(group_by, key, strict=True)), "count": totals[key]}
            for key in sorted(totals, key=order)]


def check_days(since: str | None, until: str | None) -> None:
    """``since`` and ``until`` as days, in order, or AuditQueryError naming the field."""
    for name, day in (("since", since), ("until", until)):
        if day is not None and not _is_day(day):
            raise AuditQueryError(name, Text("audit.day", "a day as YYYY-MM-DD"))
    if since and until and until < since:  # ISO days sort as text
        raise AuditQueryError("until", Text("audit.day_order", "{until} is before since ({since})",
                                            until=until, since=since))


def _is_day(value: str) -> bool:
    if not _DAY.match(value):
        return False
    try:
        date.fromisoformat(value)  # 2026-02-30 matches the pattern but is no day
    except ValueError:
        return False
    return True
