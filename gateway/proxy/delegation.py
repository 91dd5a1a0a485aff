"""A delegated token (RFC 8693 token exchange, ``gateway.idp.oauth2.rfc8693``) in the
proxy: system X calls acting for user U, and the request is allowed only when BOTH
may make it.

    audience   the token's ``aud`` must name the system called ({issuer}/s/{code})
               → 403 (``WrongAudience``), checked before anything is decided
    policy     decided twice: for the user (user, roles, department: not the client)
               and for the acting client (client, its department); a refusal of
               either refuses, its reason names the side (``delegated_policy``)
    catalogue  decided for each side too (``gateway.proxy.catalogue``); the items
               released are those granted to both, a side with no grant refuses
    audit      ``actor_user`` the user, ``actor_client`` the acting client,
               ``extra.act`` the act claim, ``extra.acting_department``

The two sides are principals of their own (``user_side``, ``client_side``), so that
every later step decides for one caller as it does for a token without ``act``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.errors import Forbidden
from gateway.idp.authenticator import Principal
from gateway.idp.oauth2.rfc8693 import acting_subject
from policies import Decision, Query, subjects_for

#: ``ProxyRequest.extra`` key: the two sides and their policy decisions
SIDES = "delegation"


class WrongAudience(Forbidden):
    code = "wrong_audience"
    title = "The token is for another system"


def user_side(p: Principal) -> Principal:
    """The user of a delegated principal, calling through the acting client (a grant
    bound to that client applies) but with the user's department and rights."""
    return dataclasses.replace(p, actor=None)


def client_side(p: Principal) -> Principal:
    """The acting client of a delegated principal, as its own client-credentials
    token would make it."""
    assert p.actor is not None
    return dataclasses.replace(
        p, subject=acting_subject(p.actor.client_id), username=None,
        department=p.actor.department, region=p.actor.region, roles=frozenset(),
        client_id=p.actor.client_id, name=None, actor=None)


def check_audience(p: Principal, issuer: str, system: str, audit: Any) -> None:
    """Record who acts for whom; WrongAudience unless the token is for ``system``."""
    assert p.actor is not None
    audit.extra["act"] = {"sub": acting_subject(p.actor.client_id)}
    audit.extra["acting_department"] = p.actor.department
    wanted = f"{issuer.rstrip('/')}/s/{system}"
    if wanted not in p.audiences:
        audit.reason = (f"the delegated token is for {', '.join(sorted(p.audiences))}, "
                        f"not {wanted}")
        raise WrongAudience("the token is not for this system")


def _query(p: Principal, req: Any, *, with_client: bool) -> Query:
    subjects = subjects_for(username=p.username, roles=p.roles, department=p.department,
                            client_id=p.client_id if with_client else None)
    return Query(subjects, p.department, req.target.object, req.method,
                 req.system.department, req.system.case_sensitive)


def delegated_policy(policies: Any, req: Any) -> Decision:
    """The policy decision for both sides of ``req.principal``; the sides and their
    decisions are left in ``req.extra[SIDES]`` for the deciders."""
    user, client = user_side(req.principal), client_side(req.principal)
    du = policies.decide(_query(user, req, with_client=False))
    dc = policies.decide(_query(client, req, with_client=True))
    req.extra[SIDES] = ((user, du), (client, dc))
    if dc.line is not None:
        req.audit.extra["acting_line_id"] = dc.line.id
    return both(user, du, client, dc)


def both(user: Principal, du: Decision, client: Principal, dc: Decision) -> Decision:
    """One decision of the two sides: allowed when both are, else refused with the
    reason of each side that refuses."""
    u = f"user {user.username}"
    c = f"acting client {client.client_id}"
    if du.allowed and dc.allowed:
        return Decision(True, du.rule, f"{u}: {du.reason}; {c}: {dc.reason}", du.line,
                        extra=du.extra)
    why = "; ".join(f"{who}: {d.reason}" for who, d in ((u, du), (c, dc)) if not d.allowed)
    refused = du if not du.allowed else dc
    line = du.line if not du.allowed and du.line is not None else (
        dc.line if not dc.allowed else None)
    return Decision(False, refused.rule, why, line, extra=refused.extra)


def sides(req: Any) -> tuple[tuple[Principal, Decision], tuple[Principal, Decision]] | None:
    """The two sides of a delegated request, or None for any other."""
    found = req.extra.get(SIDES)
    return found if isinstance(found, tuple) else None
