"""When a delegation (委托) ends, the tokens a relying party got for "A, acted for by B"
end too, and the relying party is told (docs/delegation.md, "When a delegation ends").

A delegation ends by a revocation (A, the head, an administrator), by its end date,
or by a move of A or B out of its department (``gateway.delegation_moves``). Its
refresh tokens and userinfo already stop within a second (``ActingGrants.in_force``
reads the delegation at most a second old); :func:`watch`, a task of every running
gateway, then, each round (every second, and at once after a change made in its own
process):

1. records the ends nobody asked for (``Delegations.settle_ends``: ``delegation_moved``,
   ``delegation_expired``);
2. for each refresh-token family issued under a delegation no longer in force
   (``idp_acting`` ``family:...``) still unrevoked: revokes it, which puts its access
   tokens on the deny list (every process refuses them within the deny list's
   refresh), claimed by one conditional UPDATE so that of several processes one does it,
   and in the same transaction marks the family as ended but not yet recorded (an
   ``idp_acting`` row ``ended:...``); then records ``delegation_tokens_ended`` for every
   such mark, this round's and any a failed round left, and removes the marks. The
   revocation never waits for the audit log, and the record is not lost when its write
   fails: the next round writes it (at least once: a failure between the record and
   the removal of its marks records it again);
3. sends OpenID Connect back-channel logout (``BackchannelNotifier``) to each of those
   families' clients that registered a ``backchannel_logout_uri``: ``sub`` A, ``sid``
   the session B acted in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gateway.delegation_tables import delegations
from gateway.delegations import APPROVED, Delegations
from gateway.idp.oauth2.acting import ENDED, FAMILY, family_of
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.tables import acting, refresh_tokens
from gateway.one_at_a_time import one_at_a_time

log = logging.getLogger("govgate.delegations")

ROUND_SECONDS = 1.0


@dataclass(frozen=True)
class Notice:
    """One back-channel logout to send: ``client_id`` at ``uri``, for ``username`` (A)
    in the session ``sid`` (B's)."""

    client_id: str
    uri: str
    username: str
    sid: str


def live_family(grant_key: sa.ColumnElement[str]) -> sa.Exists:
    """A refresh-token row of the key's family not yet revoked."""
    return sa.exists().where(refresh_tokens.c.family_id == family_of(grant_key),
                             refresh_tokens.c.revoked_at.is_(None))


class RoundFailed(Exception):
    """Recording the round's own ends failed (its ``__cause__``); the tokens were ended
    all the same, and ``notices`` are still to be sent."""

    def __init__(self, notices: list[Notice]) -> None:
        super().__init__("recording the delegation ends failed")
        self.notices = notices


class ActingEnds:
    """One round of the work above (``round``); the notices it leaves to send."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.services = provider.services
        self.engine = provider.services.engine
        self.clock: Callable[[], datetime] = provider.clock

    def round(self) -> list[Notice]:
        """Settle what ended since the last round; the back-channel logouts to send."""
        with one_at_a_time(self.engine, "delegation-ends") as alone:
            if not alone:
                return []
            # the tokens whatever becomes of the records: a revocation or a move ended
            # the delegation in its table already, and waits for no record of this round
            try:
                Delegations(self.services).settle_ends()
            except Exception as exc:
                raise RoundFailed(self.end_tokens()) from exc
            return self.end_tokens()

    def end_tokens(self) -> list[Notice]:
        """End the families of delegations over; then record every ended family not yet
        recorded (RoundFailed, with the notices, when that fails)."""
        now = self.clock()
        over = sa.or_(delegations.c.state != APPROVED, delegations.c.ends_at <= now)
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(acting.c.grant_key, acting.c.delegation, acting.c.delegate,
                          acting.c.expires_at)
                .join(delegations, delegations.c.id == acting.c.delegation)
                .where(acting.c.grant_key.like(FAMILY + "%"), over,
                       live_family(acting.c.grant_key))).all()
        notices: list[Notice] = []
        for row in found:
            ended = self._end_family(row)
            if ended is None:
                continue  # another process took it
            client = self.provider.server.clients.get(ended["client"])
            if client is not None and client.backchannel_logout_uri and ended["sid"]:
                notice = Notice(ended["client"], client.backchannel_logout_uri,
                                ended["user"], ended["sid"])
                if notice not in notices:
                    notices.append(notice)
        try:
            self.record_ended()
        except Exception as exc:
            raise RoundFailed(notices) from exc
        return notices

    def _end_family(self, binding: Any) -> dict[str, Any] | None:
        """Revoke one family, put its access tokens on the deny list and mark it to be
        recorded, in one transaction (claimed: None if another process revoked it
        meanwhile; a failure leaves it live for the next round)."""
        family = str(binding.grant_key).removeprefix(FAMILY)

        def mark(conn: sa.Connection) -> None:
            conn.execute(acting.delete().where(acting.c.grant_key == ENDED + family))
            conn.execute(acting.insert().values(
                grant_key=ENDED + family, delegation=binding.delegation,
                delegate=binding.delegate, expires_at=binding.expires_at))

        if not self.provider.store.claim_family(family, also=mark):
            return None
        return self._family(family)

    def _family(self, family: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(refresh_tokens.c.client_id, refresh_tokens.c.username,
                                         refresh_tokens.c.sid)
                               .where(refresh_tokens.c.family_id == family).limit(1)).first()
        if row is None:  # its tokens gone already: still an end to record
            return {"family": family, "client": "", "user": "", "sid": ""}
        return {"family": family, "client": row.client_id, "user": row.username,
                "sid": row.sid or ""}

    def record_ended(self) -> None:
        """``delegation_tokens_ended`` for each delegation with families marked ended,
        then the marks removed: a failed write leaves them for the next round."""
        with self.engine.connect() as conn:
            marks = conn.execute(
                sa.select(acting.c.grant_key, acting.c.delegation, delegations.c.state,
                          delegations.c.department_code)
                .outerjoin(delegations, delegations.c.id == acting.c.delegation)
                .where(acting.c.grant_key.like(ENDED + "%"))
                .order_by(acting.c.delegation, acting.c.grant_key)).all()
        by_delegation: dict[int, list[Any]] = {}
        for m in marks:
            by_delegation.setdefault(int(m.delegation), []).append(m)
        for number, rows in by_delegation.items():
            families = [self._family(str(r.grant_key).removeprefix(ENDED)) for r in rows]
            d = rows[0]
            state = d.state if d.state != APPROVED else "expired"
            self.services.record_admin_change("delegation_tokens_ended", {
                "department": d.department_code, "target": f"delegation:{number}",
                "delegation": number, "state": state,
                "families": len(families),
                "clients": sorted({f["client"] for f in families if f["client"]}),
                "sids": sorted({f["sid"] for f in families if f["sid"]})})
            with self.engine.begin() as conn:
                conn.execute(acting.delete().where(
                    acting.c.grant_key.in_([r.grant_key for r in rows])))


async def watch(provider: Provider, every: float = ROUND_SECONDS) -> None:
    """Run :class:`ActingEnds` rounds until cancelled: every ``every`` seconds, and at
    once after an administrative change made in this process (a revocation)."""
    ends = ActingEnds(provider)
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nothing to wake
            loop.call_soon_threadsafe(woken.set)

    provider.services.on_admin_change(wake)
    failing: str | None = None  # the failure of the rounds failing since, logged once
    failed = 0
    while True:
        woken.clear()
        try:
            notices = await asyncio.to_thread(ends.round)
        except Exception as exc:  # a failed round is tried again next round
            # a round a second: a lasting cause (the database away) is logged when it
            # starts or changes, not every second
            notices = exc.notices if isinstance(exc, RoundFailed) else []
            why = exc.__cause__ if isinstance(exc, RoundFailed) else exc
            cause = f"{type(why).__name__}: {why}"
            if cause != failing:
                log.exception("delegation ends round failed")
                failing, failed = cause, 0
            failed += 1
        else:
            if failing is not None:
                log.info("delegation ends rounds work again after %d failed rounds (%s)",
                         failed, failing[:200])
                failing = None
        for n in notices:
            provider.notifier.schedule([(n.client_id, n.uri)], n.username, n.sid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), every)
