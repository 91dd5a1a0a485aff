"""The catalogue over a database: resources (save, publish, retire, search,
duplicates, import/export) and a snapshot the proxy decides from.

The snapshot holds every resource (by system, as a route table) and every
grant. It reloads when ``catalogue_version`` changes, checked at most every
``reload_seconds`` (default 0.5 s): a revocation in any process reaches every
process within a second.

The freshness rule: a caller gets a snapshot whose ``catalogue_version`` was read
less than ``reload_seconds`` before it asked, and never one read before this
process's last :meth:`Catalogue.invalidate`. A reload is single-flight: one build at
a time, every caller that needs it waits for the same one; the proxy's callers wait
without holding the event loop (:meth:`Catalogue.current`, the build in a worker
thread), since 10,000 routes take a while to build.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from catalogue import io as cio
from catalogue import store
from catalogue.decision import Caller, CatalogueDecision, both, decide
from catalogue.duplicates import Overlap, all_overlaps, duplicate_warnings
from catalogue.errors import InvalidInput, NotAllowed, UnknownObject, WorkflowConflict
from catalogue.model import DRAFT, PUBLISHED, RETIRED, Grant, Resource, resource_from_entry
from catalogue.routes import RouteTable
from catalogue.search import search
from catalogue.statefile import CatalogueSection, GrantsSection, Lookups, validate_resources
from catalogue.workflow import Actor, Record, _begin_write
from statedoc import Change
from texts import Text, where


class Snapshot:
    def __init__(self, version: int, resources: list[Resource], grants: list[Grant]) -> None:
        self.version = version
        self.resources = {r.code: r for r in resources}
        self.grants = grants
        self.tables: dict[str, RouteTable[Resource]] = {}
        for r in resources:
            self.tables.setdefault(r.system, RouteTable()).add(r.route.method, r.route.path, r)
        self.publishing = frozenset(r.system for r in resources if r.status == PUBLISHED)

    def match(self, system: str, method: str, path: str, *, case_sensitive: bool = False,
              any_method: bool = False) -> Resource | None:
        table = self.tables.get(system)
        if table is None:
            return None
        found = table.match(method, path, case_sensitive=case_sensitive, any_method=any_method)
        return None if found is None else found.target

    def resembling(self, system: str, method: str, path: str, *, prefix: bool = False,
                   case_sensitive: bool = False, any_method: bool = False
                   ) -> Resource | None:
        table = self.tables.get(system)
        return None if table is None else table.resembling(
            method, path, prefix=prefix, case_sensitive=case_sensitive, any_method=any_method)

    def grants_for(self, resource: str, department: str | None) -> list[Grant]:
        return [g for g in self.grants if g.resource == resource and g.consumer == department]


class Catalogue:
    def __init__(
        self,
        engine: Engine,
        *,
        record: Record,
        lookups: Lookups,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        reload_seconds: float = 0.5,
    ) -> None:
        self.engine = engine
        self.record = record
        self.lookups = lookups
        self.clock = clock
        self.reload_seconds = reload_seconds
        self._snapshot: Snapshot | None = None
        self._checked = 0.0
        # guards the four fields; never held while the database is read or a build runs
        self._lock = threading.Lock()
        self._generation = 0  # bumped by invalidate(): older reloads are not installed
        self._inflight: Future[Snapshot] | None = None

    # -- reading ---------------------------------------------------------------------

    def resources(self) -> list[Resource]:
        with self.engine.connect() as conn:
            return store.load_resources(conn)

    def get(self, code: str) -> Resource:
        with self.engine.connect() as conn:
            found = store.get_resource(conn, code)
        if found is None:
            raise UnknownObject(Text("cat.no_resource", "no resource {code!r}", code=code))
        return found

    def search(self, **filters: Any) -> list[Resource]:
        return search(self.resources(), **filters)

    def duplicates(self) -> list[Overlap]:
        return all_overlaps(self.resources())

    # -- writing ---------------------------------------------------------------------

    def save(self, actor: Actor, entry: dict[str, Any]) -> tuple[Resource, list[str]]:
        """Create or update one resource from a state-file entry. A new resource is a
        draft unless the entry says otherwise; an existing one keeps its status."""
        if not actor.is_steward_of(str(entry.get("provider"))):
            raise NotAllowed(Text("cat.steward_saves",
                                  "only a data steward of the provider department saves this"))
        now = self.clock()
        with _begin_write(self.engine) as conn:
            problems = validate_resources(
                [entry], departments=self.lookups.departments(conn),
                systems=self.lookups.systems(conn), stored=store.load_resources(conn),
                where=lambda _i, _e: "resource",
            )
            if problems:
                raise InvalidInput(Text("cat.resource_rejected", "resource rejected"), problems)
            old = store.get_resource(conn, str(entry["code"]))
            if old is not None and not actor.is_steward_of(old.provider):
                raise NotAllowed(Text("cat.belongs_to", "{code} belongs to {department}",
                                      code=old.code, department=old.provider))
            status = entry.get("status") or (old.status if old else DRAFT)
            resource = resource_from_entry(entry, status=status)
            changed = store.save_resource(conn, resource, now)
            saved = store.get_resource(conn, resource.code)
            everything = store.load_resources(conn)
        self.invalidate()
        assert saved is not None
        warnings = duplicate_warnings(saved, everything)
        if changed is not None:
            self.record("resource_saved", {
                "actor": actor.name, "actor_department": actor.department,
                "resource": saved.code, "version": saved.version, "status": saved.status,
                "fields": list(changed), "warnings": warnings,
            })
        return saved, warnings

    def publish(self, actor: Actor, code: str) -> tuple[Resource, list[str]]:
        """draft (or retired) → published; returns the duplicate-collection warnings."""
        return self._status(actor, code, PUBLISHED)

    def retire(self, actor: Actor, code: str) -> tuple[Resource, list[str]]:
        return self._status(actor, code, RETIRED)

    def _status(self, actor: Actor, code: str, status: str) -> tuple[Resource, list[str]]:
        now = self.clock()
        with _begin_write(self.engine) as conn:
            old = store.get_resource(conn, code)
            if old is None:
                raise UnknownObject(Text("cat.no_resource", "no resource {code!r}", code=code))
            if not actor.is_steward_of(old.provider):
                raise NotAllowed(Text("cat.steward_changes",
                                      "only a data steward of {department} changes {code}",
                                      department=old.provider, code=code))
            if old.status == status:
                raise WorkflowConflict(Text("cat.already", "{code} is already {status}",
                                            code=code, status=status))
            store.set_status(conn, code, status, now)
            saved = store.get_resource(conn, code)
            everything = store.load_resources(conn)
        self.invalidate()
        assert saved is not None
        warnings = duplicate_warnings(saved, everything) if status == PUBLISHED else []
        self.record(f"resource_{status}", {
            "actor": actor.name, "actor_department": actor.department, "resource": code,
            "version": saved.version, "before": old.status, "after": status,
            "warnings": warnings,
        })
        return saved, warnings

    # -- import / export -------------------------------------------------------------

    def export_yaml(self, *, with_grants: bool = False) -> str:
        with self.engine.connect() as conn:
            grants = GrantsSection(lookups=self.lookups).export(conn)
        return cio.dump_yaml(self.resources(), grants if with_grants else None)

    def export_csv(self) -> str:
        return cio.write_csv(self.resources())

    def import_doc(self, doc: dict[str, Any], *, actor: str, dry_run: bool = False
                   ) -> tuple[list[Change], list[str]]:
        """Apply ``catalogue:`` / ``grants:`` entries as the state file does."""
        warnings: list[str] = []
        cat = CatalogueSection(lookups=self.lookups, clock=self.clock,
                               warn=warnings.append)
        grants = GrantsSection(lookups=self.lookups, clock=self.clock)
        with _begin_write(self.engine) as conn:
            problems: list[str] = []
            for section in (cat, grants):
                entries = doc.get(section.name)
                if entries is None:
                    continue
                if not isinstance(entries, list):
                    problems.append(where(section.name, Text("field.list", "must be a list")))
                    continue
                problems += section.validate(entries, doc, conn)
            if problems:
                raise InvalidInput(Text("cat.import_problems", "{n} problem(s) in the import",
                                        n=len(problems)), problems)
            planned = cat.apply(conn, doc.get("catalogue") or [], True)
            planned += grants.apply(conn, doc.get("grants") or [], True)
            if dry_run:
                conn.rollback()
        self.invalidate()
        if not dry_run:
            for p in planned:
                self.record("catalogue_imported", {"actor": actor, "action": p.action,
                                                   "kind": p.kind, "key": p.key,
                                                   "fields": list(p.fields)})
        return planned, warnings

    def import_csv(self, text: str, *, actor: str, dry_run: bool = False
                   ) -> tuple[list[Change], list[str]]:
        entries, first_row, problems = cio.read_csv(text)
        problems += cio.csv_problems(entries, first_row)
        clean = cio.strip_rows(entries)
        if not problems:
            with self.engine.connect() as conn:
                problems += validate_resources(
                    clean, departments=self.lookups.departments(conn),
                    systems=self.lookups.systems(conn), stored=store.load_resources(conn),
                    where=lambda _i, e: Text("row", "row {n}",
                                             n=first_row.get(str(e.get("code")), 0)),
                )
        if problems:
            raise InvalidInput(Text("cat.csv_problems", "{n} problem(s) in the CSV",
                                    n=len(problems)), problems)
        return self.import_doc({"catalogue": clean}, actor=actor, dry_run=dry_run)

    # -- the proxy's view ------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current snapshot (the freshness rule: module docstring), reloaded in the
        calling thread when due or waited for when another thread reloads it."""
        asked = time.monotonic()
        while True:
            snap, reload, mine = self._due(asked)
            if snap is not None:
                return snap
            assert reload is not None
            if mine is not None:
                self._reload(reload, mine)
            reload.result()  # a failed reload raises here, the next call tries again

    async def current(self) -> Snapshot:
        """:meth:`snapshot` for the event loop: a reload runs in a worker thread and
        every request that needs it awaits the same one, so the loop goes on serving
        requests that do not need the catalogue meanwhile."""
        asked = time.monotonic()
        while True:
            snap, reload, mine = self._due(asked)
            if snap is not None:
                return snap
            assert reload is not None
            if mine is not None:
                asyncio.get_running_loop().run_in_executor(None, self._reload, reload, mine)
            # raises what the reload raised; a cancelled request leaves the reload to the
            # others (a running Future cannot be cancelled)
            await asyncio.wrap_future(reload)

    def _due(self, asked: float) -> tuple[Snapshot | None, Future[Snapshot] | None, int | None]:
        """The snapshot if fresh enough for a caller that asked at ``asked``; else the
        reload to wait for, and the generation when the caller must run it itself."""
        with self._lock:
            snap = self._snapshot
            if snap is not None and asked - self._checked < self.reload_seconds:
                return snap, None, None
            if self._inflight is not None:
                return None, self._inflight, None
            reload: Future[Snapshot] = Future()
            reload.set_running_or_notify_cancel()
            self._inflight = reload
            return None, reload, self._generation

    def _reload(self, reload: Future[Snapshot], generation: int) -> None:
        """Read ``catalogue_version``, build a new snapshot when it changed, install it
        unless invalidate() came meanwhile (the callers then ask again)."""
        checked = time.monotonic()
        try:
            with self.engine.connect() as conn:
                version = store.read_version(conn)
                snap = self._snapshot
                if snap is None or snap.version != version:
                    snap = self._build(conn, version)
        except BaseException as exc:
            with self._lock:
                if self._inflight is reload:
                    self._inflight = None
            reload.set_exception(exc)
            return
        with self._lock:
            if self._generation == generation:
                self._snapshot, self._checked = snap, checked
            if self._inflight is reload:
                self._inflight = None
        reload.set_result(snap)

    def _build(self, conn: Connection, version: int) -> Snapshot:
        return Snapshot(version, store.load_resources(conn), store.load_grants(conn))

    def invalidate(self) -> None:
        """This process changed the catalogue: no caller gets a snapshot read before."""
        with self._lock:
            self._snapshot = None
            self._generation += 1
            self._inflight = None  # it may have read the version before the change

    def decide(self, resource: Resource, caller: Caller, now: datetime | None = None, *,
               snap: Snapshot | None = None) -> CatalogueDecision:
        """The decision for ``caller`` on ``resource``, from ``snap`` when given (the
        view the caller already matched the route in) or the current snapshot."""
        snap = snap or self.snapshot()
        return decide(resource, caller, snap.grants_for(resource.code, caller.department),
                      now or self.clock())

    def decide_through(self, resource: Resource, caller: Caller,
                       now: datetime | None = None, *, snap: Snapshot | None = None
                       ) -> CatalogueDecision:
        """:meth:`decide`, and for a user's token through another department's client
        (``Caller.through_another_department``) the items both departments may receive
        (``both``): what the proxy releases into the client's system."""
        snap = snap or self.snapshot()
        at = now or self.clock()
        found = self.decide(resource, caller, at, snap=snap)
        if not caller.through_another_department:
            return found
        return both(found, self.decide(resource, caller.client_side(), at, snap=snap),
                    caller.sides())

    def allowed(self, caller: Caller, now: datetime | None = None) -> list[dict[str, Any]]:
        """What ``caller`` may call right now: resource, route, items and until when;
        for a user through another department's client what both may
        (:meth:`decide_through`), as the proxy releases."""
        snap = self.snapshot()
        at = now or self.clock()
        out = []
        for r in sorted(snap.resources.values(), key=lambda r: r.code):
            d = self.decide_through(r, caller, at, snap=snap)
            if not d.allowed:
                continue
            out.append({
                "resource": r.code, "name": r.name, "provider": r.provider,
                "system": r.system, "method": r.route.method,
                "path": f"/s/{r.system}{r.route.path}", "share_type": r.share_type,
                "items": [_item_view(r, n, d.shape) for n in d.items],
                "until": d.until.isoformat() if d.until else None,
                "grants": list(d.grant_ids), "purpose": d.purpose, "reason": d.reason,
            })
        return out


def _item_view(resource: Resource, name: str, shaped: bool) -> dict[str, Any]:
    item = resource.item(name)
    if item is None:
        return {"name": name, "title": name, "mask": None, "encrypt": False}
    return {"name": name, "title": item.title, "mask": item.mask if shaped else None,
            "encrypt": item.encrypt and shaped}


def operator(name: str) -> Actor:
    return Actor(name=name, operator=True)
