"""What the delegation pages and API share (委托, ``gateway.delegations``): the person
behind a principal, the systems a person may open (what they may delegate), the
systems B may open acting for A (the launcher's "代理 A" entries), and dates typed
by people."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from gateway.delegations import Delegation, Delegations
from gateway.errors import Forbidden, NotFound, ValidationError
from gateway.idp.authenticator import Principal
from gateway.org import ADMIN_ROLES, User
from gateway.proxy.acting import lent_roles_decide
from gateway.root import Gateway
from gateway.tables import departments, systems
from policies import Query, subjects_for
from texts import Text

CHINA = timezone(timedelta(hours=8))  # a date people type is a China-time day


def person(gateway: Gateway, principal: Principal) -> User:
    """The user behind ``principal``; a system's token is refused."""
    if not principal.username:
        raise Forbidden(Text("delegation.person", "delegations are a person's, not a "
                                                  "system's"))
    try:
        return gateway.services.org.get_user(principal.username)
    except NotFound:
        raise Forbidden(Text("delegation.person", "delegations are a person's, not a "
                                                  "system's")) from None


def _systems(gateway: Gateway) -> list[Any]:
    with gateway.services.engine.connect() as conn:
        return list(conn.execute(
            sa.select(systems.c.code, systems.c.name, systems.c.portal_path,
                      systems.c.department_code, systems.c.case_sensitive_paths,
                      departments.c.name.label("dept_name"))
            .join(departments, departments.c.code == systems.c.department_code)
            .order_by(systems.c.code)))


def _url(r: Any) -> str:
    path = r.portal_path or "/"
    return f"/s/{r.code}{path if path.startswith('/') else '/' + path}"


def held_systems(gateway: Gateway, user: User) -> set[str]:
    """The systems ``user`` may open now (the launcher's rule: the policy allows GET of
    the system's portal page): what they may delegate."""
    subjects = subjects_for(username=user.username, roles=user.roles,
                            department=user.department)
    return {r.code for r in _systems(gateway) if gateway.policies.decide(Query(
        subjects, user.department, _url(r).split("?", 1)[0], "GET",
        r.department_code, bool(r.case_sensitive_paths))).allowed}


@dataclass(frozen=True)
class ActingEntry:
    """One delegation B may act under now, with the systems it opens."""

    delegation: Delegation
    delegator_name: str
    systems: list[dict[str, str]]


def acting_entries(gateway: Gateway, delegate: str) -> list[ActingEntry]:
    """For each delegation ``delegate`` may act under now: A's systems named in it that
    A may still open, and those a policy line of the delegated roles A still holds
    opens (``gateway.proxy.acting``'s rule)."""
    svc = gateway.services
    out = []
    rows = None
    for d in Delegations(svc).live_for(delegate):
        a = svc.live_users.get(d.delegator)
        if a is None or not a.active:
            continue
        rows = rows if rows is not None else _systems(gateway)
        full = subjects_for(username=d.delegator, roles=a.roles, department=a.department)
        lent = (frozenset(d.roles) & a.roles) - ADMIN_ROLES
        found = []
        for r in rows:
            url = _url(r)
            if r.code in d.systems:
                ok = gateway.policies.decide(Query(
                    full, a.department, url.split("?")[0], "GET", r.department_code,
                    bool(r.case_sensitive_paths))).allowed
            else:
                ok = bool(lent) and lent_roles_decide(
                    gateway.policies, d.delegator, lent, a.department, d.id,
                    url.split("?")[0], "GET", r.department_code,
                    bool(r.case_sensitive_paths)).allowed
            if ok:
                found.append({"code": r.code, "name": r.name, "department": r.dept_name,
                              "url": url})
        out.append(ActingEntry(d, a.name, found))
    return out


def when(value: str, field: str, *, end: bool, now: datetime) -> datetime:
    """A moment typed by a person: an ISO date-time with an offset, or a date (China
    time): an end date means the end of that day, a start date its beginning (now,
    for today)."""
    value = (value or "").strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if end:
                return datetime.combine(day + timedelta(days=1), time(), CHINA).astimezone(UTC)
            start = datetime.combine(day, time(), CHINA).astimezone(UTC)
            return now if start <= now < start + timedelta(days=1) else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValidationError(Text("delegation.bad_time",
                                   "{field}: a date (2026-12-31) or a date and time with "
                                   "its offset", field=field))
    return moment.astimezone(UTC)


def codes(value: Any, field: str) -> list[str]:
    """A list of codes from JSON (a list of strings) or a form (comma- or
    space-separated)."""
    if isinstance(value, str):
        return [c for c in value.replace(",", " ").replace("，", " ").split() if c]
    if isinstance(value, list) and all(isinstance(c, str) for c in value):
        return [c.strip() for c in value if c.strip()]
    if value is None:
        return []
    raise ValidationError(Text("delegation.bad_codes", "{field}: a list of codes",
                               field=field))
