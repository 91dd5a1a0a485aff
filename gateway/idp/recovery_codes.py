"""Recovery codes: one-time codes a user signs in with instead of a TOTP code when the
authenticator is lost, then re-enrols from the account page.

A set of ``COUNT`` codes is made when the user enrols (or re-enrols) a TOTP, or asks
for a new set; the new set replaces the old one whole. Each code is shown once and
kept only as a keyed hash (``keys.mac``, bound to the user id), never in the clear:
a code has 50 random bits, too many to guess behind the account lockout, so a slow
password hash would buy nothing a keyed hash does not. Using a code is one
conditional UPDATE (``used_at IS NULL``), so a code signs in once even when it is
presented twice at the same moment.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.storage import write_transaction
from gateway.tables import user_recovery_codes as codes

COUNT = 10
# Crockford's base 32 without the letters read as digits (i, l, o) or as another
# letter (u): what a person copies from paper without a second guess
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
GROUP = 5  # two groups of five characters: 10 x 5 bits = 50 bits
PURPOSE = "idp.recovery_code"


def normalise(typed: str) -> str:
    """A code as typed (any case, spaces or dashes between the groups) in its stored
    spelling; what cannot be a code comes back empty."""
    text = "".join(ch for ch in typed.strip().lower() if ch not in " -\t")
    if len(text) != 2 * GROUP or any(ch not in ALPHABET for ch in text):
        return ""
    return text


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(2 * GROUP))
    return f"{raw[:GROUP]}-{raw[GROUP:]}"


class RecoveryCodes:
    """A user's recovery codes in the ``user_recovery_codes`` table."""

    def __init__(self, engine: Engine, keys: Any, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.keys = keys
        self.clock = clock

    def _hash(self, user_id: int, code: str) -> str:
        return str(self.keys.mac(PURPOSE, f"{user_id}:{code}".encode()).hex())

    def replace(self, user_id: int) -> list[str]:
        """A new set for ``user_id`` (the old set, used codes included, is gone);
        returns the codes, the only time they exist in the clear."""
        made = [_new_code() for _ in range(COUNT)]
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(codes.delete().where(codes.c.user_id == user_id))
            conn.execute(codes.insert(), [
                {"user_id": user_id, "code_hash": self._hash(user_id, normalise(c)),
                 "created_at": now, "used_at": None} for c in made])
        return made

    def use(self, user_id: int, typed: str) -> bool:
        """True once for each code of the user's current set; False for anything else
        (a used code, another user's, a typo)."""
        code = normalise(typed)
        if not code:
            return False
        with self.engine.begin() as conn:
            return bool(conn.execute(
                codes.update().where(codes.c.user_id == user_id,
                                     codes.c.code_hash == self._hash(user_id, code),
                                     codes.c.used_at.is_(None))
                .values(used_at=self.clock())).rowcount == 1)

    def remaining(self, user_id: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(codes)
                .where(codes.c.user_id == user_id, codes.c.used_at.is_(None))).scalar() or 0)

    def clear(self, user_id: int) -> None:
        """No codes (the user's TOTP was removed: nothing to recover)."""
        with self.engine.begin() as conn:
            conn.execute(codes.delete().where(codes.c.user_id == user_id))
