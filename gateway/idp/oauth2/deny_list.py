"""The deny list: every process's in-memory mirror of the revocation table
(``idp_revocations``), so a revoked token, session or client is refused everywhere
within a second without a database query per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from gateway.idp.oauth2.clients import CACHE_SECONDS
from gateway.idp.oauth2.store import Store

#: A process whose client cache has not yet seen a disable may issue tokens for up
#: to ``CACHE_SECONDS`` after it; ``iat`` is in whole seconds. A "client" deny entry
#: therefore also covers tokens issued this long after the disable (so re-enabling a
#: client within this time keeps its first new tokens dead until the entry expires).
CLIENT_DENY_GRACE = CACHE_SECONDS + 1.0

#: A row's ``id`` is drawn when it is written, but the row is seen when its transaction
#: commits: a revocation committed after a later-numbered one (another process, a longer
#: transaction) lies below the high-water mark by then. The numbers skipped below the
#: mark are therefore asked for again at every refresh for this long (no revocation's
#: transaction lasts a minute; a number skipped for good, a rolled-back insert, is
#: dropped then), at most ``MAX_GAPS`` of them, the newest.
GAP_SECONDS = 60.0
MAX_GAPS = 1000


class TokenId(str):
    """A ``jti`` that also carries the token's client, issue time and, for a token
    exchanged from another (RFC 8693), that subject token's ``jti`` (``parent``).

    Callers that cache verified principals (``gateway.proxy.credentials``) re-check a
    cached token with ``deny.denied("jti", principal.token_id)`` only; carrying
    the client here lets that same lookup see a disabled client, and carrying the
    parent lets it see the subject token revoked: an exchanged token dies with it."""

    client_id: str
    issued_at: float | None
    parent: str | None

    def __new__(cls, jti: str, client_id: str, issued_at: float | None,
                parent: str | None = None) -> TokenId:
        self = super().__new__(cls, jti)
        self.client_id = client_id
        self.issued_at = issued_at
        self.parent = parent
        return self


#: the claim of an exchanged token (RFC 8693) naming its subject token's ``jti``
SUBJECT_JTI = "subject_jti"


def token_id(claims: Mapping[str, Any]) -> TokenId:
    """The :class:`TokenId` of a verified access token's ``claims``."""
    iat = claims.get("iat")
    parent = claims.get(SUBJECT_JTI)
    return TokenId(claims["jti"], claims["client_id"],
                   float(iat) if isinstance(iat, int | float) else None,
                   parent if isinstance(parent, str) and parent else None)


class DenyList:
    """An in-memory mirror of the revocation table, refreshed by high-water mark."""

    def __init__(self, store: Store, refresh_interval: float = 0.5, grace: float = 0.0
                 ) -> None:
        self.store = store
        self.clock = store.clock
        self.refresh_interval = refresh_interval
        # an entry outlives its row's expiry (the token's exp) by the clock skew the
        # verifiers allow past exp, so that a revoked token is never taken again then
        self.grace = grace
        self._lock = threading.Lock()
        self._hwm = 0
        self._checked = float("-inf")
        self._entries: dict[tuple[str, str], float] = {}  # (kind, value) -> expiry ts
        # disabled clients: client_id -> (disabled at, entry expiry), both timestamps
        self._clients: dict[str, tuple[float, float]] = {}
        self._gaps: dict[int, float] = {}  # a number skipped -> when first missed
        self._read = False  # whether the table was read once (below: purged rows)

    def invalidate(self) -> None:
        """Refetch at the next check (this process just revoked something)."""
        self._checked = float("-inf")

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_interval:
            return
        with self._lock:
            if not force and now - self._checked < self.refresh_interval:
                return
            rows = self.store.denied_since(self._hwm, self._gaps)
            for row_id, kind, value, expires, created in rows:
                if kind == "client":
                    # a later disable covers every earlier one (a late row may be older)
                    entry = (created.timestamp(), expires.timestamp())
                    self._clients[value] = max(self._clients.get(value, entry), entry)
                else:
                    self._entries[(kind, value)] = expires.timestamp()
                self._gaps.pop(row_id, None)
            self._note_gaps([r[0] for r in rows], now)
            self._checked = now
            if len(self._entries) > 10000:
                cutoff = self.clock().timestamp() - self.grace
                self._entries = {k: v for k, v in self._entries.items() if v > cutoff}
            if len(self._clients) > 1000:
                cutoff = self.clock().timestamp()
                self._clients = {k: v for k, v in self._clients.items() if v[1] > cutoff}

    def _note_gaps(self, ids: list[int], now: float) -> None:
        """Remember the numbers ``ids`` (just read, ascending) skip above the old mark,
        move the mark, forget the gaps past ``GAP_SECONDS``."""
        fresh = [i for i in ids if i > self._hwm]
        if fresh:
            # the first read starts at the oldest row kept: below it, purged rows
            low = self._hwm + 1 if self._read else fresh[0]
            seen = set(fresh)
            for missing in range(max(low, fresh[-1] - MAX_GAPS), fresh[-1]):
                if missing not in seen:
                    self._gaps[missing] = now
            self._hwm = fresh[-1]
        self._read = True
        if self._gaps:
            kept = sorted(i for i, at in self._gaps.items() if now - at < GAP_SECONDS)
            self._gaps = {i: self._gaps[i] for i in kept[-MAX_GAPS:]}

    def denied(self, kind: str, value: str | None) -> bool:
        if value is None:
            return False
        self.refresh()
        # the clock only for an entry found: nearly every token has none
        exp = self._entries.get((kind, value))
        if exp is not None and exp > self.clock().timestamp() - self.grace:
            return True
        if not isinstance(value, TokenId):
            return False
        if value.parent is not None:  # exchanged: denied with its subject token
            exp = self._entries.get(("jti", value.parent))
            if exp is not None and exp > self.clock().timestamp() - self.grace:
                return True
        return bool(self._clients) and self._client_denied(value.client_id, value.issued_at)

    def denied_client(self, client_id: str, issued_at: float | None) -> bool:
        """True if ``client_id`` was disabled after (or just before) a token of it
        issued at ``issued_at`` (None: unknown, so denied while the entry lives)."""
        self.refresh()
        return bool(self._clients) and self._client_denied(client_id, issued_at)

    def _client_denied(self, client_id: str, issued_at: float | None) -> bool:
        entry = self._clients.get(client_id)
        if entry is None:
            return False
        disabled_at, expires = entry
        if expires <= self.clock().timestamp():
            return False
        return issued_at is None or issued_at <= disabled_at + CLIENT_DENY_GRACE
