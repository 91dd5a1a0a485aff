"""The stored side of WebAuthn: each user's credentials, and the challenges of the
ceremonies under way.

A challenge is kept here, not in the browser: the browser holds only a random
ceremony token (an HttpOnly cookie), stored as a keyed hash. Taking a challenge
deletes its row in the same transaction that reads it, so a challenge answers one
ceremony however often it is presented, and an expired or wrongly bound one is gone
too. A new sign count is written only over the count it was checked against (one
conditional UPDATE), so two assertions racing with the same count cannot both pass.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.clock import as_utc
from gateway.idp.passkeys.tables import webauthn_challenges as challenges
from gateway.idp.passkeys.tables import webauthn_credentials as credentials
from gateway.storage import write_transaction

CHALLENGE_SECONDS = 120
CEREMONY_PURPOSE = "idp.webauthn_ceremony"
PURPOSES = ("register", "verify", "login")
MAX_ID = 2**31 - 1  # the credentials' id column (INTEGER)


@dataclass(frozen=True)
class Credential:
    id: int
    user_id: int
    credential_id: str  # base64url
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...]
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class Challenge:
    purpose: str
    sid: str | None
    user_id: int | None
    challenge: str  # base64url
    name: str | None


def _credential(m: Any) -> Credential:
    return Credential(
        id=m["id"], user_id=m["user_id"], credential_id=m["credential_id"],
        public_key=bytes(m["public_key"]), sign_count=int(m["sign_count"]),
        transports=tuple(t for t in m["transports"].split(",") if t), name=m["name"],
        created_at=as_utc(m["created_at"]),
        last_used_at=as_utc(m["last_used_at"]) if m["last_used_at"] else None)


class TooManyCeremonies(Exception):
    """Too many unanswered challenges under one name (a source address); the seconds
    until the oldest expires."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"too many ceremonies under way; {wait} s")
        self.wait = wait


class PasskeyStore:
    """Credentials and challenges in the ``webauthn_*`` tables."""

    def __init__(self, engine: Engine, keys: Any, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock

    # -- credentials ---------------------------------------------------------------------

    def of_user(self, user_id: int) -> list[Credential]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(credentials).where(credentials.c.user_id == user_id)
                                .order_by(credentials.c.id)).mappings().all()
        return [_credential(r) for r in rows]

    def count(self, user_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(credentials)
                                    .where(credentials.c.user_id == user_id)).scalar_one())

    def find(self, credential_id: str) -> Credential | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(credentials).where(
                credentials.c.credential_id == credential_id)).mappings().first()
        return _credential(row) if row else None

    def add(self, user_id: int, *, credential_id: str, public_key: bytes, sign_count: int,
            transports: list[str], name: str) -> bool:
        """False when the credential is registered already (to anyone)."""
        with write_transaction(self.engine) as conn:
            if conn.execute(sa.select(credentials.c.id).where(
                    credentials.c.credential_id == credential_id)).first():
                return False
            conn.execute(credentials.insert().values(
                user_id=user_id, credential_id=credential_id, public_key=public_key,
                sign_count=sign_count, transports=",".join(transports)[:200], name=name,
                created_at=self.clock()))
        return True

    def used(self, credential: Credential, new_count: int) -> bool:
        """Record a use with its new sign count, only over the count it was checked
        against; False: another use came first (or the key was removed)."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(credentials.update().where(
                credentials.c.id == credential.id,
                credentials.c.sign_count == credential.sign_count,
            ).values(sign_count=new_count, last_used_at=self.clock())).rowcount
        return done == 1

    def remove(self, user_id: int, key_id: int) -> Credential | None:
        """Remove one of the user's credentials; the removed one, or None."""
        if not 0 < key_id <= MAX_ID:  # past the column: no such key, not an overflow
            return None
        with write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(credentials).where(
                credentials.c.id == key_id, credentials.c.user_id == user_id)).mappings().first()
            if row is None:
                return None
            conn.execute(credentials.delete().where(credentials.c.id == key_id))
        return _credential(row)

    def remove_all(self, user_id: int) -> int:
        with write_transaction(self.engine) as conn:
            return int(conn.execute(credentials.delete().where(
                credentials.c.user_id == user_id)).rowcount)

    # -- challenges ----------------------------------------------------------------------

    def _hash(self, token: str) -> str:
        return str(self.keys.mac(CEREMONY_PURPOSE, token.encode()).hex())

    def put(self, purpose: str, challenge: str, *, sid: str | None = None,
            user_id: int | None = None, name: str | None = None,
            at_most: int | None = None) -> str:
        """Keep a new ceremony's challenge; the token the browser holds for it.

        ``at_most``: refuse (:class:`TooManyCeremonies`) when ``at_most`` challenges of
        this purpose under this ``name`` are live already (a session's new challenge
        replaces its earlier one of the purpose). A passwordless challenge is
        made for anyone who asks, before any sign-in: its ``name`` is the source
        address (``gateway.login_throttle.address_key``), so one address holds a few
        unanswered challenges at a time, not a table full."""
        assert purpose in PURPOSES
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(challenges.delete().where(challenges.c.expires_at < now))
            if sid is not None:
                # the session's earlier ceremony of this kind is over: its browser holds
                # one ceremony cookie, which the new token replaces (so a session holds
                # one challenge per purpose, however often it asks)
                conn.execute(challenges.delete().where(challenges.c.sid == sid,
                                                       challenges.c.purpose == purpose))
            if at_most is not None:
                live = conn.execute(
                    sa.select(sa.func.count(), sa.func.min(challenges.c.expires_at))
                    .where(challenges.c.purpose == purpose, challenges.c.name == name)).one()
                if live[0] >= at_most:
                    wait = (as_utc(live[1]) - now).total_seconds()
                    raise TooManyCeremonies(max(1, math.ceil(wait)))
            conn.execute(challenges.insert().values(
                token_hash=self._hash(token), purpose=purpose, sid=sid, user_id=user_id,
                challenge=challenge, name=name,
                expires_at=now + timedelta(seconds=CHALLENGE_SECONDS)))
        return token

    def take(self, token: str, purpose: str, *, sid: str | None = None) -> Challenge | None:
        """The ceremony's challenge, once: None when there is none, it has expired, or it
        was made for another purpose or session (it is gone all the same)."""
        if not token:
            return None
        key = self._hash(token)
        with write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(challenges).where(
                challenges.c.token_hash == key)).mappings().first()
            if row is None:
                return None
            conn.execute(challenges.delete().where(challenges.c.token_hash == key))
        if (row["purpose"] != purpose or row["sid"] != sid
                or as_utc(row["expires_at"]) <= self.clock()):
            return None
        return Challenge(purpose=row["purpose"], sid=row["sid"], user_id=row["user_id"],
                         challenge=row["challenge"], name=row["name"])
