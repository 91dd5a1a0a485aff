"""Accepted AuthnRequests (one response each) and what each portal session released
to each SP (for single logout), in the database.

A request is keyed by a keyed hash (``keys.mac``) of its SP and its ID. It is
recorded when it arrives, verified; the browser then carries a random handle
(stored as a keyed hash too) through the portal sign-in and back. Answering is one
conditional UPDATE (``answered_at`` from NULL), so however often the request or its
handle is presented, and however many processes see it, it gets one response.
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
from gateway.idp.saml.errors import Replayed
from gateway.idp.saml.tables import requests, sessions


@dataclass(frozen=True)
class Pending:
    """A verified AuthnRequest waiting for its response."""

    request_hash: str
    sp_entity_id: str
    system: str
    request_id: str
    acs_url: str
    relay_state: str | None
    name_id_format: str | None
    force_authn: bool
    is_passive: bool
    binding: str
    created_at: datetime


@dataclass(frozen=True)
class ChainEnd:
    """Where a front-channel logout chain ends once each SP was told through the
    browser: ``then`` (a URL the sign-out checked already: a relying party's
    ``post_logout_redirect_uri``, a CAS ``service``), or the LogoutResponse to the SP
    whose LogoutRequest ended the session (its ``sp_entity_id``, ``request_id``, the
    ``binding`` it came by, its ``relay_state``); neither: the signed-out page."""

    then: str | None = None
    sp_entity_id: str = ""
    request_id: str = ""
    binding: str = ""
    relay_state: str | None = None


#: a chain's end is kept while the browser goes round the SPs (each answers at once,
#: or never)
CHAIN_LIFETIME = 900
MAX_THEN = 2048  # the column that holds it (``saml_requests.acs_url``)


@dataclass(frozen=True)
class Released:
    """An assertion a session released to an SP: where single logout goes."""

    sp_entity_id: str
    system: str
    username: str
    name_id: str
    name_id_format: str
    session_index: str


class SamlStore:
    def __init__(self, engine: Engine, keys: Any, clock: Clock) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock

    def _hash(self, purpose: str, value: str) -> str:
        return str(self.keys.mac(f"idp.saml_{purpose}", value.encode("utf-8")).hex())

    # -- requests ----------------------------------------------------------------------

    def accept(self, *, sp_entity_id: str, system: str, request_id: str, acs_url: str,
               relay_state: str | None, name_id_format: str | None, force_authn: bool,
               is_passive: bool, binding: str, lifetime: int) -> str:
        """Record a verified request; its handle. Replayed when it was answered (a
        request presented again before its answer gets a new handle)."""
        key = self._hash("request", f"{sp_entity_id}\n{request_id}")
        handle, now = secrets.token_urlsafe(32), self.clock()
        values = dict(
            handle_hash=self._hash("handle", handle), sp_entity_id=sp_entity_id,
            system_code=system, request_id=request_id, acs_url=acs_url,
            relay_state=relay_state, name_id_format=name_id_format, force_authn=force_authn,
            is_passive=is_passive, binding=binding, created_at=now,
            expires_at=now + timedelta(seconds=lifetime))
        for _ in range(2):  # a row another process inserted meanwhile is re-handled
            with self.engine.begin() as conn:
                if conn.execute(requests.update().where(
                        requests.c.request_hash == key, requests.c.answered_at.is_(None),
                ).values(handle_hash=values["handle_hash"],
                         expires_at=values["expires_at"])).rowcount:
                    return handle
            try:
                with self.engine.begin() as conn:
                    conn.execute(requests.insert().values(request_hash=key, **values))
                return handle
            except sa.exc.IntegrityError:
                continue
        raise Replayed(f"request {request_id[:100]!r} of {sp_entity_id[:200]!r} was "
                       "answered already")

    def pending(self, handle: str) -> Pending | None:
        """The unanswered, unexpired request a handle names."""
        if not handle or len(handle) > 128:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(requests).where(
                requests.c.handle_hash == self._hash("handle", handle),
                requests.c.answered_at.is_(None),
                requests.c.expires_at > self.clock())).first()
        if row is None:
            return None
        return Pending(request_hash=row.request_hash, sp_entity_id=row.sp_entity_id,
                       system=row.system_code, request_id=row.request_id, acs_url=row.acs_url,
                       relay_state=row.relay_state, name_id_format=row.name_id_format,
                       force_authn=bool(row.force_authn), is_passive=bool(row.is_passive),
                       binding=row.binding, created_at=_aware(row.created_at))

    def answer(self, pending: Pending) -> None:
        """Claim the request's one response; Replayed if it is gone already."""
        with self.engine.begin() as conn:
            claimed = conn.execute(requests.update().where(
                requests.c.request_hash == pending.request_hash,
                requests.c.answered_at.is_(None)).values(answered_at=self.clock())).rowcount
        if claimed != 1:
            raise Replayed(f"request {pending.request_id[:100]!r} was answered already")

    def logout_once(self, *, sp_entity_id: str, system: str, request_id: str, binding: str,
                    lifetime: int) -> None:
        """Record a verified LogoutRequest as answered; Replayed when it was already.
        It crosses the browser (history, proxy logs): presented again while its
        IssueInstant is still accepted, it would end the session signed in since. Kept
        in the requests' table under a key of its own kind, answered at once."""
        key = self._hash("request", f"logout\n{sp_entity_id}\n{request_id}")
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(requests.insert().values(
                    request_hash=key, handle_hash=self._hash("handle", secrets.token_urlsafe(32)),
                    sp_entity_id=sp_entity_id, system_code=system, request_id=request_id,
                    acs_url="", binding=binding, created_at=now,
                    expires_at=now + timedelta(seconds=lifetime), answered_at=now))
        except sa.exc.IntegrityError:
            raise Replayed(f"logout request {request_id[:100]!r} of {sp_entity_id[:200]!r} "
                           "was answered already", sp=sp_entity_id, system=system) from None

    # -- where a front-channel chain ends ---------------------------------------------------

    def _chain_key(self, sid: str) -> str:
        return self._hash("request", f"front-logout\n{sid}")

    def keep_chain_end(self, sid: str, end: ChainEnd) -> None:
        """Keep where the front-channel chain of session ``sid`` ends (a later sign-out
        of the same session replaces it). In the requests' table under a key of its
        own kind, as ``logout_once``: ``acs_url`` holds ``then``, the other columns
        the SP's LogoutRequest to answer."""
        key, now = self._chain_key(sid), self.clock()
        with self.engine.begin() as conn:
            conn.execute(requests.delete().where(requests.c.request_hash == key))
            conn.execute(requests.insert().values(
                request_hash=key, handle_hash=self._hash("handle", secrets.token_urlsafe(32)),
                sp_entity_id=end.sp_entity_id, system_code="", request_id=end.request_id,
                acs_url=end.then or "", relay_state=end.relay_state,
                binding=end.binding or "then", created_at=now,
                expires_at=now + timedelta(seconds=CHAIN_LIFETIME)))

    def take_chain_end(self, sid: str) -> ChainEnd | None:
        """Where the chain of ``sid`` ends, once (None: nothing kept, or expired)."""
        key = self._chain_key(sid)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(requests).where(
                requests.c.request_hash == key, requests.c.answered_at.is_(None),
                requests.c.expires_at > self.clock())).first()
            if row is None or conn.execute(requests.update().where(
                    requests.c.request_hash == key, requests.c.answered_at.is_(None)
            ).values(answered_at=self.clock())).rowcount != 1:
                return None
        return ChainEnd(then=row.acs_url or None, sp_entity_id=row.sp_entity_id,
                        request_id=row.request_id,
                        binding="" if row.binding == "then" else row.binding,
                        relay_state=row.relay_state)

    # -- what sessions released ----------------------------------------------------------

    def released(self, *, sid: str, sp_entity_id: str, system: str, username: str,
                 name_id: str, name_id_format: str, session_index: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.insert().values(
                sid=sid, sp_entity_id=sp_entity_id, system_code=system, username=username,
                name_id=name_id, name_id_format=name_id_format, session_index=session_index,
                created_at=self.clock()))

    def released_in(self, sid: str) -> list[Released]:
        """What the session released, to SPs that did not log out themselves."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(sessions).where(
                sessions.c.sid == sid, sessions.c.ended_at.is_(None)).order_by(sessions.c.id)
            ).all()
        return [Released(r.sp_entity_id, r.system_code, r.username, r.name_id,
                         r.name_id_format, r.session_index) for r in rows]

    def sessions_of(self, sp_entity_id: str, name_id: str,
                    session_indexes: tuple[str, ...]) -> list[str]:
        """The portal sessions that released ``name_id`` to the SP (only those with one
        of ``session_indexes`` when the LogoutRequest names any)."""
        query = sa.select(sessions.c.sid).where(
            sessions.c.sp_entity_id == sp_entity_id, sessions.c.name_id == name_id,
            sessions.c.ended_at.is_(None))
        if session_indexes:
            query = query.where(sessions.c.session_index.in_(session_indexes[:20]))
        with self.engine.connect() as conn:
            return sorted({r.sid for r in conn.execute(query)})

    def logged_out(self, sid: str, sp_entity_id: str) -> None:
        """The SP ended its side itself: single logout skips it."""
        with self.engine.begin() as conn:
            conn.execute(sessions.update().where(
                sessions.c.sid == sid, sessions.c.sp_entity_id == sp_entity_id,
                sessions.c.ended_at.is_(None)).values(ended_at=self.clock()))

    def purge(self, sessions_older_than: int) -> int:
        """Drop expired requests (a day after: their IssueInstant is long refused) and
        releases older than any session can last."""
        now = self.clock()
        with self.engine.begin() as conn:
            n = conn.execute(requests.delete().where(
                requests.c.expires_at < now - timedelta(days=1))).rowcount
            n += conn.execute(sessions.delete().where(
                sessions.c.created_at < now - timedelta(seconds=sessions_older_than))).rowcount
        return int(n)
