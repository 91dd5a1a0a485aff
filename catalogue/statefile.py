"""The state file's ``catalogue:``, ``grants:`` and ``calendar:`` sections (see DESIGN.md;
the calendar's format is in :mod:`catalogue.calendar`).

    catalogue:
      - code: JG-0001
        name: 公务用车基础信息
        provider: jgswj
        system: vehicles
        share_type: conditional          # unconditional | conditional | none
        conditions: 仅用于公务用车费用核算
        route: {method: GET, path: /api/vehicles, records: items}
        items:
          - {name: plate_number, title: 车牌号, level: 1, authoritative: true}
          - {name: driver_phone, title: 驾驶员手机号, level: 3, encrypt: true}
    grants:
      - {resource: JG-0001, consumer: czt, items: [plate_number], purpose: 费用核算,
         until: 2027-12-31}

Optional resource keys: summary, basis, share_method, update_cycle, open_attr,
status (a new resource defaults to published; an existing one keeps its status
unless the file names one) and version (informational: the store counts
versions). Optional route keys: records, query (the query parameters a consumer may
send: ``catalogue.query``), envelope (the keys kept beside the records:
``catalogue.envelope``). Optional item keys: type, level (1-4), mask, encrypt, authoritative,
shareable. Optional grant keys: client, from, basis.

A grant is identified by (resource, consumer, client, purpose): applying
changes its items and dates; a grant revoked since is left revoked. Apply
never deletes. Publishing items another department provides as authoritative
calls ``warn`` with the resources to reuse.

The gateway hands in what this package must not import: the stored
departments, systems and clients, and how to make a plan entry (its Change).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from catalogue import store
from catalogue.calendar import year_from_entry, year_problems
from catalogue.duplicates import duplicate_warnings
from catalogue.limits import length_problems
from catalogue.model import (
    CONDITIONAL,
    REVOKED,
    Grant,
    Resource,
    parse_date,
    requested_item_problems,
    resource_from_entry,
    resource_problems,
    route_problems,
)
from catalogue.routes import same_route
from statedoc import Change
from texts import Text
from texts import where as placed

GRANT_REQUIRED = frozenset({"resource", "consumer", "items", "purpose", "until"})
GRANT_OPTIONAL = frozenset({"client", "from", "basis"})


@dataclass
class Lookups:
    """The gateway's tables, read through the apply transaction's connection."""

    departments: Callable[[Connection], set[str]]
    systems: Callable[[Connection], dict[str, str]]  # code -> department
    clients: Callable[[Connection], dict[str, str]]  # client_id -> department


def _where(section: str, index: int, entry: Any) -> str:
    line = getattr(entry, "line", 0)
    at = f"{section}[{index}]"
    return Text("at_line", "{where} (line {line})", where=at, line=line) if line else at


def _entries(doc: Mapping[str, Any], section: str) -> list[Any]:
    """The entries of ``section`` of ``doc``; none when it is not a list (the state
    file's own checks say so)."""
    found = doc.get(section)
    return found if isinstance(found, list) else []


def _doc_codes(doc: Mapping[str, Any], section: str, key: str, value: str) -> dict[str, str]:
    out = {}
    for e in _entries(doc, section):
        if isinstance(e, Mapping) and key in e and value in e:
            out[str(e[key])] = str(e[value])
    return out


def validate_resources(
    entries: list[Any],
    *,
    departments: set[str],
    systems: Mapping[str, str],
    stored: list[Resource],
    section: str = "catalogue",
    where: Callable[[int, Any], str] | None = None,
) -> list[str]:
    """Pure validation of resource entries against what exists; each problem with its place."""
    place = where or (lambda i, e: _where(section, i, e))
    problems: list[str] = []
    seen: dict[str, int] = {}
    routes: list[tuple[str, str, str, str, str]] = []  # system, method, path, code, where
    for i, entry in enumerate(entries):
        at = place(i, entry)
        found = resource_problems(entry)
        problems.extend(placed(at, p) for p in found)
        if not isinstance(entry, Mapping):
            continue
        code = entry.get("code")
        if code is not None:
            if str(code) in seen:
                problems.append(placed(at, Text(
                    "cat.duplicate_code", "duplicate code {code!r} (first at {first})",
                    code=code, first=f"{section}[{seen[str(code)]}]")))
            else:
                seen[str(code)] = i
        provider = entry.get("provider")
        if provider is not None and str(provider) not in departments:
            problems.append(placed(at, Text("cat.unknown_provider",
                                             "unknown provider department {department!r}",
                                             department=provider)))
        system = entry.get("system")
        if system is not None:
            if str(system) not in systems:
                problems.append(placed(at, Text("cat.unknown_system", "unknown system {system!r}",
                                                 system=system)))
            elif provider is not None and systems[str(system)] != str(provider):
                problems.append(placed(at, Text(
                    "cat.system_owner",
                    "system {system!r} belongs to {owner}, not to the provider {provider}",
                    system=system, owner=systems[str(system)], provider=provider)))
        route = entry.get("route")
        if (isinstance(route, Mapping) and system is not None and code is not None
                and not route_problems(route)):
            method = str(route.get("method", "GET")).upper()
            for other in routes:
                if other[0] == str(system) and same_route(other[1], other[2], method,
                                                          route["path"]):
                    problems.append(placed(at, Text(
                        "cat.route_twice", "route {method} {path} is also the route of {code} "
                        "({where})", method=method, path=route["path"], code=other[3],
                        where=other[4])))
            routes.append((str(system), method, route["path"], str(code), at))
    in_file = set(seen)
    for r in stored:
        if r.code in in_file:
            continue
        for sys_, method, path, _code, at in routes:
            if sys_ == r.system and same_route(r.route.method, r.route.path, method, path):
                problems.append(placed(at, Text(
                    "cat.route_taken", "route {method} {path} is already the route of {code}",
                    method=method, path=path, code=r.code)))
    return problems


class CatalogueSection:
    """SectionHandler for ``catalogue:`` (see gateway.statefile.SectionHandler)."""

    name = "catalogue"
    order = 60

    def __init__(
        self,
        *,
        lookups: Lookups,
        clock: Callable[[], datetime] | None = None,
        warn: Callable[[str], None] | None = None,
        after_write: Callable[[], None] | None = None,
    ) -> None:
        self.lookups = lookups
        self.clock = clock or (lambda: datetime.now(UTC))
        self.warn = warn or (lambda _m: None)
        self.after_write = after_write or (lambda: None)
        self.warnings: list[str] = []

    def validate(self, entries: list[Any], doc: Mapping[str, Any], conn: Connection
                 ) -> list[str]:
        departments = set(self.lookups.departments(conn)) | set(
            _doc_codes(doc, "departments", "code", "name"))
        systems = dict(self.lookups.systems(conn))
        systems.update(_doc_codes(doc, "systems", "code", "department"))
        return validate_resources(entries, departments=departments, systems=systems,
                                  stored=store.load_resources(conn))

    def apply(self, conn: Connection, entries: list[Any], write: bool) -> list[Any]:
        changes = []
        touched: list[str] = []
        now = self.clock()
        for entry in entries:
            code = str(entry["code"])
            old = store.get_resource(conn, code)
            status = entry.get("status") or (old.status if old else None)
            resource = resource_from_entry(entry, status=status)
            result = store.save_resource(conn, resource, now) if write else _diff(old, resource)
            if result is None:
                continue
            if result == ():
                changes.append(Change("create", "resource", code))
            else:
                changes.append(Change("update", "resource", code, tuple(result)))
            touched.append(code)
        if touched and write:
            self.after_write()
            everything = store.load_resources(conn)
            for r in everything:
                if r.code in touched:
                    for message in duplicate_warnings(r, everything):
                        self.warnings.append(message)
                        self.warn(message)
        return changes

    def export(self, conn: Connection) -> list[dict[str, Any]]:
        return [r.to_entry() for r in store.load_resources(conn)]


def _diff(old: Resource | None, new: Resource) -> tuple[str, ...] | None:
    if old is None:
        return ()
    a, b = old.content(), new.content()
    changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if old.status != new.status:
        changed.append("status")
    return tuple(changed) or None


def grant_key(entry: Mapping[str, Any]) -> tuple[str, str, str, str]:
    client = entry.get("client")
    return (str(entry["resource"]), str(entry["consumer"]),
            "" if client is None else str(client), str(entry["purpose"]))


def _stored_by_key(conn: Connection) -> dict[tuple[str, str, str, str], Grant]:
    """The stored grant an entry's key names: the newest, an active one over a revoked one."""
    existing: dict[tuple[str, str, str, str], Grant] = {}
    for g in store.load_grants(conn):
        prev = existing.get(g.key())
        if prev is None or prev.status == REVOKED or g.status != REVOKED:
            existing[g.key()] = g
    return existing


def _grant_diff(old: Grant, entry: Mapping[str, Any]) -> dict[str, Any]:
    """What applying ``entry`` changes of ``old`` (the table's column names)."""
    items = list(dict.fromkeys(entry["items"]))
    until = parse_date(entry["until"])
    start = parse_date(entry["from"]) if entry.get("from") is not None else None
    basis = str(entry.get("basis") or "")
    diff: dict[str, Any] = {}
    if list(old.items) != items:
        diff["items"] = items
    if old.until != until:
        diff["until"] = until
    if old.valid_from != start:
        diff["valid_from"] = start
    if old.basis != basis:
        diff["basis"] = basis
    return diff


class GrantsSection:
    """SectionHandler for ``grants:``; applies after ``catalogue:``."""

    name = "grants"
    order = 61

    def __init__(
        self,
        *,
        lookups: Lookups,
        clock: Callable[[], datetime] | None = None,
        after_write: Callable[[], None] | None = None,
    ) -> None:
        self.lookups = lookups
        self.clock = clock or (lambda: datetime.now(UTC))
        self.after_write = after_write or (lambda: None)

    def validate(self, entries: list[Any], doc: Mapping[str, Any], conn: Connection
                 ) -> list[str]:
        departments = set(self.lookups.departments(conn)) | set(
            _doc_codes(doc, "departments", "code", "name"))
        clients = dict(self.lookups.clients(conn))
        clients.update(_doc_codes(doc, "clients", "client_id", "department"))
        known: dict[str, Resource] = {r.code: r for r in store.load_resources(conn)}
        for e in _entries(doc, "catalogue"):
            if isinstance(e, Mapping) and not resource_problems(e):
                known[str(e["code"])] = resource_from_entry(e)
        problems: list[str] = []
        seen: dict[tuple[str, str, str, str], int] = {}
        stored = _stored_by_key(conn)
        for i, e in enumerate(entries):
            at = _where("grants", i, e)
            if not isinstance(e, Mapping):
                problems.append(placed(at, Text("field.mapping", "must be a mapping")))
                continue
            problems += [placed(at, Text("field.unknown_key", "unknown key {key!r}", key=k))
                         for k in sorted(set(e) - GRANT_REQUIRED - GRANT_OPTIONAL)]
            missing = sorted(GRANT_REQUIRED - set(e))
            problems += [placed(at, Text("field.missing_key", "missing key {key!r}", key=k))
                         for k in missing]
            if missing:
                continue
            checked = len(problems)
            res = known.get(str(e["resource"]))
            consumer = str(e["consumer"])
            if res is None:
                problems.append(placed(at, Text("cat.unknown_resource", "unknown resource {code!r}",
                                                 code=e["resource"])))
            elif res.share_type != CONDITIONAL:
                problems.append(placed(at, Text(
                    "cat.grants_conditional",
                    "{code} is {share_type}; grants are for conditional resources",
                    code=res.code, share_type=res.share_type)))
            if consumer not in departments:
                problems.append(placed(at, Text("cat.unknown_consumer",
                                             "unknown consumer department {department!r}",
                                             department=consumer)))
            elif res is not None and consumer == res.provider:
                problems.append(placed(at, Text("cat.provider_needs_no_grant",
                                             "{department} provides {code} and needs no grant",
                                             department=consumer, code=res.code)))
            items = e["items"]
            if not isinstance(items, list) or not items or not all(
                    isinstance(x, str) for x in items):
                problems.append(placed(at, Text("cat.item_names",
                                             "items must be a non-empty list of item names")))
            elif res is not None:
                problems += [placed(at, p) for p in requested_item_problems(res, items)]
            if not isinstance(e["purpose"], str) or not e["purpose"].strip():
                problems.append(placed(at, Text("field.non_empty",
                                             "{field} must be a non-empty string",
                                             field="purpose")))
            until = parse_date(e["until"])
            if until is None:
                problems.append(placed(at, Text("field.date", "{field} must be a date YYYY-MM-DD",
                                                 field="until")))
            start = None
            if e.get("from") is not None:
                start = parse_date(e["from"])
                if start is None:
                    problems.append(placed(at, Text("field.date",
                                                     "{field} must be a date YYYY-MM-DD",
                                                     field="from")))
            if start and until and start > until:
                problems.append(placed(at, Text("field.from_after_until", "from is after until")))
            client = e.get("client")
            if client is not None:
                owner = clients.get(str(client))
                if owner is None:
                    problems.append(placed(at, Text("cat.unknown_client",
                                                    "unknown client {client!r}",
                                                     client=client)))
                elif owner != consumer:
                    problems.append(placed(at, Text(
                        "cat.client_owner", "client {client!r} belongs to {owner}, not to "
                        "{department}", client=client, owner=owner, department=consumer)))
            if "basis" in e and not isinstance(e["basis"], str):
                problems.append(placed(at, Text("field.string", "{field} must be a string",
                                                 field="basis")))
            problems += [placed(at, p) for p in length_problems(e, ("purpose", "basis"))]
            key = grant_key(e)
            approved = stored.get(key) if len(problems) == checked else None
            if approved is not None and approved.application_id is not None and \
                    approved.status != REVOKED and _grant_diff(approved, e):
                # the file would rewrite what a steward approved, under their name
                problems.append(placed(at, Text(
                    "cat.grant_from_application",
                    "grant {grant} was approved on application {application}: change it "
                    "through the workflow (revoke, apply again)",
                    grant=approved.id, application=approved.application_id)))
            if key in seen:
                problems.append(placed(at, Text(
                    "cat.duplicate_grant",
                    "duplicate of {first} (same resource, consumer, client and purpose)",
                    first=f"grants[{seen[key]}]")))
            else:
                seen[key] = i
        return problems

    def apply(self, conn: Connection, entries: list[Any], write: bool) -> list[Any]:
        changes = []
        now = self.clock()
        existing = _stored_by_key(conn)
        for e in entries:
            key = grant_key(e)
            label = f"{key[0]}->{key[1]}" + (f"/{key[2]}" if key[2] else "") + f" ({key[3]})"
            items = list(dict.fromkeys(e["items"]))
            until = parse_date(e["until"])
            start = parse_date(e["from"]) if e.get("from") is not None else None
            basis = str(e.get("basis") or "")
            old = existing.get(key)
            if old is None:
                changes.append(Change("create", "grant", label))
                if write:
                    assert until is not None
                    store.insert_grant(conn, resource=key[0], consumer=key[1], items_=items,
                                       purpose=key[3], until=until, now=now,
                                       client_id=key[2] or None, valid_from=start,
                                       basis=basis, source="state")
                continue
            if old.status == REVOKED:
                continue  # revocation sticks; a new grant needs a new purpose or an application
            diff = _grant_diff(old, e)
            if diff:
                names = tuple(sorted("from" if k == "valid_from" else k for k in diff))
                changes.append(Change("update", "grant", label, names))
                if write:
                    store.update_grant(conn, old.id, now, **diff)
        if changes and write:
            self.after_write()
        return changes

    def export(self, conn: Connection) -> list[dict[str, Any]]:
        latest: dict[tuple[str, str, str, str], Any] = {}
        for g in store.load_grants(conn):
            if g.status != REVOKED:
                latest[g.key()] = g
        out = []
        for g in sorted(latest.values(), key=lambda g: g.id):
            entry: dict[str, Any] = {"resource": g.resource, "consumer": g.consumer}
            if g.client_id:
                entry["client"] = g.client_id
            entry.update(items=list(g.items), purpose=g.purpose)
            if g.valid_from:
                entry["from"] = g.valid_from
            entry["until"] = g.until
            if g.basis:
                entry["basis"] = g.basis
            out.append(entry)
        return out


class CalendarSection:
    """SectionHandler for ``calendar:``: the holidays and 调休 make-up working days of a
    year, one entry per year (:mod:`catalogue.calendar`). A year in the file replaces
    that year as stored; years the file does not name stay as they are."""

    name = "calendar"
    order = 50

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))

    def validate(self, entries: list[Any], doc: Mapping[str, Any], conn: Connection
                 ) -> list[str]:
        problems: list[str] = []
        seen: dict[Any, int] = {}
        for i, entry in enumerate(entries):
            at = _where(self.name, i, entry)
            problems += [placed(at, p) for p in year_problems(entry)]
            year = entry.get("year") if isinstance(entry, Mapping) else None
            if not isinstance(year, int):  # not a year (year_problems says so)
                continue
            if year in seen:
                problems.append(placed(at, Text("cal.duplicate_year",
                                                "{year} is named twice (first at {first})",
                                                year=year, first=f"calendar[{seen[year]}]")))
            else:
                seen[year] = i
        return problems

    def apply(self, conn: Connection, entries: list[Any], write: bool) -> list[Any]:
        stored = {y.year: y for y in store.load_calendar(conn)}
        changes = []
        for entry in entries:
            year = year_from_entry(entry)
            old = stored.get(year.year)
            if old == year:
                continue
            if old is None:
                changes.append(Change("create", "calendar", str(year.year)))
            else:
                fields = tuple(f for f in ("holidays", "source")
                               if getattr(old, f) != getattr(year, f))
                changes.append(Change("update", "calendar", str(year.year), fields))
            if write:
                store.save_calendar_year(conn, year, self.clock())
        return changes

    def export(self, conn: Connection) -> list[dict[str, Any]]:
        return [y.to_entry() for y in store.load_calendar(conn)]
