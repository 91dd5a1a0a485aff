"""Who may read a resource, which items, until when: a pure function of the
resource, the caller, the grants and the time.

    provider department        every item, unshaped            (reason: provider)
    resource not published     denied
    unconditional (无条件)     any department: the shareable items
    conditional  (有条件)      an active grant for the caller's department (and its client,
                               when the grant names one, while that client is still
                               registered to the consumer department), within its dates:
                               the granted items that are still shareable
    none (不予)                denied to everyone but the provider

A grant only narrows what the catalogue allows: items the resource no longer
lists or withholds (``shareable: false``) are never released. Several
matching grants add up (the union of their items; ``until`` is the latest).
Every decision carries its reason, naming the grant(s) used, or why none
applied (expired, revoked, another client, not yet valid).

The consumer is the system that receives the data. A user's token through a client
(a department's system) is decided for the user's department AND, when the client is
registered to another department (or to none: an unregistered client), for the
client's (``Caller.client_side``); :func:`both` is the one reading of two such
decisions (a delegated token's two sides too): the items allowed to both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from catalogue.model import CONDITIONAL, NONE, PUBLISHED, UNCONDITIONAL, Grant, Resource


@dataclass(frozen=True)
class Caller:
    department: str | None
    client_id: str | None = None
    username: str | None = None
    # the department the client is registered to now (the gateway's client registry):
    # a grant naming the client holds only while it is the consumer's; None, unknown
    client_department: str | None = None

    @property
    def through_another_department(self) -> bool:
        """A user's call through a client not registered to the user's department (or
        to none known): the data lands in the client's system, which must be allowed
        it too."""
        return (self.username is not None and self.client_id is not None
                and self.client_department != self.department)

    @property
    def receiver(self) -> str | None:
        """The department whose system receives the answer, whose pseudonyms it gets:
        the client's as registered (a user's token through it, or its own token), the
        caller's for a browser session (no client) or a client of no registration
        (which receives nothing governed)."""
        if self.client_id is not None and self.client_department is not None:
            return self.client_department
        return self.department

    def client_side(self) -> Caller:
        """The client of a user's call, as its own client-credentials token would be."""
        return Caller(self.client_department, self.client_id, None, self.client_department)

    def sides(self) -> tuple[str, str]:
        """Who the two sides of a call through another department's client are, as
        reasons name them."""
        return (f"user {self.username} of {self.department}",
                f"client {self.client_id} of {self.client_department or 'no registration'}")


@dataclass(frozen=True)
class CatalogueDecision:
    """``allowed`` with the items the caller may receive and why.

    ``shape`` is False only for the provider department (its own data, unshaped).
    ``grant_ids`` name the grants that allowed it; ``until`` is when the right ends
    (None: no end); ``purpose`` the granted purpose(s) for the audit record.
    """

    allowed: bool
    reason: str
    resource: str
    rule: str  # provider | unconditional | grant | not_published | no_grant | not_shared
    items: tuple[str, ...] = ()
    shape: bool = True
    grant_ids: tuple[int, ...] = ()
    until: datetime | None = None
    purpose: str | None = None


def decide(
    resource: Resource, caller: Caller, grants: Iterable[Grant], now: datetime
) -> CatalogueDecision:
    """The catalogue's decision for ``caller`` reading ``resource`` at ``now``."""
    code = resource.code
    if caller.department and caller.department == resource.provider:
        return CatalogueDecision(
            True, f"provider department {resource.provider} of {code}", code, "provider",
            resource.item_names, shape=False,
        )
    if resource.status != PUBLISHED:
        return CatalogueDecision(False, f"resource {code} is {resource.status}", code,
                                 "not_published")
    if not caller.department:
        return CatalogueDecision(False, "caller has no department", code, "no_grant")
    if resource.share_type == UNCONDITIONAL:
        return CatalogueDecision(
            True, f"{code} is shared unconditionally (无条件共享)", code, UNCONDITIONAL,
            resource.shareable_items,
        )
    if resource.share_type == NONE:
        return CatalogueDecision(
            False, f"{code} is not shared (不予共享): provider department "
            f"{resource.provider} only", code, "not_shared",
        )
    assert resource.share_type == CONDITIONAL
    shareable = resource.shareable_items
    used: list[Grant] = []
    misses: list[str] = []
    for g in sorted(grants, key=lambda g: g.id):
        if g.resource != code or g.consumer != caller.department:
            continue
        if g.client_id is not None and g.client_id != caller.client_id:
            misses.append(f"{g.describe()} is for client {g.client_id}")
            continue
        if g.client_id is not None and caller.client_department != g.consumer:
            # the client was re-registered under another department: the system that
            # would receive the data is no longer the consumer's
            misses.append(f"{g.describe()} is for client {g.client_id}, now a client of "
                          f"{caller.client_department or 'no department'}")
            continue
        state = g.state_at(now)
        if state == "active":
            used.append(g)
        elif state == "expired":
            misses.append(f"{g.describe()} expired after {g.until.isoformat()}")
        elif state == "revoked":
            misses.append(f"{g.describe()} was revoked")
        else:
            misses.append(f"{g.describe()} is valid from {g.valid_from}")
    if not used:
        why = "; ".join(misses) if misses else f"no grant for department {caller.department}"
        return CatalogueDecision(False, f"{code} is conditional (有条件共享): {why}", code,
                                 "no_grant")
    granted = {i for g in used for i in g.items}
    items = tuple(i for i in shareable if i in granted)
    ids = tuple(g.id for g in used)
    purposes = sorted({g.purpose for g in used})
    return CatalogueDecision(
        True,
        ", ".join(g.describe() for g in used),
        code,
        "grant",
        items,
        grant_ids=ids,
        until=max(g.ends_at() for g in used),
        purpose="; ".join(purposes),
    )


def both(first: CatalogueDecision, second: CatalogueDecision,
         names: tuple[str, str]) -> CatalogueDecision:
    """One decision for a request two callers make together (a user through a client of
    another department, a delegated token's user and acting client; ``names`` say who
    each is in the reason): allowed when both are, the items allowed to both (in the
    first's order), shaped unless neither is shaped, until the earlier end."""
    named = tuple(zip(names, (first, second), strict=True))
    refused = [(n, d) for n, d in named if not d.allowed]
    if refused:
        return CatalogueDecision(False, "; ".join(f"{n}: {d.reason}" for n, d in refused),
                                 first.resource, refused[0][1].rule)
    items = tuple(i for i in first.items if i in second.items)
    if not items:
        return CatalogueDecision(False, f"{first.resource}: no item is granted to both "
                                 + " and ".join(f"{n} ({', '.join(d.items)})" for n, d in named),
                                 first.resource, "no_grant")
    ends = [d.until for d in (first, second) if d.until is not None]
    return CatalogueDecision(
        True, "; ".join(f"{n}: {d.reason}" for n, d in named), first.resource,
        "grant" if "grant" in (first.rule, second.rule) else first.rule, items,
        shape=first.shape or second.shape,
        grant_ids=tuple(dict.fromkeys((*first.grant_ids, *second.grant_ids))),
        until=min(ends) if ends else None,
        purpose="; ".join(p for p in dict.fromkeys((first.purpose, second.purpose)) if p)
        or None)
