"""One SCIM request's client: who it is (a registered OAuth2 client with the ``scim``
scope), the departments it may see and change (its own and those below it, or all for
a client of a province-level department, as ``gateway.department_scope`` scopes an
administrator) and the audit trail its changes go into (actor ``client:<id>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from gateway.admin.scim.errors import ScimError
from gateway.admin.trail import Admin, Trail
from gateway.department_scope import DepartmentScope, department_scope
from gateway.idp.sign_out import SignedOut
from gateway.root import Gateway
from gateway.tables import clients, departments


@dataclass
class ScimContext:
    gateway: Gateway
    client_id: str
    department: str
    scope: DepartmentScope
    trail: Trail
    base: str  # the absolute URL of /scim/v2, for meta.location and $ref
    #: the users an action signed out: the web layer tells their relying parties
    signed_out: list[SignedOut] = field(default_factory=list)

    def refuse(self, what: str, detail: str, **extra: Any) -> ScimError:
        """A 403, audited as a refused admin action."""
        self.trail.refused(what, detail, **extra)
        return ScimError(403, detail)

    def within(self, what: str, department: str | None) -> None:
        if not self.scope.covers(department):
            raise self.refuse(what, f"department {department!r} is outside this client's "
                                    f"scope ({self.department!r} and below)",
                              department=department)

    def departments(self) -> list[str]:
        with self.gateway.services.engine.connect() as conn:
            codes = [r.code for r in conn.execute(
                sa.select(departments.c.code).order_by(departments.c.code))]
        return [c for c in codes if self.scope.covers(c)]


def scim_context(gateway: Gateway, client_id: str, *, base: str, source_ip: str | None,
                 request_id: str | None) -> ScimContext | None:
    """The context of an active registered client, or None (unknown or disabled): the
    client's department is read now, not from the token."""
    engine = gateway.services.engine
    with engine.connect() as conn:
        row = conn.execute(sa.select(clients.c.department_code, clients.c.status)
                           .where(clients.c.client_id == client_id)).first()
    if row is None or row.status != "active":
        return None
    admin = Admin(username=f"client:{client_id}", department=row.department_code,
                  client_id=client_id,
                  roles=frozenset({"scim"}), source_ip=source_ip, via="scim",
                  request_id=request_id)
    return ScimContext(gateway, client_id, row.department_code,
                       department_scope(engine, row.department_code),
                       Trail(gateway.services, admin), base)
