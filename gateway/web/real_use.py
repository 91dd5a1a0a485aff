"""Real use (实绩) for people: the overview and a department's one-page summary, for the
``/api/v1/stats/...`` API and the ``/portal/stats`` pages alike.

The figures come from ``audit.use`` (aggregated in SQL from the proxy's audit
records); this module adds what the gateway knows: which systems and catalogue
resources exist and whose they are, the grants, the duplicate collections the
catalogue finds (一数一源), and who may see what.

Who sees it (there is no "leader" role: a department's leaders hold the
``data_steward`` role of their department, or read the summary an admin prints):

    auditor, sysadmin, secadmin their department and its children; at the top of the tree
                                (a department without a parent, in a region without a
                                parent: the province's, or the platform's) every one (a
                                department's auditor read every department's figures
                                until the attack of 2026-12-05: the department scope of
                                docs/admin-consoles.md holds here too)
    data_steward (数据管理员)    their department and its children
    anyone else                 refused (403)

"Their department" means: its systems, its published resources, the grants it gave
or holds, the duplicates it collects or is the source of.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from audit.use import (
    GrantRef,
    GrantUse,
    TargetUse,
    Window,
    consumer_days,
    daily_total,
    grant_use,
    last_unconfirmed,
    last_use,
    target_use,
)
from catalogue.duplicates import Overlap, all_overlaps
from catalogue.model import PUBLISHED, Grant, Resource, day_start
from catalogue.tables import grants as grant_table
from gateway.root import Gateway
from gateway.tables import departments, regions, systems

IDLE_DAYS = 90
RARE_BELOW = 5
WINDOWS = (30, 90)
# the three admins see their departments' part (every department at province level)
ADMIN_ROLES = frozenset({"sysadmin", "secadmin", "auditor"})
STEWARD = "data_steward"


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    parent: str | None
    top: bool  # no parent department, and its region has no parent region


@dataclass(frozen=True)
class SystemInfo:
    code: str
    name: str
    department: str


@dataclass(frozen=True)
class Sources:
    """Everything the figures are computed from, read once per request."""

    engine: sa.Engine
    departments: Mapping[str, Department]
    systems: Sequence[SystemInfo]
    resources: Sequence[Resource]  # published ones
    grants: Sequence[tuple[Grant, int]]  # active grants and when each became active (ms)
    overlaps: Sequence[Overlap]
    now_ms: int


@dataclass(frozen=True)
class Scope:
    everything: bool
    departments: frozenset[str] = frozenset()

    def covers(self, department: str | None) -> bool:
        return self.everything or (department is not None and department in self.departments)


def subtree(departments: Mapping[str, Department], root: str) -> frozenset[str]:
    children: dict[str, list[str]] = {}
    for d in departments.values():
        if d.parent:
            children.setdefault(d.parent, []).append(d.code)
    found, todo = set(), [root]
    while todo:
        code = todo.pop()
        if code not in found:
            found.add(code)
            todo += children.get(code, [])
    return frozenset(found)


def viewer_scope(roles: Iterable[str], department: str | None,
                 departments: Mapping[str, Department]) -> Scope | None:
    """What a person with ``roles`` in ``department`` may see (module docstring), or
    None: nothing."""
    held = set(roles)
    if not department or department not in departments:
        return None
    if held & ADMIN_ROLES:
        if departments[department].top:
            return Scope(True)
        return Scope(False, subtree(departments, department))
    if STEWARD in held:
        return Scope(False, subtree(departments, department))
    return None


# -- what the pages show --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    kind: str  # system | resource
    code: str
    name: str
    owner: str  # department code
    use: TargetUse
    last_ts: int | None  # last delivered call ever
    unseen_ts: int | None = None  # last forward-auth allow ever (its answer not seen)


@dataclass(frozen=True)
class UnusedGrant:
    grant: Grant
    provider: str
    use: GrantUse


@dataclass(frozen=True)
class Overview:
    window: Window
    total: TargetUse  # every system the viewer may see, together
    systems: list[Target]
    resources: list[Target]
    idle: list[Target]  # no delivered call in the last IDLE_DAYS days
    grants: list[UnusedGrant]  # never or rarely used in the last IDLE_DAYS days
    duplicates: list[Overlap]
    departments: list[Department]  # those whose summary the viewer may open
    # no delivered call in the last IDLE_DAYS days but let through by forward-auth:
    # not idle, its answers unseen (a system behind nginx auth_request)
    unseen_only: list[Target] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    department: Department
    window: Window
    provided: TargetUse  # calls to the department's systems, all together
    systems: list[Target]
    resources: list[Target]
    consumed: TargetUse  # the department's own calls to any system
    consumed_resources: list[Target]  # resources of other departments it used
    idle: list[Target]
    grants: list[UnusedGrant]
    duplicates: list[Overlap]
    children: list[Department] = field(default_factory=list)
    unseen_only: list[Target] = field(default_factory=list)  # as in Overview


def _targets(src: Sources, window: Window, kind: str,
             entries: Sequence[tuple[str, str, str]], *,
             consumers: Iterable[str] | None = None) -> list[Target]:
    codes = [code for code, _, _ in entries]
    used = target_use(src.engine, window, kind=kind, codes=codes, consumers=consumers)
    last = last_use(src.engine, kind=kind, codes=codes)
    unseen = last_unconfirmed(src.engine, kind=kind, codes=codes)
    return [Target(kind, code, name, owner, u, last.get(code), unseen.get(code))
            for (code, name, owner), u in zip(entries, used, strict=True)]


def _entries(src: Sources, scope: Scope) -> tuple[list[tuple[str, str, str]],
                                                  list[tuple[str, str, str]]]:
    systems = [(s.code, s.name, s.department) for s in src.systems if scope.covers(s.department)]
    resources = [(r.code, r.name, r.provider) for r in src.resources if scope.covers(r.provider)]
    return systems, resources


def _quiet(src: Sources, targets: Iterable[Target]) -> tuple[list[Target], list[Target]]:
    """The targets with no delivered call in the last IDLE_DAYS days (from their last
    call ever: no second scan of the window): those idle, and those let through by
    forward-auth in that time, not idle (used behind nginx; their answers not seen)."""
    since = Window.ending_at(src.now_ms, IDLE_DAYS).since_ms
    quiet = [t for t in targets if t.last_ts is None or t.last_ts < since]
    unseen = [t for t in quiet if t.unseen_ts is not None and t.unseen_ts >= since]
    return [t for t in quiet if t.unseen_ts is None or t.unseen_ts < since], unseen


def _grants(src: Sources, scope: Scope) -> list[UnusedGrant]:
    providers = {r.code: r.provider for r in src.resources}
    mine = [(g, since) for g, since in src.grants
            if scope.covers(g.consumer) or scope.covers(providers.get(g.resource))]
    if not mine:
        return []
    window = Window.ending_at(src.now_ms, IDLE_DAYS)
    uses = consumer_days(src.engine, window,
                         resources=sorted({g.resource for g, _ in mine}))
    refs = {g.id: g for g, _ in mine}
    found = grant_use([GrantRef(g.id, g.resource, g.consumer, g.client_id, since)
                       for g, since in mine], uses, window, rare_below=RARE_BELOW)
    return [UnusedGrant(refs[u.grant.id], providers.get(u.grant.resource, ""), u)
            for u in found]


def _duplicates(src: Sources, scope: Scope) -> list[Overlap]:
    return [o for o in src.overlaps
            if scope.covers(o.department) or scope.covers(o.source_department)]


def overview(src: Sources, scope: Scope, days: int) -> Overview:
    """Every system and resource the viewer may see, over the last ``days`` days."""
    window = Window.ending_at(src.now_ms, days)
    systems, resources = _entries(src, scope)
    used_systems = _targets(src, window, "system", systems)
    used_resources = _targets(src, window, "resource", resources)
    idle, unseen_only = _quiet(src, [*used_systems, *used_resources])
    return Overview(
        window=window,
        total=daily_total(src.engine, window, kind="system", codes=[c for c, _, _ in systems]),
        systems=used_systems,
        resources=used_resources,
        idle=idle,
        grants=_grants(src, scope),
        duplicates=_duplicates(src, scope),
        departments=sorted((d for d in src.departments.values() if scope.covers(d.code)),
                           key=lambda d: d.code),
        unseen_only=unseen_only,
    )


def summary(src: Sources, code: str, days: int) -> Summary:
    """One department on one page: what its systems and resources delivered, what it
    used of others', what lies idle, grants unused, duplicates (its own only; its
    children have their own page)."""
    window = Window.ending_at(src.now_ms, days)
    dept = src.departments[code]
    own = Scope(False, frozenset({code}))
    systems, resources = _entries(src, own)
    others = [(r.code, r.name, r.provider) for r in src.resources if r.provider != code]
    consumed_resources = [t for t in _targets(src, window, "resource", others,
                                              consumers=[code]) if t.use.total.calls]
    own_systems = _targets(src, window, "system", systems)
    own_resources = _targets(src, window, "resource", resources)
    idle, unseen_only = _quiet(src, [*own_systems, *own_resources])
    return Summary(
        department=dept,
        window=window,
        provided=daily_total(src.engine, window, kind="system",
                             codes=[c for c, _, _ in systems]),
        systems=own_systems,
        resources=own_resources,
        consumed=daily_total(src.engine, window, kind="system", consumers=[code]),
        consumed_resources=consumed_resources,
        idle=idle,
        grants=_grants(src, own),
        duplicates=_duplicates(src, own),
        children=sorted((d for d in src.departments.values() if d.parent == code),
                        key=lambda d: d.code),
        unseen_only=unseen_only,
    )


# -- reading the gateway's state ------------------------------------------------------------


def read_departments(engine: sa.Engine) -> dict[str, Department]:

    with engine.connect() as conn:
        region_parent = dict(conn.execute(sa.select(regions.c.code, regions.c.parent_code)).all())
        rows = conn.execute(sa.select(departments.c.code, departments.c.name,
                                      departments.c.parent_code, departments.c.region_code))
        return {r.code: Department(r.code, r.name, r.parent_code,
                                   r.parent_code is None and region_parent.get(r.region_code)
                                   is None) for r in rows}


def read_sources(gateway: Gateway, now: datetime) -> Sources:
    """The gateway's systems, published resources, active grants and duplicates."""

    engine = gateway.services.engine
    catalogue, workflow = gateway.catalogue, gateway.workflow
    with engine.connect() as conn:
        system_rows = [SystemInfo(r.code, r.name, r.department_code) for r in conn.execute(
            sa.select(systems.c.code, systems.c.name, systems.c.department_code)
            .order_by(systems.c.code))]
        created = dict(conn.execute(sa.select(grant_table.c.id, grant_table.c.created_at)).all())
    resources = catalogue.resources()
    published = sorted((r for r in resources if r.status == PUBLISHED), key=lambda r: r.code)
    active = []
    for g in workflow.grants(active_only=True):
        start = created.get(g.id) or now
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        if g.valid_from is not None:
            start = max(start, day_start(g.valid_from))
        active.append((g, int(start.timestamp() * 1000)))
    return Sources(engine=engine, departments=read_departments(engine), systems=system_rows,
                   resources=published, grants=active, overlaps=all_overlaps(resources),
                   now_ms=int(now.timestamp() * 1000))


# -- as JSON --------------------------------------------------------------------------------


def _use_json(u: TargetUse) -> dict[str, Any]:
    return {"total": u.total.__dict__, "days": [d.__dict__ for d in u.days]}


def _target_json(t: Target) -> dict[str, Any]:
    return {"kind": t.kind, "code": t.code, "name": t.name, "owner": t.owner,
            "last_used": _iso(t.last_ts), "last_let_through": _iso(t.unseen_ts),
            **_use_json(t.use)}


def _quiet_json(targets: Iterable[Target]) -> list[dict[str, Any]]:
    return [{"kind": t.kind, "code": t.code, "name": t.name, "owner": t.owner,
             "last_used": _iso(t.last_ts), "last_let_through": _iso(t.unseen_ts)}
            for t in targets]


def _grant_json(g: UnusedGrant) -> dict[str, Any]:
    return {"id": g.grant.id, "resource": g.grant.resource, "provider": g.provider,
            "consumer": g.grant.consumer, "client_id": g.grant.client_id,
            "purpose": g.grant.purpose, "until": g.grant.until.isoformat(),
            "calls": g.use.calls, "unseen": g.use.unseen, "last_day": g.use.last_day,
            "status": g.use.status,
            "suggest_revoke": g.use.suggest_revoke}


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def _window_json(w: Window) -> dict[str, Any]:
    labels = w.labels()
    return {"days": w.days, "first_day": labels[0], "last_day": labels[-1],
            "utc_offset_minutes": w.offset_minutes}


def overview_json(o: Overview) -> dict[str, Any]:
    return {"window": _window_json(o.window), "total": _use_json(o.total),
            "systems": [_target_json(t) for t in o.systems],
            "resources": [_target_json(t) for t in o.resources],
            "idle": _quiet_json(o.idle), "not_idle_unseen": _quiet_json(o.unseen_only),
            "idle_days": IDLE_DAYS,
            "grants": [_grant_json(g) for g in o.grants], "rare_below": RARE_BELOW,
            "duplicates": [o.__dict__ for o in o.duplicates],
            "departments": [{"code": d.code, "name": d.name} for d in o.departments]}


def summary_json(s: Summary) -> dict[str, Any]:
    return {"department": {"code": s.department.code, "name": s.department.name},
            "window": _window_json(s.window),
            "provided": _use_json(s.provided),
            "systems": [_target_json(t) for t in s.systems],
            "resources": [_target_json(t) for t in s.resources],
            "consumed": _use_json(s.consumed),
            "consumed_resources": [_target_json(t) for t in s.consumed_resources],
            "idle": _quiet_json(s.idle), "not_idle_unseen": _quiet_json(s.unseen_only),
            "grants": [_grant_json(g) for g in s.grants],
            "duplicates": [o.__dict__ for o in s.duplicates],
            "children": [{"code": d.code, "name": d.name} for d in s.children]}
