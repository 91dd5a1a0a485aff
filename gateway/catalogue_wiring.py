"""Gateway wiring of the catalogue: building its ``Catalogue`` and ``Workflow``
(called by the composition root, ``gateway.root``), its state-file sections, and
the audit callable they write through.

The catalogue package imports nothing of the gateway; everything it needs
from here is handed in: department, system and client lookups, a
``record(event, detail)`` that writes the audit record, and a ``mac``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from audit import AuditRecord
from catalogue import Catalogue, Workflow
from catalogue import store as catalogue_store
from catalogue.calendar import WorkCalendar
from catalogue.model import DEPT_HEAD
from catalogue.statefile import CalendarSection, CatalogueSection, GrantsSection, Lookups
from gateway.services import Services
from gateway.tables import clients, departments, systems, user_roles, users


def _departments(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(departments.c.code))}


def _systems(conn: Connection) -> dict[str, str]:
    return {r.code: r.department_code
            for r in conn.execute(sa.select(systems.c.code, systems.c.department_code))}


def _clients(conn: Connection) -> dict[str, str]:
    return {r.client_id: r.department_code
            for r in conn.execute(sa.select(clients.c.client_id, clients.c.department_code))}


LOOKUPS = Lookups(departments=_departments, systems=_systems, clients=_clients)


def record_for(services: Services) -> Callable[[str, dict[str, Any]], None]:
    """The audit callable: a full audit record when the audit log is wired, else the
    services' admin-change hook."""

    def record(event: str, detail: dict[str, Any]) -> None:
        log = services.audit
        if log is not None:
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


def catalogue_section(services: Services, catalogue: Catalogue) -> CatalogueSection:
    return CatalogueSection(lookups=LOOKUPS, clock=services.clock, warn=_warn,
                            after_write=catalogue.invalidate)


def grants_section(services: Services, catalogue: Catalogue) -> GrantsSection:
    return GrantsSection(lookups=LOOKUPS, clock=services.clock,
                         after_write=catalogue.invalidate)


def calendar_section(services: Services) -> CalendarSection:
    return CalendarSection(clock=services.clock)


def stored_calendar(services: Services) -> Callable[[], WorkCalendar]:
    """How the workflow reads the working days: the operator's calendar as stored now
    (a few rows, read per step, so an import applies at once in every process)."""

    def read() -> WorkCalendar:
        with services.engine.connect() as conn:
            return WorkCalendar.of(catalogue_store.load_calendar(conn))

    return read


def open_catalogue(services: Services) -> Catalogue:
    return Catalogue(services.engine, record=record_for(services), lookups=LOOKUPS,
                     clock=services.clock)


def client_department(services: Services) -> Callable[[str], str | None]:
    def lookup(client_id: str) -> str | None:
        with services.engine.connect() as conn:
            return conn.execute(sa.select(clients.c.department_code)
                                .where(clients.c.client_id == client_id)).scalar()
    return lookup


def open_workflow(services: Services, catalogue: Catalogue) -> Workflow:
    audit = record_for(services)

    def record(event: str, detail: dict[str, Any]) -> None:
        catalogue.invalidate()  # this process sees its own change at once
        audit(event, detail)

    def has_head(conn: Connection, department: str) -> bool:
        return conn.execute(
            sa.select(users.c.id)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(users.c.department_code == department, users.c.status == "active",
                   user_roles.c.role_code == DEPT_HEAD).limit(1)).first() is not None

    return Workflow(services.engine, record=record, clock=services.clock,
                    client_department=client_department(services), has_head=has_head,
                    due_working_days=services.settings.catalogue_due_working_days,
                    calendar=stored_calendar(services))
