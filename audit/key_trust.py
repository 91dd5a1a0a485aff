"""Which keys may sign a checkpoint: the ``audit`` keys the key ring itself made.

The key ring keeps every public key in a table (``keys_signing_keys``): a row whose
kid carries the thumbprint of its public JWK verifies, whoever wrote it. An insider
who can write the database, but holds neither the master key nor the audit key,
could add a key pair of their own as a retired ``audit`` key, rewrite the records
and sign the checkpoints anew (found 2026-12-05, docs/seams.md). Only the ring, with
the master key, seals a key's private part bound to its kid; a key whose sealed
private part does not open under the master key was not made by the ring, and a
signature by it proves nothing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from keys.ring import _private_context  # the context the ring seals a private key under
from keys.tables import signing_keys
from texts import Text

KEY_USE = "audit"


class UntrustedKey(Exception):
    """A signature that verifies, by a key the key ring did not make (or, ``why``, that
    an archive's trust anchor does not hold: ``audit.archive_trust``)."""

    def __init__(self, kid: str, why: Text | None = None) -> None:
        super().__init__(kid)
        self.kid = kid
        self.why = why


def made_by_ring(keys: Any, kid: str) -> bool:
    """True when ``kid`` is an ``audit`` key whose private part the master key opens
    (False for anything else, an unreadable row or a ring without the master key).
    ``keys`` is a ``KeyService``: its ``engine`` and ``open(blob, context)``."""
    try:
        with keys.engine.connect() as conn:
            row = conn.execute(sa.select(signing_keys.c.key_use, signing_keys.c.private_blob)
                               .where(signing_keys.c.kid == kid)).first()
        if row is None or row.key_use != KEY_USE or row.private_blob is None:
            return False
        keys.open(bytes(row.private_blob), _private_context(kid))
    except Exception:  # any failure to prove it is a key not to trust
        return False
    return True


class TrustedKids:
    """:func:`made_by_ring`, remembered per kid for one verification (a few kids sign
    thousands of checkpoints)."""

    def __init__(self, keys: Any) -> None:
        self.keys = keys
        self._known: dict[str, bool] = {}

    def __call__(self, kid: str) -> bool:
        known = self._known.get(kid)
        if known is None:
            known = self._known[kid] = made_by_ring(self.keys, kid)
        return known
