"""The break-glass accesses active now, for the proxy's decider and the token issuer.

Read from the database at most every ``ttl`` seconds (one query for all of them), so
that a proxied request costs a dict lookup; each entry's end is compared with the
clock on every use, so an access expires by itself to the second. A change made in
this process (an approval, an early end) calls :meth:`invalidate`; other processes
see it within ``ttl``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from catalogue.model import CST
from gateway.break_glass.tables import break_glass
from gateway.clock import Clock, as_utc


@dataclass(frozen=True)
class Active:
    """One active break-glass: who, where, until when."""

    id: str
    username: str
    system: str
    resource: str | None
    ends_at: datetime

    def covers(self, system: str, resource: str | None) -> bool:
        """Does it open ``system`` (a request matching catalogue ``resource``, or none)?
        A system-wide one opens the system's other paths, never a catalogue resource;
        a resource one opens that resource only."""
        return self.system == system and self.resource == resource

    def ends_local(self) -> str:
        """Its end in Beijing time, as the portal's banner says it."""
        return self.ends_at.astimezone(CST).strftime("%Y-%m-%d %H:%M")

    def claim(self) -> dict[str, object]:
        """The mark in tokens and assertions."""
        return {"id": self.id, "system": self.system, "resource": self.resource,
                "exp": int(self.ends_at.timestamp())}


def claimed_ids(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The break-glass ids a token's ``break_glass`` claim names (``token_claim``'s
    list); a claim of another shape names one that never was (fails closed)."""
    mark = claims.get("break_glass")
    if mark is None:
        return ()
    if not isinstance(mark, list):
        return ("(malformed)",)
    return tuple(str(m.get("id")) if isinstance(m, dict) else "(malformed)" for m in mark)


class ActiveBreakGlass:
    def __init__(self, engine: sa.Engine, clock: Clock, ttl: float = 1.0) -> None:
        self.engine = engine
        self.clock = clock
        self.ttl = ttl
        self._at = -1e9
        self._by_user: dict[str, tuple[Active, ...]] = {}
        self._used: set[str] = set()

    def invalidate(self) -> None:
        self._at = -1e9

    def _load(self) -> None:
        now = self.clock()
        b = break_glass
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(b.c.id, b.c.username, b.c.system, b.c.resource,
                                          b.c.ends_at)
                                .where(b.c.activated_at.is_not(None), b.c.ended_at.is_(None),
                                       b.c.ends_at > now)).all()
        by_user: dict[str, list[Active]] = {}
        for r in rows:
            by_user.setdefault(r.username, []).append(
                Active(r.id, r.username, r.system, r.resource, as_utc(r.ends_at)))
        self._by_user = {k: tuple(v) for k, v in by_user.items()}
        self._at = time.monotonic()

    def of(self, username: str | None) -> tuple[Active, ...]:
        """``username``'s break-glass accesses active now."""
        if not username:
            return ()
        if time.monotonic() - self._at > self.ttl:
            self._load()
        held = self._by_user.get(username)
        if not held:  # nearly every caller: no clock read on the proxy's path
            return ()
        now = self.clock()
        return tuple(a for a in held if a.ends_at > now)

    def find(self, username: str | None, system: str, resource: str | None) -> Active | None:
        """The active break-glass of ``username`` that opens ``system`` / ``resource``."""
        return next((a for a in self.of(username) if a.covers(system, resource)), None)

    def over(self, username: str | None, claimed: tuple[str, ...]) -> str | None:
        """Why a token's ``break_glass`` claim (the ids ``claimed``) no longer holds
        (one of them ended early, expired or is not ``username``'s), or None while each
        is active. A token announcing an emergency that is over is refused wherever
        the gateway reads it (gateway.idp.authenticator, introspection, exchange)."""
        live = {a.id for a in self.of(username)}
        gone = [i for i in claimed if i not in live]
        return f"break-glass {gone[0][:40]} in the token is over" if gone else None

    def token_claim(self, username: str | None) -> list[dict[str, object]] | None:
        """The ``break_glass`` claim of a token issued now to ``username``, if any."""
        found = self.of(username)
        return [a.claim() for a in found] if found else None

    def use_recorded(self, bg_id: str) -> bool:
        return bg_id in self._used

    def mark_used(self, bg_id: str) -> None:
        """Record the first use (once per process: one conditional UPDATE)."""
        if bg_id in self._used:
            return
        with self.engine.begin() as conn:
            conn.execute(break_glass.update()
                         .where(break_glass.c.id == bg_id, break_glass.c.first_used_at.is_(None))
                         .values(first_used_at=self.clock()))
        self._used.add(bg_id)
