"""Storage of the identity provider: portal sessions, authorization codes, refresh
tokens (with families) and the revocation deny list.

Codes, refresh tokens and session cookies are stored as keyed hashes
(``keys.mac``): the database never holds a usable credential. Consuming a code
or a refresh token is one conditional UPDATE, so two concurrent presentations
can never both succeed; the loser is treated as a replay.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.clock import Clock
from gateway.clock import as_utc as _aware
from gateway.idp.oauth2.tables import (
    assertion_jtis,
    authorization_codes,
    refresh_tokens,
    revocations,
    sessions,
)
from gateway.storage import write_transaction

STAGES = ("change", "mfa", "enrol", "webauthn", "passkey_enrol", "active")
CODE_LIFETIME = 60


def new_secret() -> str:
    """A fresh bearer secret (code, refresh token, session cookie): 256 bits."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SessionRow:
    sid: str
    username: str
    stage: str
    amr: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    #: when the user last passed a sign-in step of this session (password, TOTP)
    authenticated_at: datetime
    #: where the session was opened (shown to the user on the account page)
    source_ip: str | None = None
    user_agent: str | None = None

    @property
    def auth_time(self) -> int:
        """OIDC ``auth_time`` (Core section 2): whole seconds, as the ID token has it."""
        return int(self.authenticated_at.timestamp())


@dataclass(frozen=True)
class CodeRow:
    client_id: str
    username: str
    sid: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    amr: str | None
    family_id: str
    dpop_jkt: str | None = None  # RFC 9449 section 10

    # authlib AuthorizationCodeMixin / OIDC AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str] | None:
        return self.amr.split() if self.amr else None


@dataclass(frozen=True)
class RefreshRow:
    family_id: str
    client_id: str
    username: str
    sid: str | None
    scope: str
    auth_time: int
    expires_at: datetime
    #: when this token of the family was issued (the family's last refresh)
    created_at: datetime | None = None
    #: how the person signed in (None in rows from before it was kept)
    amr: str | None = None

    # authlib TokenMixin
    def check_client(self, client: Any) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope


class Replay(Exception):
    """A code or refresh token presented a second time (its family is revoked)."""

    def __init__(self, kind: str, family_id: str | None, username: str | None,
                 client_id: str | None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.family_id = family_id
        self.username = username
        self.client_id = client_id


class Expired(Exception):
    """A code or refresh token past its lifetime."""


class KeyMismatch(Exception):
    """A code bound to a DPoP key (``dpop_jkt``) presented without a proof of it."""


class Store:
    """Reads and writes the identity provider's tables."""

    def __init__(self, engine: Engine, keys: Any, clock: Clock, *, deny_grace: float = 0.0
                 ) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock
        # a deny row is kept this long past its expiry (the token's exp): the clock skew
        # verifiers allow past exp, as the deny lists keep it (``DenyList.grace``); a
        # process started meanwhile reads it from the table, or would take the token
        self.deny_grace = deny_grace
        #: called after a transaction that added to the deny list (local caches go stale)
        self.on_deny: list[Any] = []

    def _denied_changed(self) -> None:
        for callback in self.on_deny:
            callback()

    def hash(self, purpose: str, value: str) -> str:
        return str(self.keys.mac(f"idp.{purpose}", value.encode("utf-8")).hex())

    # -- sessions --------------------------------------------------------------------

    def create_session(self, username: str, stage: str, *, amr: str, absolute_seconds: int,
                       source_ip: str | None = None, user_agent: str | None = None,
                       ) -> tuple[str, SessionRow]:
        """A new session; returns (cookie value, row)."""
        assert stage in STAGES
        token, sid, now = new_secret(), secrets.token_urlsafe(16), self.clock()
        values = dict(
            sid=sid, token_hash=self.hash("session", token), username=username, stage=stage,
            amr=amr, source_ip=(source_ip or "")[:64] or None,
            user_agent=(user_agent or "")[:300] or None, created_at=now, last_seen_at=now,
            expires_at=now + timedelta(seconds=absolute_seconds), revoked_at=None,
            authenticated_at=now,
        )
        with self.engine.begin() as conn:
            conn.execute(sessions.insert().values(**values))
        return token, _session(values)

    def find_session(self, token: str) -> SessionRow | None:
        """The session a cookie names (revoked or expired ones included)."""
        if not token or len(token) > 200:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(sessions).where(sessions.c.token_hash == self.hash("session", token))
            ).first()
        return _session(row._mapping) if row else None

    def get_session(self, sid: str) -> SessionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.sid == sid)).first()
        return _session(row._mapping) if row else None

    def touch_session(self, sid: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.update().where(sessions.c.sid == sid)
                         .values(last_seen_at=self.clock()))

    def advance_session(self, sid: str, stage: str, *, amr: str | None = None) -> str:
        """Move a session to ``stage`` under a new cookie value (the id rotates). Only
        a sign-in step the user just passed advances a session, so this is also the
        session's new authentication time."""
        assert stage in STAGES
        token, now = new_secret(), self.clock()
        values: dict[str, Any] = {"stage": stage, "token_hash": self.hash("session", token),
                                  "last_seen_at": now, "authenticated_at": now}
        if amr:
            values["amr"] = amr
        with self.engine.begin() as conn:
            conn.execute(sessions.update().where(sessions.c.sid == sid).values(**values))
        return token

    def list_sessions(self, username: str | None = None, *, active_only: bool = True,
                      ) -> list[SessionRow]:
        now = self.clock()
        q = sa.select(sessions).order_by(sessions.c.created_at)
        if username:
            q = q.where(sessions.c.username == username)
        with self.engine.connect() as conn:
            rows = [_session(r._mapping) for r in conn.execute(q)]
        if active_only:
            rows = [r for r in rows if r.revoked_at is None and r.expires_at > now]
        return rows

    def revoke_session(self, sid: str, *, ttl_seconds: int) -> bool:
        """End a session, its refresh tokens and (via the deny list) its access tokens."""
        now = self.clock()
        with self.engine.begin() as conn:
            n = conn.execute(
                sessions.update().where(sessions.c.sid == sid, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
            self._deny(conn, "sid", sid, ttl_seconds)
            families = [r.family_id for r in conn.execute(
                sa.select(refresh_tokens.c.family_id).where(refresh_tokens.c.sid == sid)
                .distinct())]
            for fam in families:
                self._revoke_family(conn, fam)
        self._denied_changed()
        return bool(n)

    def revoke_user(self, username: str, *, ttl_seconds: int) -> tuple[list[str], int]:
        """End every session and refresh-token family of a user; (sids, families)."""
        sids = [s.sid for s in self.list_sessions(username)]
        with write_transaction(self.engine) as conn:  # reads, then writes
            families = [r.family_id for r in conn.execute(
                sa.select(refresh_tokens.c.family_id).where(
                    refresh_tokens.c.username == username, refresh_tokens.c.revoked_at.is_(None),
                ).distinct())]
            for fam in families:
                self._revoke_family(conn, fam)
        self._denied_changed()
        for sid in sids:
            self.revoke_session(sid, ttl_seconds=ttl_seconds)
        return sids, len(families)

    def revoke_client(self, client_id: str, *, ttl_seconds: int) -> int:
        """Revoke every refresh-token family of a client (and the access tokens issued
        with them) and deny every access token of the client issued until now; the
        "client" deny entry lives ``ttl_seconds``, past the longest access token
        issued before it. Returns the number of families revoked."""
        with write_transaction(self.engine) as conn:
            self._deny(conn, "client", client_id, ttl_seconds)  # first: see consume_code
            families = [r.family_id for r in conn.execute(
                sa.select(refresh_tokens.c.family_id).where(
                    refresh_tokens.c.client_id == client_id,
                    refresh_tokens.c.revoked_at.is_(None)).distinct())]
            for fam in families:
                self._revoke_family(conn, fam)
        self._denied_changed()
        return len(families)

    def user_families(self, username: str) -> list[RefreshRow]:
        """The user's live refresh-token families (OAuth grants), one row each: the
        family's current, unused token."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(refresh_tokens).where(
                refresh_tokens.c.username == username, refresh_tokens.c.used_at.is_(None),
                refresh_tokens.c.revoked_at.is_(None), refresh_tokens.c.expires_at > now,
            ).order_by(refresh_tokens.c.created_at)).all()
        return [_refresh(r) for r in rows]

    def session_clients(self, sid: str) -> list[str]:
        """Clients that received a code in this session (for back-channel logout)."""
        with self.engine.connect() as conn:
            return [r.client_id for r in conn.execute(
                sa.select(authorization_codes.c.client_id)
                .where(authorization_codes.c.sid == sid).distinct())]

    # -- authorization codes ---------------------------------------------------------

    def save_code(self, code: str, *, client_id: str, username: str, sid: str,
                  redirect_uri: str, scope: str, nonce: str | None,
                  code_challenge: str | None, code_challenge_method: str | None,
                  auth_time: int, amr: str | None, dpop_jkt: str | None = None) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(authorization_codes.insert().values(
                code_hash=self.hash("code", code), client_id=client_id, username=username,
                sid=sid, redirect_uri=redirect_uri, scope=scope, nonce=nonce,
                code_challenge=code_challenge, code_challenge_method=code_challenge_method,
                auth_time=auth_time, amr=amr, dpop_jkt=dpop_jkt, created_at=now,
                expires_at=now + timedelta(seconds=CODE_LIFETIME),
            ))

    def consume_code(self, code: str, client_id: str, jkt: str | None = None
                     ) -> CodeRow | None:
        """The code's data, once; None if unknown or another client's. A code bound to
        a DPoP key (``dpop_jkt``) is used only by a request proving that key (``jkt``):
        else KeyMismatch, and the code is left for the request that does.

        Raises Expired, KeyMismatch, or Replay (after revoking what the first use
        issued)."""
        h, now = self.hash("code", code), self.clock()
        family = secrets.token_urlsafe(16)
        with self.engine.begin() as conn:
            # the claim comes first: a SQLite transaction that read before writing
            # fails at once (SQLITE_BUSY) when another writer, the audit log's for
            # one, committed in between; one that writes first waits its turn
            claimed = conn.execute(
                authorization_codes.update()
                .where(authorization_codes.c.code_hash == h,
                       authorization_codes.c.client_id == client_id,
                       authorization_codes.c.used_at.is_(None),
                       authorization_codes.c.expires_at > now,
                       sa.or_(authorization_codes.c.dpop_jkt.is_(None),
                              authorization_codes.c.dpop_jkt == (jkt or "")))
                .values(used_at=now, family_id=family)
            ).rowcount == 1
            row = conn.execute(
                sa.select(authorization_codes).where(authorization_codes.c.code_hash == h)
            ).first()
            if row is None or row.client_id != client_id:
                return None
            replay = expired = mismatch = False
            if claimed:
                pass
            elif row.used_at is not None:
                replay = True
                if row.family_id:  # committed with this transaction, before raising
                    self._revoke_family(conn, row.family_id)
            elif row.dpop_jkt is not None and row.dpop_jkt != jkt \
                    and _aware(row.expires_at) > now:
                mismatch = True  # a thief's key: the code stays the client's
            else:
                expired = True
        if mismatch:
            raise KeyMismatch("code")
        if replay:
            self._denied_changed()
            raise Replay("code", row.family_id, row.username, row.client_id)
        if expired:
            raise Expired("code")
        m = row._mapping
        return CodeRow(
            client_id=m["client_id"], username=m["username"], sid=m["sid"],
            redirect_uri=m["redirect_uri"], scope=m["scope"], nonce=m["nonce"],
            code_challenge=m["code_challenge"], code_challenge_method=m["code_challenge_method"],
            auth_time=int(m["auth_time"]), amr=m["amr"], family_id=family,
            dpop_jkt=m["dpop_jkt"],
        )

    # -- refresh tokens --------------------------------------------------------------

    def save_refresh(self, token: str, *, family_id: str, client_id: str, username: str,
                     sid: str | None, scope: str, auth_time: int, lifetime: int,
                     access_jti: str | None, access_expires_at: datetime | None,
                     amr: str | None = None) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(refresh_tokens.insert().values(
                token_hash=self.hash("refresh", token), family_id=family_id,
                client_id=client_id, username=username, sid=sid, scope=scope,
                auth_time=auth_time, access_jti=access_jti, amr=amr,
                access_expires_at=access_expires_at, created_at=now,
                expires_at=now + timedelta(seconds=lifetime),
            ))

    def record_access(self, *, family_id: str, client_id: str, username: str,
                      sid: str | None, scope: str, auth_time: int, access_jti: str,
                      access_expires_at: datetime) -> None:
        """Record in ``family_id`` an access token issued without a refresh token (the
        client may not refresh), so that revoking the family (a replayed code) denies
        it too: a row of the family whose token nobody holds (its secret is thrown
        away), already used, kept until the access token expires."""
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(refresh_tokens.insert().values(
                token_hash=self.hash("refresh", new_secret()), family_id=family_id,
                client_id=client_id, username=username, sid=sid, scope=scope,
                auth_time=auth_time, access_jti=access_jti,
                access_expires_at=access_expires_at, created_at=now,
                expires_at=access_expires_at, used_at=now,
            ))

    def find_refresh(self, token: str) -> tuple[RefreshRow, bool] | None:
        """(row, usable) for a refresh token, without consuming it."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(refresh_tokens).where(
                refresh_tokens.c.token_hash == self.hash("refresh", token))).first()
        if row is None:
            return None
        usable = (row.used_at is None and row.revoked_at is None
                  and _aware(row.expires_at) > self.clock())
        return _refresh(row), usable

    def refresh_scope(self, token: str, client_id: str) -> str | None:
        """The scope a usable refresh token of ``client_id`` was granted, without using
        it up (None: unknown, another client's, or no longer usable: used, revoked or
        expired, whose presentation ``consume_refresh`` judges whatever scope it asks,
        so that a replay revokes the family)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(refresh_tokens.c.scope).where(
                    refresh_tokens.c.token_hash == self.hash("refresh", token),
                    refresh_tokens.c.client_id == client_id,
                    refresh_tokens.c.used_at.is_(None),
                    refresh_tokens.c.revoked_at.is_(None),
                    refresh_tokens.c.expires_at > self.clock())
            ).first()
        return None if row is None else str(row.scope or "")

    def consume_refresh(self, token: str, client_id: str) -> RefreshRow | None:
        """The refresh token's data, once (rotation); None if unknown, another client's
        or revoked. Raises Expired, or Replay after revoking the whole family."""
        h, now = self.hash("refresh", token), self.clock()
        with self.engine.begin() as conn:
            # write first, as in consume_code
            claimed = conn.execute(
                refresh_tokens.update()
                .where(refresh_tokens.c.token_hash == h,
                       refresh_tokens.c.client_id == client_id,
                       refresh_tokens.c.used_at.is_(None),
                       refresh_tokens.c.revoked_at.is_(None),
                       refresh_tokens.c.expires_at > now)
                .values(used_at=now)
            ).rowcount == 1
            row = conn.execute(
                sa.select(refresh_tokens).where(refresh_tokens.c.token_hash == h)
            ).first()
            if row is None or row.client_id != client_id or row.revoked_at is not None:
                return None
            replay = expired = False
            if claimed:
                pass
            elif row.used_at is not None:
                replay = True
            else:
                expired = True
            if replay:  # committed with this transaction, before raising
                self._revoke_family(conn, row.family_id)
        if replay:
            self._denied_changed()
            raise Replay("refresh_token", row.family_id, row.username, row.client_id)
        if expired:
            raise Expired("refresh_token")
        return _refresh(row)

    def revoke_family(self, family_id: str) -> None:
        with self.engine.begin() as conn:
            self._revoke_family(conn, family_id)
        self._denied_changed()

    def claim_family(self, family_id: str,
                     also: Callable[[Connection], None] | None = None) -> bool:
        """Revoke the family and deny its access tokens in one transaction, when some
        token of it is still unrevoked; False when none is (another process took it).
        One commit: a failure half-way leaves the family to be claimed again, never
        revoked with its access tokens still honoured. ``also`` writes in the same
        transaction when the family is claimed (what is left to record of it)."""
        with self.engine.begin() as conn:
            claimed = self._revoke_family(conn, family_id, claim=True)
            if claimed and also is not None:
                also(conn)
        if claimed:
            self._denied_changed()
        return claimed

    def _revoke_family(self, conn: Connection, family_id: str, *, claim: bool = False
                       ) -> bool:
        """Revoke the family and deny its access tokens; whether a token of it was still
        unrevoked (``claim``: deny nothing when none was)."""
        now = self.clock()
        # the write first: it takes SQLite's write lock before anything is read
        claimed = bool(conn.execute(refresh_tokens.update().where(
            refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None),
        ).values(revoked_at=now)).rowcount)
        if claim and not claimed:
            return False
        rows = conn.execute(sa.select(
            refresh_tokens.c.access_jti, refresh_tokens.c.access_expires_at,
        ).where(refresh_tokens.c.family_id == family_id)).all()
        for r in rows:
            exp = _aware(r.access_expires_at)
            if r.access_jti and exp and exp > now:
                self._deny(conn, "jti", r.access_jti, int((exp - now).total_seconds()) + 1)
        return claimed

    # -- the deny list ---------------------------------------------------------------

    def deny_jti(self, jti: str, ttl_seconds: int) -> None:
        with self.engine.begin() as conn:
            self._deny(conn, "jti", jti, ttl_seconds)
        self._denied_changed()

    def _deny(self, conn: Connection, kind: str, value: str, ttl_seconds: int) -> None:
        now = self.clock()
        conn.execute(revocations.insert().values(
            kind=kind, value=value, created_at=now,
            expires_at=now + timedelta(seconds=max(1, ttl_seconds)),
        ))

    def denied_since(self, high_water: int, also: Collection[int] = (),
                     ) -> list[tuple[int, str, str, datetime, datetime]]:
        """Deny-list rows newer than ``high_water``, and those numbered ``also`` (id,
        kind, value, expires_at, created_at)."""
        newer: sa.ColumnElement[bool] = revocations.c.id > high_water
        if also:
            newer = sa.or_(newer, revocations.c.id.in_(sorted(also)))
        with self.engine.connect() as conn:
            return [(int(r.id), r.kind, r.value, _aware(r.expires_at) or self.clock(),
                     _aware(r.created_at) or self.clock())
                    for r in conn.execute(
                        sa.select(revocations).where(newer).order_by(revocations.c.id))]

    def is_denied(self, kind: str, value: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(revocations.c.id).where(
                revocations.c.kind == kind, revocations.c.value == value,
                revocations.c.expires_at > self.clock())).first() is not None

    # -- private_key_jwt replay ------------------------------------------------------

    def remember_assertion(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """False when this client already used ``jti``."""
        try:
            with self.engine.begin() as conn:
                conn.execute(assertion_jtis.insert().values(
                    client_id=client_id, jti=jti[:128], expires_at=expires_at))
        except sa.exc.IntegrityError:
            return False
        return True

    # -- housekeeping ----------------------------------------------------------------

    def purge(self) -> int:
        """Delete expired rows; returns how many."""
        now = self.clock()
        n = 0
        with self.engine.begin() as conn:
            n += conn.execute(revocations.delete().where(
                revocations.c.expires_at < now - timedelta(seconds=self.deny_grace))).rowcount
            n += conn.execute(assertion_jtis.delete().where(
                assertion_jtis.c.expires_at < now)).rowcount
            n += conn.execute(authorization_codes.delete().where(
                authorization_codes.c.expires_at < now - timedelta(days=1))).rowcount
            n += conn.execute(refresh_tokens.delete().where(
                refresh_tokens.c.expires_at < now - timedelta(days=1))).rowcount
        return n


def _session(m: Any) -> SessionRow:
    created = _aware(m["created_at"])
    return SessionRow(
        sid=m["sid"], username=m["username"], stage=m["stage"], amr=m["amr"],
        created_at=created, last_seen_at=_aware(m["last_seen_at"]),
        expires_at=_aware(m["expires_at"]), revoked_at=_aware(m["revoked_at"]),
        authenticated_at=_aware(m.get("authenticated_at")) or created,
        source_ip=m.get("source_ip"), user_agent=m.get("user_agent"),
    )


def _refresh(row: Any) -> RefreshRow:
    return RefreshRow(
        family_id=row.family_id, client_id=row.client_id, username=row.username, sid=row.sid,
        scope=row.scope, auth_time=int(row.auth_time), expires_at=_aware(row.expires_at),
        created_at=_aware(row.created_at), amr=row.amr,
    )
