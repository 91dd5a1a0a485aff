"""Gateway wiring of the catalogue: one ``Catalogue`` and ``Workflow`` per Services,
the state-file sections, the audit callable, the keyed hash for pseudonyms,
and the consumer's registered keys for encrypted items.

The catalogue package imports nothing of the gateway; everything it needs
from here is handed in: department, system and client lookups, a
``record(event, detail)`` that writes the audit record, and a ``mac``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogue import Caller, Catalogue, CatalogueDecision, Resource, Shaped, Workflow, shape
from catalogue import store as catalogue_store
from catalogue.calendar import WorkCalendar
from catalogue.statefile import CalendarSection, CatalogueSection, GrantsSection, Lookups
from gateway.statefile import Change
from gateway.tables import clients, departments, systems

if TYPE_CHECKING:
    from gateway.services import Services

_CATALOGUE = "catalogue"
_WORKFLOW = "catalogue_workflow"
PSEUDONYM_PURPOSE = "catalogue_pseudonym"


def _departments(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(departments.c.code))}


def _systems(conn: Connection) -> dict[str, str]:
    return {r.code: r.department_code
            for r in conn.execute(sa.select(systems.c.code, systems.c.department_code))}


def _clients(conn: Connection) -> dict[str, str]:
    return {r.client_id: r.department_code
            for r in conn.execute(sa.select(clients.c.client_id, clients.c.department_code))}


LOOKUPS = Lookups(departments=_departments, systems=_systems, clients=_clients)


def _change(action: str, kind: str, key: str, fields: tuple[str, ...] = ()) -> Change:
    return Change(action, kind, key, fields)


def record_for(services: Services) -> Callable[[str, dict[str, Any]], None]:
    """The audit callable: a full audit record when the audit log is wired, else the
    services' admin-change hook."""

    def record(event: str, detail: dict[str, Any]) -> None:
        log = services.audit
        if log is not None and hasattr(log, "append_sync"):
            from audit import AuditRecord

            extra = {k: v for k, v in detail.items()
                     if k not in ("actor", "department", "resource", "items", "purpose",
                                  "reason", "actor_client")}
            log.append_sync(AuditRecord(
                event_type=event, outcome="success", actor_user=detail.get("actor"),
                actor_client=detail.get("actor_client"), department=detail.get("department"),
                resource=detail.get("resource"), items=tuple(detail.get("items") or ()),
                purpose=detail.get("purpose"), reason=detail.get("reason"), extra=extra,
            ))
            return
        services.record_admin_change(event, detail)

    return record


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def _invalidate(services: Services) -> Callable[[], None]:
    def invalidate() -> None:
        found = services.extra.get(_CATALOGUE)
        if found is not None:
            found.invalidate()
    return invalidate


def catalogue_section(services: Services) -> CatalogueSection:
    return CatalogueSection(lookups=LOOKUPS, change=_change, clock=services.clock, warn=_warn,
                            after_write=_invalidate(services))


def grants_section(services: Services) -> GrantsSection:
    return GrantsSection(lookups=LOOKUPS, change=_change, clock=services.clock,
                         after_write=_invalidate(services))


def calendar_section(services: Services) -> CalendarSection:
    return CalendarSection(change=_change, clock=services.clock)


def stored_calendar(services: Services) -> Callable[[], WorkCalendar]:
    """How the workflow reads the working days: the operator's calendar as stored now
    (a few rows, read per step, so an import applies at once in every process)."""

    def read() -> WorkCalendar:
        with services.engine.connect() as conn:
            return WorkCalendar.of(catalogue_store.load_calendar(conn))

    return read


def get_catalogue(services: Services) -> Catalogue:
    found = services.extra.get(_CATALOGUE)
    if found is None:
        found = Catalogue(services.engine, record=record_for(services), lookups=LOOKUPS,
                          clock=services.clock)
        services.extra[_CATALOGUE] = found
    return found


def client_department(services: Services) -> Callable[[str], str | None]:
    def lookup(client_id: str) -> str | None:
        with services.engine.connect() as conn:
            return conn.execute(sa.select(clients.c.department_code)
                                .where(clients.c.client_id == client_id)).scalar()
    return lookup


def get_workflow(services: Services) -> Workflow:
    found = services.extra.get(_WORKFLOW)
    if found is None:
        audit = record_for(services)
        invalidate = _invalidate(services)

        def record(event: str, detail: dict[str, Any]) -> None:
            invalidate()  # this process sees its own change at once
            audit(event, detail)

        found = Workflow(services.engine, record=record, clock=services.clock,
                         client_department=client_department(services),
                         due_working_days=services.settings.catalogue_due_working_days,
                         calendar=stored_calendar(services))
        services.extra[_WORKFLOW] = found
    return found


def mac_for(services: Services, department: str | None) -> Callable[[bytes], bytes]:
    """The keyed hash for pseudonyms, per consumer department: two departments get
    different pseudonyms for the same value and cannot join their extracts."""
    prefix = (department or "").encode("utf-8") + b"\x00"

    def mac(data: bytes) -> bytes:
        return services.keys.mac(PSEUDONYM_PURPOSE, prefix + data)

    return mac


def client_jwks(services: Services, client_id: str | None) -> dict[str, Any] | None:
    if not client_id:
        return None
    with services.engine.connect() as conn:
        return conn.execute(sa.select(clients.c.jwks).where(clients.c.client_id == client_id)
                            ).scalar()


def shape_response(
    services: Services,
    resource: Resource,
    decision: CatalogueDecision,
    caller: Caller,
    body: bytes,
    content_type: str | None,
) -> Shaped:
    """The proxy's shaping step for a matched, allowed request (ShapeError: 502)."""
    no_key = ("the consuming client registered no encryption key" if caller.client_id
              else "encrypted items go only to a registered client, not to a browser session")
    return shape(
        body, records=resource.route.records, items=resource.items, allowed=decision.items,
        content_type=content_type, recipient_jwks=client_jwks(services, caller.client_id),
        no_key_reason=no_key, mac=mac_for(services, caller.department),
    )
