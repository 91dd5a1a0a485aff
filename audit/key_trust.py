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

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from audit.tables import checkpoints, records
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


def audit_key_before(keys: Any, ms: int) -> str | None:
    """An ``audit`` key the ring made on or before the UTC day of ``ms`` (its kid names
    the day, ``audit-YYYYMMDD-<thumbprint>``, and the ring seals its private part bound
    to the kid: an insider cannot back-date one), or None. Whether a checkpointer
    could have signed records of that time (``audit.coverage``)."""
    day = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y%m%d")
    try:
        with keys.engine.connect() as conn:
            kids = sorted(r.kid for r in conn.execute(
                sa.select(signing_keys.c.kid).where(signing_keys.c.key_use == KEY_USE)))
    except Exception:  # no key ring to ask: nothing proves a key existed
        return None
    for kid in kids:
        parts = kid.split("-", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[1] <= day and \
                made_by_ring(keys, kid):
            return kid
    return None


def signatures_in_log(engine: sa.Engine, kid: str) -> int:
    """How many checkpoints (and purge seals) in the log ``kid`` signed. Checkpoints are
    never purged, so these include every one an archive of the log carries: while
    there is one, the key's public part must stay provable (``govgate keys destroy``
    refuses it)."""
    with engine.connect() as conn:
        n = int(conn.execute(sa.select(sa.func.count()).select_from(checkpoints)
                             .where(checkpoints.c.kid == kid)).scalar_one())
        seals = conn.execute(sa.select(records.c.extra).where(
            records.c.event_type == "audit_purge",
            records.c.extra.contains(kid))).scalars().all()
    return n + sum(1 for extra in seals if json.loads(extra).get("seal_kid") == kid)
