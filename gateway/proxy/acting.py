"""B acting for A under a delegation (委托, ``gateway.delegations``), in the proxy.

B signs in as B; choosing "act for A" in the portal sets the ``gg_act`` cookie to the
delegation's id with a MAC binding it to B's portal session (``choice``;
``/portal/delegations``): a value that is not this session's choice is ignored. On
each request riding on B's portal session with that cookie, :class:`ActingFor` checks
the delegation against the database (at most a second old, ``DelegationCache``) and the clock:

    refused (403)   unknown, not B's, not approved, rejected, revoked, not started or
                    expired, A disabled or gone, the system neither delegated nor
                    opened by a delegated role that A still holds
    admitted        the principal becomes A as A is now (department, region), with
                    A's roles on a delegated system (policy and catalogue decide as
                    for A), else only the delegated roles A still holds, and only a
                    policy line of those roles opens the system (``roles_only``);
                    ``delegate`` B and ``delegation`` the id.

The assertion then has ``sub`` A and ``act: {"sub": B}``; the plain identity headers
add ``X-Govgate-Acting-User: B``; the audit record has ``actor_user`` A and
``extra.act`` ``{"sub": B}``, ``extra.delegation``, ``extra.acting_department`` (B's).
A bearer token is never turned: the cookie is read for a portal session only (the
gateway's own cookies never reach an upstream, ``gateway.proxy.headers``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from http.cookies import SimpleCookie
from typing import Any

from gateway.delegations import DelegationCache
from gateway.errors import Forbidden
from gateway.live_users import LiveUsers
from gateway.org import ADMIN_ROLES
from gateway.services import Services
from keys import InvalidSignature, KeyService
from policies import Decision, Query, subjects_for

ACT_COOKIE = "gg_act"
MAC_PURPOSE = "delegation_choice"
# ``extra`` of the audit record: "system" (named by the delegation) or "roles"
DELEGATED_AS = "delegated_as"


class NotDelegated(Forbidden):
    code = "not_delegated"
    title = "Not delegated"


def chosen(headers: Mapping[str, str]) -> str | None:
    """The ``gg_act`` cookie's value in the request's headers, or None."""
    raw = headers.get("cookie")
    if not raw or ACT_COOKIE not in raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a cookie header the parser refuses: no choice made
        return None
    morsel = jar.get(ACT_COOKIE)
    return morsel.value if morsel is not None else None


def choice(keys: KeyService, session_id: str, delegation_id: int) -> str:
    """The ``gg_act`` value for choosing ``delegation_id`` in the portal session
    ``session_id``: the id and a MAC over both, so that a value set by anyone else (a
    sibling subdomain can set cookies for the parent domain) or kept from another
    session chooses nothing."""
    tag = keys.mac(MAC_PURPOSE, f"{session_id}:{delegation_id}".encode())
    return f"{delegation_id}.{tag.hex()}"


def chosen_id(keys: KeyService, session_id: str | None, value: str | None) -> int | None:
    """The delegation a ``gg_act`` value chose in this session, or None (none chosen,
    or not in this session: ignored, the person acts as themselves)."""
    number, _, tag = (value or "").partition(".")
    if not session_id or not number.isdigit() or len(number) > 9 or not tag:
        return None
    try:
        keys.check_mac(MAC_PURPOSE, f"{session_id}:{number}".encode(), bytes.fromhex(tag))
    except (InvalidSignature, ValueError):
        return None
    return int(number)


def acting_cache(services: Services) -> DelegationCache:
    """The delegations as the proxy checks them: at most a second old, cleared at once
    by a change made in this process."""
    cache = DelegationCache(services.engine)
    services.on_admin_change(cache.clear)
    return cache


class ActingFor:
    """Turn B's session principal into "A, acted for by B" (module docstring)."""

    def __init__(self, cache: DelegationCache, users: LiveUsers,
                 clock: Callable[[], datetime], keys: KeyService) -> None:
        self.cache = cache
        self.keys = keys
        self.users = users
        self.clock = clock

    def __call__(self, principal: Any, headers: Mapping[str, str], system: str,
                 audit: Any) -> Any:
        if getattr(principal, "via", None) != "session" or principal.username is None:
            return principal
        number = chosen_id(self.keys, principal.session_id, chosen(headers))
        if number is None:
            return principal
        audit.extra["act"] = {"sub": principal.username}
        audit.extra["acting_department"] = principal.department
        d = self.cache.get(number)
        audit.extra["delegation"] = number
        if d is None or d.delegate != principal.username:
            audit.reason = f"delegation {number} is not one to {principal.username}"
            raise NotDelegated("no such delegation to you")
        audit.actor_user = d.delegator
        now = self.clock()
        if not d.live_at(now):
            state = d.state_at(now)
            audit.reason = (f"delegation {d.id} is {state}" if state != "approved"
                            else f"delegation {d.id} starts at {d.starts_at.isoformat()}")
            raise NotDelegated(f"the delegation is not in force ({state})")
        a = self.users.get(d.delegator)
        if a is None or not a.active:
            audit.reason = f"delegator {d.delegator} disabled or gone"
            raise NotDelegated("the delegating user is no longer active")
        b = self.users.get(principal.username)
        moved = next((who for who, live in ((d.delegator, a), (principal.username, b))
                      if live is None or live.department != d.department), None)
        if moved is not None:
            # its head approved it for the people of that department: one who has moved
            # out ends it (as for the approval and for starting to act)
            audit.reason = f"{moved} is no longer in {d.department}, where delegation " \
                           f"{d.id} was approved"
            raise NotDelegated("a party of the delegation has moved to another department")
        audit.department = a.department
        if system in d.systems:
            roles = a.roles - ADMIN_ROLES
            audit.extra[DELEGATED_AS] = "system"
        else:
            audit.extra[DELEGATED_AS] = "roles"
            roles = frozenset(d.roles) & a.roles - ADMIN_ROLES
            if not roles:
                audit.reason = (f"delegation {d.id} names neither the system {system} "
                                f"nor a role {d.delegator} still holds")
                raise NotDelegated("this system is not delegated")
        # what is signed for A acted for by B (a per-caller assertion reused for 30 s)
        # states the delegation: it ends with it
        ends = d.ends_at.timestamp()
        held = getattr(principal, "expires_at", None)
        return dataclasses.replace(
            principal, subject=d.delegator, username=d.delegator, department=a.department,
            region=a.region, roles=roles, name=a.name, delegate=principal.username,
            delegation=d.id, expires_at=ends if held is None else min(held, ends))


def roles_only(policies: Any, req: Any) -> Decision:
    """The policy decision for a system reached through delegated roles only
    (``lent_roles_decide`` for the request's principal)."""
    p = req.principal
    return lent_roles_decide(policies, p.username, p.roles, p.department, p.delegation,
                             req.target.object, req.method, req.system.department,
                             req.system.case_sensitive)


def lent_roles_decide(policies: Any, delegator: str, roles: frozenset[str],
                      department: str, delegation: int | None, obj: str, method: str,
                      owner: str, case_sensitive: bool = False) -> Decision:
    """Allowed by a policy line of the lent ``roles`` (never by A's own lines, A's
    department's or the default rule, which would open every system of A's
    department), and not refused for A holding only those roles (A's deny lines still
    win)."""
    whole: Decision = policies.decide(Query(
        subjects_for(username=delegator, roles=roles, department=department),
        department, obj, method, owner, case_sensitive))
    if not whole.allowed:
        return whole
    decision: Decision = policies.decide(Query(subjects_for(roles=roles), department, obj,
                                               method, owner, case_sensitive))
    if decision.allowed and decision.rule != "policy":
        return Decision(False, "delegation",
                        f"delegation {delegation}: no policy line of the delegated roles "
                        f"({', '.join(sorted(roles))}) opens this system", None)
    return decision
