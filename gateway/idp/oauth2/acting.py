"""A person acting for another (委托, ``gateway.delegations``) in the identity
provider's answers: B, signed in and acting for A in the portal, signs in to a system
that a delegation of A's names (docs/delegation.md, "Acting").

The authorization endpoint (``gateway.web.oauth2_acting``) then issues the code for A
with ``act`` B; this module remembers, for the code, then for the refresh-token family
(and for a CAS ticket), the delegation it was issued under (``idp_acting``), and checks
at each use that it is still in force for that system: B's, approved, started, not
ended, not revoked, naming the client's system, A active. The delegation is read at
most a second old (``DelegationCache``; a change made in this process clears it at
once). A refresh after the delegation ended is refused (``invalid_grant``).

A binding outlives its delegation by ``KEEP_ENDED`` and then goes (``purge``, in the
gateway's maintenance round), but never while its refresh family could still be
used: a grant found unbound would be A's own, not A's acted for by B. The
delegation and its audit records stay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from gateway.delegation_tables import delegations
from gateway.delegations import APPROVED, REQUESTED, Delegation, DelegationCache
from gateway.idp.oauth2.rfc9068 import Subject
from gateway.idp.oauth2.tables import acting, refresh_tokens
from gateway.services import Services

#: how long a binding is kept after its delegation ended: longer than an authorization
#: code or a CAS ticket issued under it lives (a refresh family is checked itself)
KEEP_ENDED = timedelta(days=1)
FAMILY = "family:"  # the key prefix of a refresh-token family's binding
# the key prefix of an ended family still to be recorded (gateway.idp.oauth2.acting_ends):
# never purged, or an audit log down for a day would lose the record
ENDED = "ended:"


def family_of(grant_key: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """The refresh family of a binding's key ``family:<id>`` (no family's for others)."""
    return sa.func.substr(grant_key, len(FAMILY) + 1)


@dataclass(frozen=True)
class Acting:
    """The delegation a grant was issued under, and its delegate (B)."""

    delegation: int
    delegate: str


class NotInForce(Exception):
    """The delegation no longer lets B act for A on this system (the message says why,
    for the audit record and the ``error_description``)."""


class ActingGrants:
    """Remembers and checks the delegation of codes, refresh families, CAS tickets."""

    def __init__(self, services: Services) -> None:
        self.engine = services.engine
        self.clock: Callable[[], datetime] = services.clock
        self.cache = DelegationCache(services.engine)
        services.on_admin_change(self.cache.clear)

    def in_force(self, delegation: int, delegate: str, system: str | None) -> Delegation:
        """The delegation, when it lets ``delegate`` act now on ``system``; else
        NotInForce."""
        d = self.cache.get(delegation)
        if d is None or d.delegate != delegate:
            raise NotInForce(f"delegation {delegation} is not one to {delegate}")
        now = self.clock()
        if not d.live_at(now):
            raise NotInForce(f"delegation {d.id} is {d.state_at(now)}")
        if system is None or system not in d.systems:
            raise NotInForce(f"delegation {d.id} does not name the system {system}")
        return d

    def remember(self, key: str, delegation: int, delegate: str) -> None:
        """Bind the grant ``key`` to the delegation (kept until its end); a key bound
        already (a rotated refresh family) stays as it is."""
        d = self.cache.get(delegation)
        if d is None:
            raise NotInForce(f"delegation {delegation} is gone")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(acting.c.grant_key)
                            .where(acting.c.grant_key == key)).first() is None:
                conn.execute(acting.insert().values(
                    grant_key=key, delegation=delegation, delegate=delegate,
                    expires_at=d.ends_at))

    def acted_for(self, key: str, user: Subject, system: str | None) -> Subject:
        """``user`` acted for by the delegate the grant ``key`` was issued under, if
        any; NotInForce when that delegation no longer lets them act on ``system``."""
        found = self.recall(key)
        if found is None:
            return user
        self.in_force(found.delegation, found.delegate, system)
        return dataclasses.replace(user, act=found.delegate, delegation=found.delegation)

    def recall(self, key: str) -> Acting | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(acting).where(acting.c.grant_key == key)).first()
        return None if row is None else Acting(int(row.delegation), str(row.delegate))

    def purge(self) -> int:
        """Delete the bindings of delegations over for ``KEEP_ENDED`` (revoked, ended,
        rejected, or past their end) whose refresh family, if any, has no token left
        unrevoked and unexpired; returns how many."""
        now = self.clock()
        cutoff = now - KEEP_ENDED
        d = delegations.c
        over = sa.select(d.id).where(sa.or_(
            d.ends_at < cutoff,
            sa.and_(d.state.not_in((REQUESTED, APPROVED)),
                    sa.func.coalesce(d.revoked_at, d.decided_at, d.ends_at) < cutoff)))
        usable = sa.exists().where(
            refresh_tokens.c.family_id == family_of(acting.c.grant_key),
            refresh_tokens.c.revoked_at.is_(None), refresh_tokens.c.expires_at > now)
        with self.engine.begin() as conn:
            return int(conn.execute(acting.delete().where(
                sa.or_(acting.c.delegation.in_(over),
                       acting.c.delegation.not_in(sa.select(d.id))),
                ~usable, ~acting.c.grant_key.startswith(ENDED))).rowcount)
