"""Signing in to a system while acting for another (委托; docs/delegation.md, "Acting"):
what ``/oauth2/authorize``, CAS and SAML ask of the portal session.

B's portal session with the ``gg_act`` choice (``gateway.proxy.acting``) signs in to a
system **named by the delegation** as A, acted for by B: the subject is A as A is now,
with ``act`` B and the delegation's id. A system the delegation does not name gets B's
own sign-in (never A's). A choice that is no longer in force (revoked, expired, A
disabled, another person's) is refused, as the proxy refuses it: it fails closed,
never falling back to B. The check reads the delegation at most a second old
(``ActingGrants.in_force``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from gateway.idp.oauth2.acting import ActingGrants, NotInForce
from gateway.idp.oauth2.rfc9068 import Subject
from gateway.proxy.acting import chosen, chosen_id
from gateway.web.portal.pages import render_message
from keys import KeyService


class ActingRefused(Exception):
    """The session chose a delegation that does not let it act now (message: why, for
    the audit record)."""

    def __init__(self, reason: str, delegation: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delegation = delegation


def chosen_delegation(keys: KeyService, sid: str, headers: Mapping[str, str]) -> int | None:
    """The delegation this portal session chose to act under, or None."""
    return chosen_id(keys, sid, chosen(headers))


def acting_subject(grants: ActingGrants, server: Any, keys: KeyService, sid: str,
                   headers: Mapping[str, str], own: Subject, system: str | None
                   ) -> Subject:
    """The subject a sign-in of ``own`` (B) to ``system`` is for: A acted for by B when
    the session acts under a delegation naming ``system``; ``own`` when it acts under
    none, or under one that does not name the system; ActingRefused when the choice is
    not in force."""
    number = chosen_delegation(keys, sid, headers)
    if number is None:
        return own
    d = grants.cache.get(number)
    if d is None or d.delegate != own.username:
        raise ActingRefused(f"delegation {number} is not one to {own.username}", number)
    try:
        grants.in_force(number, own.username, system)
    except NotInForce as exc:
        if d.live_at(grants.clock()):
            return own  # in force, but for other systems: B signs in as B
        raise ActingRefused(str(exc), number) from None
    a = server.subject(d.delegator, sid=own.sid, auth_time=own.auth_time, amr=own.amr)
    if a is None:
        raise ActingRefused(f"delegator {d.delegator} disabled or gone", number)
    return dataclasses.replace(a, act=own.username, delegation=number)


def acting_audit(subject: Subject, own: Subject | None = None) -> dict[str, Any]:
    """The audit record's ``extra`` for a sign-in acted for by a delegate, as the
    proxy's records have it."""
    if not subject.act:
        return {}
    out: dict[str, Any] = {"act": {"sub": subject.act}, "delegation": subject.delegation,
                           "delegated_as": "system"}
    if own is not None:
        out["acting_department"] = own.department
    return out


def refused_page(request: Any) -> Any:
    """The page a refused acting sign-in shows (403)."""
    return render_message(request, "dlg_refused", status=403,
                          detail_key="dlg_sign_in_refused")
