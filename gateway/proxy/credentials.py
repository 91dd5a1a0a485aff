"""Who is calling: ``gateway.idp.authenticator.Authenticator`` (bearer tokens with the deny
list, and portal sessions) behind a short cache of verified bearer tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request

from gateway.errors import Unauthorized
from texts import Text


class AuthenticatorLike(Protocol):
    async def authenticate(self, request: Request, *, audience: str | None = None,
                           before_proof_use: Callable[[Any], None] | None = None
                           ) -> Any: ...


SWEEP_FROM = 1024  # entries before the first sweep of expired ones


class CachingAuthenticator:
    """Remembers verified bearer tokens (as Envoy's jwt_authn does) so a client
    sending the same token again costs a dict lookup, not a signature check.

    An entry lives until the token's ``exp`` and at most ``ttl`` seconds (60 s), and
    only while its signing key still verifies by the ring (``keys``, cached 1 s: a
    key destroyed in any process ends its tokens here within a second); it is used
    only while the token is valid by the (wall) ``clock`` as verification has it,
    ``nbf`` - ``skew`` up to ``exp``: after the clock steps back, a token issued
    after the new time is refused here as the verifier refuses it. Revocation
    is still checked on every request through the inner authenticator's deny list
    (``inner.deny.denied(kind, value)``, refreshed within 1 s); an inner
    authenticator without one is never cached. Sessions are never cached.
    """

    def __init__(self, inner: Any, *, keys: Any = None, clock: Any = None,
                 ttl: float = 60.0, max_entries: int = 50_000, skew: float = 60.0) -> None:
        import time

        self.inner = inner
        self.deny = getattr(inner, "deny", None)
        # the user's current roles and department over a cached principal's claims
        self.live = getattr(inner, "live", None)
        # KeyService.still_verifies: without it nothing is cached (a destroyed key's
        # tokens would outlive it by the ttl)
        self.keys = keys
        self.monotonic = time.monotonic
        self.wall = clock or time.time
        self.ttl = ttl
        self.skew = skew
        self.max_entries = max_entries
        # (token, audience) → (principal, valid from (nbf - skew), exp, monotonic until,
        # kid)
        self._cache: dict[tuple[str, str | None], tuple[Any, float, float, float, str]] = {}
        self._sweep_at = min(SWEEP_FROM, max_entries)

    def cached(self, header: str | None, audience: str | None = None) -> Any:
        """The principal of an already-verified bearer ``Authorization`` header, or None
        (not cached: call :meth:`authenticate`). Raises Unauthorized when revoked.

        The proxy's hot path asks this first, before it builds a request object."""
        if self.deny is None or self.keys is None or not header or \
                header[:7].lower() != "bearer ":
            return None
        key = (header[7:].strip(), audience)
        hit = self._cache.get(key)
        if hit is None:
            return None
        principal, valid_from, exp, until, kid = hit
        if valid_from <= self.wall() < exp and self.monotonic() < until:
            if not self.keys.still_verifies("token", kid):
                self._cache.pop(key, None)
                return None  # verified again, and refused, by the inner authenticator
            if self.deny.denied("jti", principal.token_id) or self.deny.denied(
                    "sid", principal.session_id):
                self._cache.pop(key, None)
                raise Unauthorized(Text("auth.invalid_credentials",
                                        "invalid or missing credentials"),
                                   reason="token revoked")
            return principal if self.live is None else self.live(principal)
        self._cache.pop(key, None)
        return None

    async def authenticate(self, request: Request, *, audience: str | None = None,
                           before_proof_use: Callable[[Any], None] | None = None) -> Any:
        header = request.headers.get("authorization")
        principal = self.cached(header, audience)
        if principal is not None:
            return principal
        kw = {} if before_proof_use is None else {"before_proof_use": before_proof_use}
        principal = await self.inner.authenticate(request, audience=audience, **kw)
        if self.deny is None or self.keys is None or not header or \
                header[:7].lower() != "bearer ":
            return principal
        token = header[7:].strip()
        key = (token, audience)
        window = _window_of(token)
        if window is not None and principal.via == "bearer":
            if len(self._cache) >= self._sweep_at:
                self._sweep()
            nbf, exp, kid = window
            self._cache[key] = (principal, nbf - self.skew, exp, self.monotonic() + self.ttl,
                                kid)
        return principal


    def _sweep(self) -> None:
        """Drop the entries past their time. A token is rarely sent again after a
        client took the next one, so without this the cache would grow with every
        token ever seen until ``max_entries`` (measured: about 3 KiB a token, a
        server's memory climbing steadily under load). Swept when the cache has
        doubled since the last sweep: amortised, a constant cost per entry."""
        now, wall = self.monotonic(), self.wall()
        self._cache = {k: v for k, v in self._cache.items() if v[3] > now and v[2] > wall}
        if len(self._cache) > self.max_entries // 2:  # that many live: start afresh
            self._cache.clear()
        self._sweep_at = min(max(SWEEP_FROM, 2 * len(self._cache)), self.max_entries)


def _window_of(token: str) -> tuple[float, float, str] | None:
    """(``nbf`` or ``iat``, ``exp``, the header's ``kid``) of a token the inner
    authenticator has just verified."""
    import base64
    import json

    try:
        head, part = token.split(".")[:2]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat", 0))
        kid = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))).get("kid")
    except (ValueError, IndexError, UnicodeError, AttributeError):
        return None
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float) or \
            not isinstance(kid, str):
        return None
    return float(nbf), float(exp), kid
