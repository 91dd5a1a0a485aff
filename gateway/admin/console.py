"""One administrator's request at a console or the admin API: the role that console
needs (三员分立: ``sysadmin``, ``secadmin`` and ``auditor`` each have their own, and
no account holds two), the departments the admin may touch
(``gateway.department_scope``), and the audit trail. Every refusal is audited before it
is raised (403)."""

from __future__ import annotations

from typing import Any, NoReturn

from gateway.admin.trail import Admin, Trail
from gateway.department_scope import DepartmentScope, department_scope
from gateway.errors import Forbidden
from gateway.org import Org
from gateway.root import Gateway
from texts import Text

SYSADMIN, SECADMIN, AUDITOR = "sysadmin", "secadmin", "auditor"

# the refusal a console gives anyone without its role
NEEDS: dict[str, Text] = {
    SYSADMIN: Text("admin.sysadmin_only",
                   "this is the system administrator's work (三员分立)"),
    SECADMIN: Text("admin.secadmin_only",
                   "this is the security administrator's work (三员分立)"),
    AUDITOR: Text("admin.auditor_only",
                  "this is the audit administrator's work (三员分立)"),
}


class Console:
    """Constructed per request; refuses (audited, 403) anyone without ``ROLE``."""

    ROLE = ""

    def __init__(self, gateway: Gateway, admin: Admin, what: str) -> None:
        self.gateway = gateway
        self.services = services = gateway.services
        self.admin = admin
        self.what = what
        self.trail = Trail(services, admin)
        if self.ROLE not in admin.roles:
            self.refuse(NEEDS[self.ROLE], needed=self.ROLE)
        self.scope: DepartmentScope = department_scope(services.engine, admin.department)

    def refuse(self, why: Text, **detail: Any) -> NoReturn:
        self.trail.refused(self.what, str(why), **detail)
        raise Forbidden(why)

    def within(self, department: str | None, *, target: str | None = None) -> None:
        """Refuse a department outside the admin's scope. With ``target`` (an object
        the admin named: a user, a system, a client) the refusal does not name the
        object's department, which would tell the admin whose the object is."""
        if target is not None and not self.scope.covers(department):
            self.refuse(Text(
                "admin.out_of_scope_target",
                "{target!r} is not of {own!r} or a department below it: an administrator "
                "of a department manages that department only",
                target=target, own=self.admin.department),
                department=department, target=target)
        if not self.scope.covers(department):
            self.refuse(Text(
                "admin.out_of_scope",
                "department {department!r} is not {own!r} or below it: an administrator "
                "of a department manages that department only",
                department=department or "", own=self.admin.department),
                department=department)

    def province_only(self) -> None:
        if not self.scope.province:
            self.refuse(Text("admin.province_only",
                             "only a province-level administrator does this"))

    def org(self) -> Org:
        """The organisation, reporting its changes into this action's record."""
        return Org(self.services.engine, clock=self.services.clock,
                   on_change=self.trail.collect)
