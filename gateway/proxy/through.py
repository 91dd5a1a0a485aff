"""A user's token issued to a client of another department: a request BY that client's
system on behalf of the user, decided for both.

A token carries user U of department D and the client C it was issued to, registered
to department E (``Principal.client_department``, as registered now). When E is D the
call is U's through D's own system, decided for U as always (the client's subject
among U's). When E is another department, or none (a client nobody registered: only
minted tokens name one), whatever the answer holds lands in E's system. So the policy
decides twice and the request passes only when both sides pass:

    user side    U's subjects (user, roles, ``dept:D``) in D's domain, without the
                 client's subject (it is decided on its own side)
    client side  ``client:C`` and ``dept:E`` in E's domain, as C's own
                 client-credentials token is decided; no registration: refused
                 (fail closed, ``no registration``)

Each side meets the default rule in its own department (a department reaches its own
systems): D's user through E's client reaches D's systems only where a line opens
them to E's client too. The reason names both sides (``user U of D: …; client C of
E: …``). The same intersection as a delegated token's (RFC 8693,
``gateway.proxy.delegation``) and as the catalogue's ``both`` on governed routes
(``gateway.proxy.catalogue``); Keycloak's authorization services reach it with a user
policy and a client policy under the unanimous decision strategy, X-Road by granting
the service to the calling subsystem (E's) and leaving the user to it.

:func:`decide_for` is the one reading: the proxy's and forward-auth's admission
(``gateway.proxy.admission``), the security administrator's decision test through it,
``govgate policy test --client`` and the portal's launcher all call it.
"""

from __future__ import annotations

from typing import Any

from policies import Decision, Query, subjects_for

#: ``ProxyRequest.extra`` key: the two sides of such a request, (department, decision)
SIDES = "through"


def through_another_department(p: Any) -> bool:
    """Whether principal ``p`` is a user's token through a client not registered to the
    user's department (or to none): ``catalogue.Caller.through_another_department``."""
    return (getattr(p, "username", None) is not None
            and getattr(p, "client_id", None) is not None
            and getattr(p, "actor", None) is None
            and getattr(p, "client_department", None) != getattr(p, "department", None))


def decide_for(policies: Any, p: Any, obj: str, method: str, owner: str | None,
               case_sensitive: bool = False) -> tuple[Decision, tuple[Any, ...] | None]:
    """The policy decision for principal ``p`` calling ``method`` on ``obj`` of a system
    of ``owner``, and for a token through another department's client its two sides
    (``((D, user side), (E, client side))``), else None."""
    if not through_another_department(p):
        return policies.decide(Query(
            subjects_for(username=p.username, client_id=p.client_id, roles=p.roles,
                         department=p.department),
            p.department, obj, method, owner, case_sensitive)), None
    user = policies.decide(Query(
        subjects_for(username=p.username, roles=p.roles, department=p.department),
        p.department, obj, method, owner, case_sensitive))
    home = p.client_department
    if home is None:
        client = Decision(False, "default", "no registration: the client's system "
                          "belongs to no department")
    else:
        client = policies.decide(Query(subjects_for(client_id=p.client_id, department=home),
                                       home, obj, method, owner, case_sensitive))
    return both(p, user, client), ((p.department, user), (home, client))


def both(p: Any, user: Decision, client: Decision) -> Decision:
    """One decision of the two sides: allowed when both are; refused with the reason of
    each side that refuses, and its deny line when one refuses by a line (which the
    catalogue lets win over a grant)."""
    u = f"user {p.username} of {p.department}"
    c = f"client {p.client_id} of {p.client_department or 'no registration'}"
    if user.allowed and client.allowed:
        rule = "policy" if "policy" in (user.rule, client.rule) else user.rule
        return Decision(True, rule, f"{u}: {user.reason}; {c}: {client.reason}",
                        user.line or client.line)
    refusing = [(who, d) for who, d in ((u, user), (c, client)) if not d.allowed]
    by_line = next((d for _, d in refusing if d.line is not None), None)
    first = by_line or refusing[0][1]
    return Decision(False, first.rule, "; ".join(f"{who}: {d.reason}" for who, d in refusing),
                    first.line)
