"""Access control (访问控制, GB/T 22239-2019 8.1.4.2 d) and the three administrators
(三员分立, 8.1.5.1-8.1.5.3)."""

from __future__ import annotations

import ipaddress

import sqlalchemy as sa

from gateway.compliance.model import Check, State, names, verdict
from gateway.org import ADMIN_ROLES
from gateway.proxy.endpoint import ProxyConfig
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


# a forward-auth peer network wider than these holds hosts that are no front proxy
# (ours: one subnet of front proxies at most)
FORWARD_AUTH_MIN_PREFIX = {4: 24, 6: 64}


def forward_auth_peers(state: State) -> tuple[str, list[str]]:
    """Who may ask ``/auth/verify``: its answer carries the user's roles, department,
    the signed assertion and the request's cookies, for the front proxy alone."""
    s = state.settings
    peers = ProxyConfig.from_settings(s).forward_auth_from  # as the server reads them
    wide = []
    for entry in peers:
        net = ipaddress.ip_network(entry, strict=False)
        if not net.is_loopback and net.prefixlen < FORWARD_AUTH_MIN_PREFIX[net.version]:
            wide.append(entry)
    problems = [Text(
        "compliance.forward_auth_too_wide",
        "/auth/verify answers {entries}{unset}: any host there may read a user's roles, "
        "department, signed assertion and cookies with the user's token (name the front "
        "proxies in forward_auth_from, at most a /24 or a /64)",
        entries=", ".join(wide),
        unset="" if s.forward_auth_from else Text(
            "compliance.forward_auth_unset",
            " (forward_auth_from unset: loopback and trusted_proxies)"))] if wide else []
    return verdict(problems, [Text(
        "compliance.forward_auth_peers",
        "/auth/verify answers {peers} only; any other peer is refused 403 "
        "forward_auth_peer, audited, before a credential is read", peers=", ".join(peers))])


CHECKS = (
    Check("ac.least_privilege", Text(
        "compliance.title.least_privilege",
        "Least privilege (GB/T 22239-2019 8.1.4.2 d)"), least_privilege),
    Check("ac.separation_of_duties", Text(
        "compliance.title.separation_of_duties",
        "Separation of the three administrators, 三员分立 (GB/T 22239-2019 8.1.4.2 d, "
        "8.1.5)"), separation_of_duties),
    Check("ac.forward_auth_peers", Text(
        "compliance.title.forward_auth_peers",
        "Who may ask forward-auth, boundary access control (GB/T 22239-2019 8.1.3.2 a)"),
        forward_auth_peers),
)
