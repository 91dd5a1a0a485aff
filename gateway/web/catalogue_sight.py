"""What a caller of the catalogue sees and may decide, for the API and the portal alike.

A data steward or department head sees their own department's applications and grants
(as consumer or provider); a security admin (安全管理员) sees the departments their role
covers (department scope: the province's every one, a city's its own subtree). A step
refused on these grounds is audited as ``catalogue_refused``, whether it was asked for
through ``/api/v1/catalogue`` or the portal, and whether it read or changed something:
walking ids of other departments' objects is what an auditor looks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from audit import AuditRecord
from catalogue import Actor, NotAllowed
from gateway.department_scope import reach
from gateway.root import gateway_of

SECADMIN = "secadmin"


def sees_all(principal: Any) -> bool:
    """Whether the caller holds the security admin role (their reach still applies)."""
    return SECADMIN in set(principal.roles or ())


def reach_of(request: Request, principal: Any) -> frozenset[str] | None:
    """The departments the caller's security admin role covers; None: every one; empty
    for anyone else. Runs a query for a security admin: call it in the thread pool."""
    if not sees_all(principal):
        return frozenset()
    return reach(gateway_of(request).services.engine, principal.department)


def actor_of(request: Request, principal: Any) -> Actor:
    """The catalogue's actor for a signed-in person or a client's token (a query for a
    security admin: call it in the thread pool)."""
    name = principal.username or f"client:{principal.client_id}"
    return Actor(name, principal.department or None, frozenset(principal.roles or ()),
                 client=principal.client_id, reach=reach_of(request, principal))


def sight(request: Request, principal: Any) -> Callable[..., bool]:
    """Whether the caller sees an object of some departments (its consumer, its
    provider): their own department's, or one within a security admin's reach. Runs a
    query: call it in the thread pool."""
    mine = principal.department
    covered = reach_of(request, principal)

    def seen(*departments: str | None) -> bool:
        return bool(mine and mine in departments) or covered is None or any(
            d in covered for d in departments if d)

    return seen


def covering(request: Request, principal: Any) -> Callable[[Any], bool]:
    """Whether an application is within the caller's sight (its consumer's or its
    provider's department). Runs queries: call it in the thread pool."""
    providers = {r.code: r.provider for r in gateway_of(request).catalogue.resources()}
    seen = sight(request, principal)
    return lambda app: seen(app.consumer, providers.get(app.resource))


def deciding(request: Request, principal: Any) -> Callable[[Any], bool]:
    """Whether the caller decides an escalated application as the security admin: its
    provider is within their reach. Runs queries: call it in the thread pool."""
    providers = {r.code: r.provider for r in gateway_of(request).catalogue.resources()}
    actor = actor_of(request, principal)
    return lambda app: actor.is_secadmin_of(providers.get(app.resource))


def audit_refusal(request: Request, principal: Any, exc: NotAllowed) -> None:
    """A catalogue step the caller may not take (another department's application or
    grant), audited as the admin consoles' refusals are."""
    log = gateway_of(request).services.audit
    if log is not None:
        log.append_sync(AuditRecord(
            event_type="catalogue_refused", outcome="deny", status=403,
            actor_user=principal.username or None, actor_client=principal.client_id,
            department=principal.department or None, reason=str(exc.description)[:500],
            extra={"method": request.method, "path": request.url.path}))
