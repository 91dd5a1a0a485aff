"""What a data steward (数据管理员) works from, for the portal and the API alike.

* the **inbox**: the applications the caller decides, overdue first, each with its
  time limit in working days of the operator's calendar: a data steward or the head
  (负责人) of the provider department sees its submitted applications, those referred
  to the head marked; the security admin sees every escalated one;
* **our grants**: the grants on the caller's department's resources (every grant
  for the security admin), each with its use: calls that delivered data to the
  consumer department on that resource since the grant began (the audit log's daily
  rollup, ``audit_usage_daily``: proxied, answered below 400) and the last such call;
  beside them the calls let through that delivered nothing (the system answered 400
  or more) and those whose answer the gateway never saw (forward-auth), so that a
  grant only probed with wrong keys does not read as used (实绩, audit/stats.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from audit.stats import usage_stats
from audit.tables import records
from audit.use import delivered
from catalogue import Workflow
from catalogue.calendar import WorkCalendar
from catalogue.model import CST, DATA_STEWARD, DEPT_HEAD, ESCALATED, SUBMITTED, Application, Grant

SECADMIN = "secadmin"


@dataclass(frozen=True)
class Deadline:
    """An open application's time limit: ``working_days`` left (0: due today) or, when
    ``overdue``, gone past."""

    due_at: datetime
    overdue: bool
    working_days: int

    @classmethod
    def of(cls, app: Application, now: datetime, calendar: WorkCalendar) -> Deadline:
        overdue = now >= app.due_at
        days = calendar.working_days_between(now.astimezone(CST).date(),
                                              app.due_at.astimezone(CST).date())
        return cls(app.due_at, overdue, abs(days))

    def to_dict(self) -> dict[str, Any]:
        return {"due_at": self.due_at.isoformat(), "overdue": self.overdue,
                "working_days_left": 0 if self.overdue else self.working_days,
                "working_days_overdue": self.working_days if self.overdue else 0}


@dataclass(frozen=True)
class InboxEntry:
    application: Application
    deadline: Deadline

    @property
    def referred(self) -> bool:
        return self.application.head_escalated_at is not None

    def to_dict(self) -> dict[str, Any]:
        return {**self.application.to_dict(), "deadline": self.deadline.to_dict(),
                "referred": self.referred}


@dataclass(frozen=True)
class Usage:
    calls: int  # delivered
    last_used: datetime | None  # the last delivered call
    not_delivered: int = 0  # let through, the system answered 400 or more
    unconfirmed: int = 0  # let through, the answer not seen (forward-auth)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": self.calls,
                "last_used": self.last_used.isoformat() if self.last_used else None,
                "not_delivered": self.not_delivered, "unconfirmed": self.unconfirmed}


def decides(principal: Any) -> bool:
    """Whether the caller has an inbox at all."""
    return bool(set(principal.roles or ()) & {DATA_STEWARD, DEPT_HEAD, SECADMIN})


def inbox(wf: Workflow, principal: Any, now: datetime,
          covers: Callable[[Application], bool]) -> list[InboxEntry]:
    """``covers``: whether the security admin decides an escalated application (its
    provider is within their departments: department scope)."""
    roles = set(principal.roles or ())
    found: dict[int, Application] = {}
    if roles & {DATA_STEWARD, DEPT_HEAD} and principal.department:
        for a in wf.applications(status=[SUBMITTED], provider=principal.department):
            found[a.id] = a
    if SECADMIN in roles:
        for a in wf.applications(status=[ESCALATED]):
            if covers(a):
                found[a.id] = a
    calendar = wf.calendar()
    entries = [InboxEntry(a, Deadline.of(a, now, calendar)) for a in found.values()]
    # overdue first, then the head's (referred), then by time limit
    return sorted(entries, key=lambda e: (not e.deadline.overdue, not e.referred,
                                          e.application.due_at, e.application.id))


def provided_grants(wf: Workflow, provided: set[str] | None) -> list[Grant]:
    """The grants on the resources ``provided`` (every grant: None), newest first."""
    found = [g for g in wf.grants() if provided is None or g.resource in provided]
    return sorted(found, key=lambda g: -g.id)


def usage(engine: sa.Engine, grants: list[Grant], now: datetime) -> dict[int, Usage]:
    """Each grant's use by its consumer department on its resource while it held."""
    if not grants:
        return {}
    since = min(_day(g.created_at or now) for g in grants)
    rows = [r for r in usage_stats(engine, group_by=("day", "resource", "department", "kind"),
                                   since_day=since)
            if r["kind"] in COUNTED]
    out = {}
    for g in grants:
        first = _day(g.created_at or now)
        last = _day(g.revoked_at) if g.revoked_at else None
        counts = dict.fromkeys(COUNTED, 0)
        for r in rows:
            if (r["resource"] == g.resource and r["department"] == g.consumer
                    and r["day"] >= first and (last is None or r["day"] <= last)):
                counts[r["kind"]] += r["count"]
        calls = counts["delivered"]
        out[g.id] = Usage(calls, _last_use(engine, g) if calls else None,
                          counts["not_delivered"], counts["unconfirmed"])
    return out


COUNTED = ("delivered", "not_delivered", "unconfirmed")


def _day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")  # the rollup's days are UTC days


def _last_use(engine: sa.Engine, grant: Grant) -> datetime | None:
    query = (sa.select(sa.func.max(records.c.ts))
             .where(records.c.resource == grant.resource,
                    records.c.department == grant.consumer, *delivered()))
    with engine.connect() as conn:
        ts = conn.execute(query).scalar()
    return None if ts is None else datetime.fromtimestamp(int(ts) / 1000, UTC)
