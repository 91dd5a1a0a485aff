"""Real use (实绩): what systems and catalogue resources delivered, day by day.

Counted from the proxy's own audit records of delivered requests (``proxy_request``
with outcome ``allow`` and a status below 400: the calls that reached a system and
came back with its data), never from what was built or registered. A forward-auth
allow (``forward_auth``) is not counted as delivered: the front proxy (nginx
``auth_request``) fetches the answer and the gateway never sees it (the usage rollup's
``unconfirmed``, audit/stats.py). It is shown beside it, never added in:

    calls         delivered requests
    unseen        forward-auth allows: let through, the answer not seen (放行，未见应答)
    departments   distinct consumer departments (the caller's department)
    users         distinct people who saw the data (a client-credentials call has
                  none): under a delegation (委托) the delegate B acting for A, named in
                  the record's ``extra.act`` (``actor_user`` is A), not A
    acting        of the calls, those a delegate made acting for a colleague (B for A:
                  the record names both), so a report shows that the data went to B
    items         data items released: over the calls, the number of items each
                  record names (the catalogue's shaping writes the items it let
                  through; a call outside the catalogue names none)

A day is a calendar day at a fixed offset from UTC (China Standard Time, +08:00,
by default: China has no daylight saving). Every figure is aggregated in SQL, the
same statement on SQLite and PostgreSQL, over the ``(event_type, ts)`` index: a
window of 90 days of a busy log is one grouped scan per question, not rows in
Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from audit.act_sub import HAS_ACT
from audit.act_sub import act_sub as _act_sub
from audit.tables import records

DAY_MS = 86_400_000
CST_OFFSET_MINUTES = 8 * 60
DELIVERY_EVENTS = ("proxy_request",)
UNSEEN_EVENT = "forward_auth"
KINDS = ("system", "resource")


@dataclass(frozen=True)
class Window:
    """The last ``days`` local days up to and including today: ``[since_ms, until_ms)``."""

    first_day: int  # day number: local days since 1970-01-01
    days: int
    offset_minutes: int = CST_OFFSET_MINUTES

    @classmethod
    def ending_at(cls, now_ms: int, days: int,
                  offset_minutes: int = CST_OFFSET_MINUTES) -> Window:
        if days < 1:
            raise ValueError("a window has at least one day")
        today = (now_ms + offset_minutes * 60_000) // DAY_MS
        return cls(today - days + 1, days, offset_minutes)

    @property
    def offset_ms(self) -> int:
        return self.offset_minutes * 60_000

    @property
    def since_ms(self) -> int:
        return self.first_day * DAY_MS - self.offset_ms

    @property
    def until_ms(self) -> int:
        return (self.first_day + self.days) * DAY_MS - self.offset_ms

    def label(self, day: int) -> str:
        """``YYYY-MM-DD`` of day number ``day``."""
        return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).date().isoformat()

    def labels(self) -> list[str]:
        return [self.label(d) for d in range(self.first_day, self.first_day + self.days)]

    def day_of(self, ts_ms: int) -> int:
        return (ts_ms + self.offset_ms) // DAY_MS


@dataclass(frozen=True)
class Figures:
    calls: int = 0
    departments: int = 0
    users: int = 0
    items: int = 0
    unseen: int = 0  # forward-auth allows: let through, the answer not seen
    acting: int = 0  # calls a delegate made acting for a colleague (委托: B for A)


@dataclass(frozen=True)
class DayFigures(Figures):
    day: str = ""


@dataclass(frozen=True)
class TargetUse:
    """One system's or resource's use over a window: every day (zeros included) and
    the window's total (distinct departments and users over the whole window)."""

    kind: str  # system | resource
    code: str
    days: tuple[DayFigures, ...]
    total: Figures = field(default_factory=Figures)


@dataclass(frozen=True)
class ConsumerDay:
    """Calls of one consumer (department, and client when it named one) on one resource
    on one day."""

    day: str
    resource: str
    department: str
    client: str | None
    calls: int
    unseen: int = 0  # forward-auth allows: let through, the answer not seen


def _items_count() -> Any:
    # ``items`` is canonical JSON text: ["a","b"]. Inside a JSON string a quote is
    # always escaped (\"), so '","' occurs only between two items.
    text = records.c["items"]  # (records.c.items is the collection's method)
    sep = (sa.func.length(text, type_=sa.Integer)
           - sa.func.length(sa.func.replace(text, '","', ""), type_=sa.Integer))
    return sa.case((text == "[]", 0), else_=sep // 3 + 1)


def delivered(window: Window | None = None) -> list[Any]:
    """The conditions of a delivered call (in ``window``): also the stewards' last use."""
    # a call the system answered with an error (404 for a wrong key, 500) let through
    # nothing: no use of the data, nor of the grant it went under; a record without a
    # status tells no answer (the rollup's "unconfirmed")
    where = [records.c.event_type.in_(DELIVERY_EVENTS), records.c.outcome == "allow",
             records.c.status < 400]
    if window is not None:
        where += [records.c.ts >= window.since_ms, records.c.ts < window.until_ms]
    return where


def _delivered_row() -> Any:
    return sa.and_(records.c.event_type.in_(DELIVERY_EVENTS), records.c.status < 400)


def _unseen_row() -> Any:
    return records.c.event_type == UNSEEN_EVENT


def _counted(window: Window) -> list[Any]:
    """Delivered calls and forward-auth allows in ``window``: one scan for both figures."""
    return [records.c.outcome == "allow",
            records.c.event_type.in_([*DELIVERY_EVENTS, UNSEEN_EVENT]),
            sa.or_(_delivered_row(), _unseen_row()),
            records.c.ts >= window.since_ms, records.c.ts < window.until_ms]


def _column(kind: str) -> Any:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    return records.c[kind]


def _figures(row: Any) -> Figures:
    return Figures(int(row.calls or 0), int(row.departments or 0), int(row.users or 0),
                   int(row.items or 0), int(row.unseen or 0), int(row.acting or 0))


def _acting() -> Any:
    """A call made by a delegate (委托) acting for the record's user: ``extra.act`` names
    a person. A system acting for the user (RFC 8693) is ``client:...``: the data went
    to the user's own system, counted for the user. The text test first: only such
    records pay for reading the JSON."""
    sub = _act_sub(records.c.extra)
    return sa.and_(records.c.extra.like(HAS_ACT), sub.is_not(None),
                   sa.not_(sub.like("client:%")))


def _seen_by() -> Any:
    """The person who saw the data: the delegate acting for the user, or the user."""
    return sa.case((_acting(), _act_sub(records.c.extra)), else_=records.c.actor_user)


def _where(window: Window, target: Any, codes: Sequence[str] | None,
           consumers: Iterable[str] | None) -> list[Any]:
    where = [*_counted(window), target.is_not(None)]
    if codes is not None:
        where.append(target.in_(list(codes)) if codes else sa.false())
    if consumers is not None:
        wanted = list(consumers)
        where.append(records.c.department.in_(wanted) if wanted else sa.false())
    return where


def _aggregates() -> tuple[Any, ...]:
    # departments, users and items are the delivered calls' only: a forward-auth allow
    # released nothing the gateway saw
    hit = _delivered_row()
    return (
        sa.func.sum(sa.case((hit, 1), else_=0)).label("calls"),
        sa.func.count(sa.distinct(sa.case(
            (hit, sa.func.nullif(records.c.department, ""))))).label("departments"),
        sa.func.count(sa.distinct(sa.case((hit, _seen_by())))).label("users"),
        sa.func.coalesce(sa.func.sum(sa.case((hit, _items_count()), else_=0)), 0
                         ).label("items"),
        sa.func.sum(sa.case((_unseen_row(), 1), else_=0)).label("unseen"),
        sa.func.sum(sa.case((sa.and_(hit, _acting()), 1), else_=0)).label("acting"),
    )


def _day(window: Window) -> Any:
    # constants written into the SQL, not bound: PostgreSQL matches a GROUP BY
    # expression to the selected one only when they are written the same
    offset = sa.literal_column(str(int(window.offset_ms)), sa.BigInteger)
    return ((records.c.ts + offset) // sa.literal_column(str(DAY_MS), sa.BigInteger)
            ).label("day")


def _series(kind: str, code: str, window: Window, days: dict[int, Figures],
            total: Figures) -> TargetUse:
    return TargetUse(kind, code, tuple(
        DayFigures(**days.get(d, Figures()).__dict__, day=window.label(d))
        for d in range(window.first_day, window.first_day + window.days)), total)


def target_use(engine: sa.Engine, window: Window, *, kind: str,
               codes: Sequence[str] | None = None,
               consumers: Iterable[str] | None = None) -> list[TargetUse]:
    """The use of each system (``kind="system"``) or resource over ``window``.

    ``codes`` narrows to these targets and lists every one of them, in that order,
    used or not; without it, the targets used, by code. ``consumers`` counts only
    calls of these departments.
    """
    target = _column(kind)
    where = _where(window, target, codes, consumers)
    day = _day(window)
    by_day = sa.select(target.label("code"), day, *_aggregates()).where(*where).group_by(
        target, day)
    totals = sa.select(target.label("code"), *_aggregates()).where(*where).group_by(target)
    series: dict[str, dict[int, Figures]] = {}
    with engine.connect() as conn:
        for r in conn.execute(by_day):
            series.setdefault(r.code, {})[int(r.day)] = _figures(r)
        total = {r.code: _figures(r) for r in conn.execute(totals)}
    wanted = list(dict.fromkeys(codes)) if codes is not None else sorted(total)
    return [_series(kind, code, window, series.get(code, {}), total.get(code, Figures()))
            for code in wanted]


def daily_total(engine: sa.Engine, window: Window, *, kind: str,
                codes: Sequence[str] | None = None,
                consumers: Iterable[str] | None = None) -> TargetUse:
    """The use of all those targets together: one series, and distinct departments and
    users counted across them (code ``*``)."""
    target = _column(kind)
    where = _where(window, target, codes, consumers)
    day = _day(window)
    with engine.connect() as conn:
        days = {int(r.day): _figures(r) for r in conn.execute(
            sa.select(day, *_aggregates()).where(*where).group_by(day))}
        total = _figures(conn.execute(sa.select(*_aggregates()).where(*where)).one())
    return _series(kind, "*", window, days, total)


def last_use(engine: sa.Engine, *, kind: str, codes: Sequence[str] | None = None
             ) -> dict[str, int]:
    """Code → the time (UTC ms) of its last delivered call, ever (unused codes absent)."""
    return _last(engine, delivered(None), kind, codes)


def last_unconfirmed(engine: sa.Engine, *, kind: str, codes: Sequence[str] | None = None
                     ) -> dict[str, int]:
    """Code → the time (UTC ms) of its last forward-auth allow, ever: let through, the
    answer not seen, so neither a use nor a sign that the target lies idle."""
    return _last(engine, [records.c.event_type == UNSEEN_EVENT,
                          records.c.outcome == "allow"], kind, codes)


def _last(engine: sa.Engine, where: list[Any], kind: str, codes: Sequence[str] | None
          ) -> dict[str, int]:
    target = _column(kind)
    where = [*where, target.is_not(None)]
    if codes is not None:
        where.append(target.in_(list(codes)) if codes else sa.false())
    stmt = sa.select(target.label("code"), sa.func.max(records.c.ts).label("ts")).where(
        *where).group_by(target)
    with engine.connect() as conn:
        return {r.code: int(r.ts) for r in conn.execute(stmt)}


def consumer_days(engine: sa.Engine, window: Window, *,
                  resources: Sequence[str] | None = None) -> list[ConsumerDay]:
    """Delivered calls on catalogue resources by day, resource, department and client;
    forward-auth allows beside them (``unseen``)."""
    where = [*_counted(window), records.c.resource.is_not(None)]
    if resources is not None:
        where.append(records.c.resource.in_(list(resources)) if resources else sa.false())
    day = _day(window)
    stmt = (sa.select(day, records.c.resource, records.c.department, records.c.actor_client,
                      sa.func.sum(sa.case((_delivered_row(), 1), else_=0)).label("calls"),
                      sa.func.sum(sa.case((_unseen_row(), 1), else_=0)).label("unseen"))
            .where(*where)
            .group_by(day, records.c.resource, records.c.department, records.c.actor_client)
            .order_by(day, records.c.resource, records.c.department, records.c.actor_client))
    with engine.connect() as conn:
        return [ConsumerDay(window.label(int(r.day)), r.resource, r.department or "",
                            r.actor_client, int(r.calls), int(r.unseen))
                for r in conn.execute(stmt)]


# -- pure conclusions ---------------------------------------------------------------------


@dataclass(frozen=True)
class GrantRef:
    """What the use of a grant is judged by (``catalogue.Grant`` and its creation)."""

    id: int
    resource: str
    consumer: str
    client: str | None
    active_since_ms: int  # created, or valid from, whichever is later


@dataclass(frozen=True)
class GrantUse:
    grant: GrantRef
    calls: int  # in the window, since the grant was active
    last_day: str | None  # the last day with a call in the window
    status: str  # never | rare | unseen (no delivered call, but let through by forward-auth)
    suggest_revoke: bool  # active for at least min_age_days of the window, none let through
    unseen: int = 0  # forward-auth allows under it: let through, the answer not seen


def grant_use(grants: Iterable[GrantRef], uses: Iterable[ConsumerDay], window: Window, *,
              rare_below: int = 5, min_age_days: int = 30) -> list[GrantUse]:
    """The grants used fewer than ``rare_below`` times in ``window`` since they became
    active: ``never`` (no call) or ``rare``. A call counts for a grant when it is its
    consumer's, on its resource, through its client when the grant names one. Revoking
    is suggested once the grant has been active ``min_age_days`` within the window
    (a grant approved yesterday is not "unused"), and never for one whose consumer was let
    through by forward-auth under it (its use is not seen, not absent)."""
    by_key: dict[tuple[str, str], list[ConsumerDay]] = {}
    for u in uses:
        by_key.setdefault((u.resource, u.department), []).append(u)
    last_day = window.first_day + window.days - 1
    out = []
    for g in sorted(grants, key=lambda g: g.id):
        first = window.day_of(max(g.active_since_ms, window.since_ms))
        start = window.label(first)
        mine = [u for u in by_key.get((g.resource, g.consumer), [])
                if u.day >= start and (g.client is None or u.client == g.client)]
        calls = sum(u.calls for u in mine)
        unseen = sum(u.unseen for u in mine)
        if calls >= rare_below:
            continue
        status = "rare" if calls else "unseen" if unseen else "never"
        out.append(GrantUse(g, calls, max((u.day for u in mine if u.calls), default=None),
                            status, last_day - first + 1 >= min_age_days and not unseen,
                            unseen))
    return out


def idle(codes: Iterable[str], used: Iterable[TargetUse]) -> list[str]:
    """The ``codes`` with no delivered call in the window ``used`` covers."""
    busy = {u.code for u in used if u.total.calls > 0}
    return [c for c in codes if c not in busy]
