"""Per-caller assertions: for a system with ``assertion: per_caller``, the proxy
signs one ``X-Govgate-Assertion`` per (caller, system) and sends it again on that
caller's requests for at most :data:`REUSE_SECONDS`, instead of signing one per
request (``gateway.proxy.assertion``, the default).

Such an assertion carries no request id and is bound to no method or path (it
serves several requests); its ``jti`` is its own. ``X-Request-ID`` still goes with
every request, and the request's audit record names the assertion's ``jti``
(``extra.assertion_jti``), so that a system's log line leads to the request.

An assertion is reused only while everything it states is what would be signed now
(the cache key is :func:`gateway.proxy.assertion.claims_key`: subject, username,
department, region, roles, client, channel, acting client, issuer, system: a change
of rights takes a new one), and never past its ``exp`` nor past the expiry of the
token the request came with. A caller refused at admission (locked, revoked, out of
scope) never reaches this step.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.proxy.assertion import MAX_LIFETIME, AssertionSigner, assertion_claims, claims_key

REUSE_SECONDS = 30
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CallerAssertion:
    token: str
    jti: str
    iat: int
    exp: int


class CallerAssertions:
    """The signed assertions of the per-caller systems, by what they state."""

    def __init__(self, signer: AssertionSigner, *, reuse: int = REUSE_SECONDS,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.signer = signer
        self.reuse = reuse
        self.max_entries = max_entries
        self._by_key: dict[tuple[Any, ...], CallerAssertion] = {}

    def get(self, principal: Any, *, issuer: str, system: str, now: datetime,
            lifetime: int = MAX_LIFETIME) -> CallerAssertion:
        """The assertion for ``principal`` calling ``system`` at ``now``: the one signed
        for the same claims within the reuse window, else a new one."""
        t = now.timestamp()
        token_exp = getattr(principal, "expires_at", None)
        key = claims_key(principal, issuer, system)
        hit = self._by_key.get(key)
        if hit is not None and hit.iat <= t < hit.exp and (
                token_exp is None or hit.exp <= token_exp):
            return hit
        iat = int(t)
        exp = iat + max(1, min(self.reuse, int(lifetime), MAX_LIFETIME))
        if token_exp is not None:
            exp = min(exp, int(token_exp))  # the token is valid now: token_exp > t >= iat
        jti = secrets.token_hex(16)
        claims = assertion_claims(principal, issuer=issuer, system=system, request_id=jti,
                                  now=now)
        del claims["request_id"]  # it serves several requests: X-Request-ID names each
        claims["exp"] = exp
        made = CallerAssertion(self.signer.sign(claims), jti, iat, exp)
        if len(self._by_key) >= self.max_entries:
            self._by_key.clear()
        self._by_key[key] = made
        return made
