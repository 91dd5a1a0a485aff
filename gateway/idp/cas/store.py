"""Service tickets in the database: issued, consumed once, listed for single logout.

A ticket is ``ST-`` and 256 random bits (``secrets.token_urlsafe(32)``), stored as a
keyed hash (``keys.mac``, as the identity provider stores codes). Consuming it is one
conditional UPDATE first (``gateway.idp.oauth2.store.Store.consume_code`` explains why
the write comes first on SQLite), so two concurrent validations never both succeed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.clock import Clock
from gateway.clock import as_utc as _aware
from gateway.idp.cas.errors import InvalidService, InvalidTicket, InvalidTicketSpec
from gateway.idp.cas.protocol import TICKET_PREFIX
from gateway.idp.cas.tables import tickets

MAX_TICKET_LENGTH = 256  # the specification's recommended ceiling (section 3.1.1)


@dataclass(frozen=True)
class TicketRow:
    service: str
    system: str
    username: str
    sid: str
    primary_auth: bool
    created_at: datetime


@dataclass(frozen=True)
class Issued:
    """A validated ticket of a session: where single logout goes."""

    service: str
    system: str
    ticket: str


class TicketStore:
    def __init__(self, engine: Engine, keys: Any, clock: Clock) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock

    def _hash(self, ticket: str) -> str:
        return str(self.keys.mac("idp.cas_ticket", ticket.encode("utf-8")).hex())

    def _seal(self, ticket: str, ticket_hash: str) -> bytes:
        return bytes(self.keys.seal(ticket.encode(), f"cas.slo:{ticket_hash}"))

    def issue(self, *, service: str, system: str, username: str, sid: str,
              primary_auth: bool, lifetime: int) -> str:
        ticket, now = TICKET_PREFIX + secrets.token_urlsafe(32), self.clock()
        with self.engine.begin() as conn:
            conn.execute(tickets.insert().values(
                ticket_hash=self._hash(ticket), service=service, system_code=system,
                username=username, sid=sid, primary_auth=primary_auth, created_at=now,
                expires_at=now + timedelta(seconds=lifetime)))
        return ticket

    def consume(self, ticket: str, service: str, *, renew: bool = False) -> TicketRow:
        """The ticket's data, once. Raises InvalidTicketSpec (not ``ST-``),
        InvalidTicket (unknown, replayed, expired, renew asked and the ticket not
        from a fresh sign-in) or InvalidService (issued for another service: used
        up all the same, as section 2.5.3 demands)."""
        if not ticket.startswith(TICKET_PREFIX):
            raise InvalidTicketSpec("not a service ticket (no ST- prefix)")
        if len(ticket) > MAX_TICKET_LENGTH:
            raise InvalidTicket("ticket longer than any issued")
        h, now = self._hash(ticket), self.clock()
        with self.engine.begin() as conn:
            claimed = conn.execute(
                tickets.update()
                .where(tickets.c.ticket_hash == h, tickets.c.used_at.is_(None),
                       tickets.c.expires_at > now)
                .values(used_at=now, slo_ticket=self._seal(ticket, h))
            ).rowcount == 1
            row = conn.execute(sa.select(tickets).where(tickets.c.ticket_hash == h)).first()
        if row is None:
            raise InvalidTicket("unknown ticket")
        if not claimed:
            if row.used_at is not None:
                raise InvalidTicket(f"ticket replayed (first used {_aware(row.used_at)})")
            raise InvalidTicket(f"ticket expired at {_aware(row.expires_at)}")
        if row.service != service:
            raise InvalidService(f"ticket issued for {row.service[:300]!r}, presented for "
                                 f"{service[:300]!r} (ticket used up)")
        if renew and not row.primary_auth:
            raise InvalidTicket("renew=true and the ticket was issued from single sign-on")
        return TicketRow(service=row.service, system=row.system_code, username=row.username,
                         sid=row.sid, primary_auth=bool(row.primary_auth),
                         created_at=_aware(row.created_at))

    def validated_in(self, sid: str) -> list[Issued]:
        """Every ticket of the session that a service validated (single logout)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(
                tickets.c.ticket_hash, tickets.c.service, tickets.c.system_code,
                tickets.c.slo_ticket,
            ).where(tickets.c.sid == sid, tickets.c.slo_ticket.is_not(None))
                .order_by(tickets.c.created_at)).all()
        out = []
        for r in rows:
            try:
                value = self.keys.open(bytes(r.slo_ticket), f"cas.slo:{r.ticket_hash}").decode()
            except Exception:  # noqa: S112 - a key destroyed since: nothing to send
                continue
            out.append(Issued(service=r.service, system=r.system_code, ticket=value))
        return out

    def purge(self, older_than_seconds: int) -> int:
        """Delete tickets expired more than ``older_than_seconds`` ago (kept as long
        as a session can last, for single logout)."""
        cutoff = self.clock() - timedelta(seconds=older_than_seconds)
        with self.engine.begin() as conn:
            return int(conn.execute(tickets.delete().where(tickets.c.expires_at < cutoff)
                                    ).rowcount)
