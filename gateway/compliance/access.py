"""Access control (访问控制, GB/T 22239-2019 8.1.4.2 d) and the three administrators
(三员分立, 8.1.5.1-8.1.5.3)."""

from __future__ import annotations

import sqlalchemy as sa

from gateway.compliance.model import Check, State, names, verdict
from gateway.org import ADMIN_ROLES
from gateway.tables import user_roles, users
from policies.tables import policy_lines
from texts import Text

# a line that opens every system
EVERY_SYSTEM = ("*", "/s/*")


def _admin_roles(state: State) -> dict[str, set[str]]:
    """Active accounts holding an admin role → all their roles."""
    with state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(users.c.username, user_roles.c.role_code)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(users.c.status == "active")).fetchall()
    roles: dict[str, set[str]] = {}
    for r in rows:
        roles.setdefault(r.username, set()).add(r.role_code)
    return {u: held for u, held in roles.items() if held & ADMIN_ROLES}


def separation_of_duties(state: State) -> tuple[str, list[str]]:
    admins = _admin_roles(state)
    problems: list[str] = []
    for username, held in sorted(admins.items()):
        two = sorted(held & ADMIN_ROLES)
        if len(two) > 1:
            problems.append(Text("compliance.two_admin_roles",
                                 "{user} holds {roles} (三员分立: one admin role per account)",
                                 user=username, roles=" + ".join(two)))
    for role in sorted(ADMIN_ROLES):
        if not any(role in held for held in admins.values()):
            problems.append(Text("compliance.admin_role_vacant",
                                 "no active account holds {role}", role=role))
    by_role = {role: sorted(u for u, held in admins.items() if role in held)
               for role in sorted(ADMIN_ROLES)}
    return verdict(problems, [
        Text("compliance.admins_held",
             "auditor: {auditor}; secadmin: {secadmin}; sysadmin: {sysadmin}",
             **{role: names(held) or "-" for role, held in by_role.items()}),
        Text("compliance.consoles_apart",
             "every write of roles refuses two admin roles on one account (gateway.org."
             "check_roles); each console and its API refuse the other two roles, audited"),
    ])


def least_privilege(state: State) -> tuple[str, list[str]]:
    admins = _admin_roles(state)
    problems: list[str] = []
    more = sorted(f"{u} ({', '.join(sorted(held - ADMIN_ROLES))})"
                  for u, held in admins.items() if held - ADMIN_ROLES)
    if more:
        problems.append(Text("compliance.admin_business_roles",
                             "admins who also hold business roles: {names}",
                             names=names(more)))
    with state.engine.connect() as conn:
        lines = conn.execute(sa.select(policy_lines).where(
            policy_lines.c.effect == "allow", policy_lines.c.object.in_(EVERY_SYSTEM))
            .order_by(policy_lines.c.id)).fetchall()
        total = conn.execute(sa.select(sa.func.count()).select_from(policy_lines)).scalar_one()
    if lines:
        problems.append(Text("compliance.lines_every_system",
                             "policy lines that open every system: {lines}",
                             lines=names([f"{r.id} (p, {r.subject}, {r.department}, "
                                           f"{r.object}, {r.action}, allow)" for r in lines])))
    facts = [] if more else [Text(
        "compliance.admins_only_admin", "{n} admin accounts, each with its admin role only: "
        "no business systems, no data applications", n=len(admins))]
    return verdict(problems, [
        *facts,
        Text("compliance.default_deny",
             "{n} policy lines; what no line allows is denied outside the system's own "
             "department, and the catalogue decides data shared across departments", n=total),
    ])


CHECKS = (
    Check("ac.least_privilege", Text(
        "compliance.title.least_privilege",
        "Least privilege (GB/T 22239-2019 8.1.4.2 d)"), least_privilege),
    Check("ac.separation_of_duties", Text(
        "compliance.title.separation_of_duties",
        "Separation of the three administrators, 三员分立 (GB/T 22239-2019 8.1.4.2 d, "
        "8.1.5)"), separation_of_duties),
)
