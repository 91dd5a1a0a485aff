"""Break-glass in the proxy: a decider after the catalogue's, and the marks.

While a person's break-glass (``gateway.break_glass``) is active, their requests to
its system (or, for a resource one, to the routes of that catalogue resource) are
admitted even without a policy line or a grant: the decision becomes an explicit
allow with ``rule`` ``break_glass``. It widens nothing else: another person, another
system, a delegated token (a system acting for the person), the person's token
through another department's client (that department's system acting for them,
``gateway.proxy.through``), a colleague acting for
the person under a delegation (委托), a catalogue resource a
system-wide one does not name, and an explicit deny line all stay as they were. A
resource one opens the request the catalogue matched to that resource (its route
and method: not another method on the route), never a resource not shared (不予共享:
the provider department only), and releases its shareable items in the clear, never
an item withheld from every consumer (``shareable: false``) nor a key the catalogue
does not list (``gateway.proxy.catalogue.open_in_emergency``).

Every request it covers is marked, whether or not it was needed: the audit record's
``extra.break_glass`` (its id) and ``extra.break_glass_needed``, the assertion's
``break_glass`` claim (``{id, system, resource, exp}``) and, for systems that take
plain identity headers, ``X-Govgate-Break-Glass: <id>``.
"""

from __future__ import annotations

import asyncio

from gateway.break_glass.active import ActiveBreakGlass
from gateway.proxy.admission import Decider, ProxyRequest
from gateway.proxy.catalogue import emergency_closed, open_in_emergency
from gateway.proxy.through import through_another_department
from policies import Decision

KEY = "break_glass"
HEADER = b"x-govgate-break-glass"


def break_glass_decider(active: ActiveBreakGlass) -> Decider:
    async def decide(req: ProxyRequest, decision: Decision) -> Decision:
        p = req.principal
        # one person's: never a system acting for them (RFC 8693, or their token
        # through another department's client: gateway.proxy.through) nor a colleague
        # acting for them (委托), whose call is decided as theirs
        if p.username is None or getattr(p, "actor", None) is not None \
                or getattr(p, "delegate", None) is not None \
                or through_another_department(p):
            return decision
        found = active.find(p.username, req.system.code, req.audit.resource)
        if found is None:
            return decision
        explicit_deny = not decision.allowed and decision.line is not None \
            and decision.line.effect == "deny"
        if not decision.allowed and not explicit_deny and found.resource is not None \
                and (closed := emergency_closed(req, found.resource)) is not None:
            # it does not cover this call, which is decided (and unmarked) as without it
            req.audit.extra["break_glass_not_opened"] = f"{found.id}: {closed}"
            return decision
        req.extra[KEY] = found
        req.audit.extra["break_glass"] = found.id
        req.audit.extra["break_glass_needed"] = not decision.allowed and not explicit_deny
        req.extra["assertion_claims"] = {KEY: found.claim()}
        req.extra["identity_headers"] = [(HEADER, found.id.encode("ascii"))]
        if not active.use_recorded(found.id):
            await asyncio.to_thread(active.mark_used, found.id)
        if decision.allowed or explicit_deny:
            return decision
        if found.resource is not None:
            open_in_emergency(req, found.id)
        return Decision(True, "break_glass",
                        f"break-glass {found.id} (dual-approved emergency access until "
                        f"{found.ends_at.isoformat()}); without it: {decision.reason}")

    return decide
