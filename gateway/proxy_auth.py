"""Who is calling: the identity engineer's ``gateway.auth.Authenticator`` when it
exists, else a bearer-only stand-in with the same contract.

The stand-in verifies an RFC 9068 access token (``gateway.oauth2.rfc9068``:
typ, signature from our key ring, issuer, exp/nbf, audience = the issuer) and
knows nothing of sessions or revocation; ``gateway.auth`` adds both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request

from gateway.errors import Unauthorized


@dataclass(frozen=True)
class Principal:
    """Same fields as ``gateway.auth.Principal``."""

    subject: str
    username: str | None
    department: str
    region: str
    roles: frozenset[str]
    client_id: str | None
    scope: frozenset[str]
    session_id: str | None
    token_id: str | None
    via: str


class AuthenticatorLike(Protocol):
    async def authenticate(self, request: Request, *, audience: str | None = None) -> Any: ...


class BearerAuthenticator:
    """Stand-in: bearer access tokens only."""

    def __init__(self, services: Any) -> None:
        self.services = services

    async def authenticate(self, request: Request, *, audience: str | None = None) -> Principal:
        from gateway.oauth2.rfc9068 import InvalidAccessToken, verify_access_token

        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("authentication required")
        settings = self.services.settings
        try:
            claims = verify_access_token(
                self.services.keys, token.strip(), issuer=settings.issuer,
                now=self.services.clock(), skew=settings.clock_skew_seconds,
                audience=audience or settings.issuer,
            )
        except InvalidAccessToken as exc:
            err = Unauthorized("invalid token")
            err.reason = f"invalid token: {exc.reason}"  # type: ignore[attr-defined]
            raise err from None
        client_id = claims.get("client_id")
        is_client = claims.get("gty") == "client_credentials" or claims.get("sub") == client_id
        return Principal(
            subject=str(claims["sub"]),
            username=None if is_client else str(claims["sub"]),
            department=str(claims.get("department") or ""),
            region=str(claims.get("region") or ""),
            roles=frozenset(str(r) for r in claims.get("roles") or ()),
            client_id=client_id,
            scope=frozenset(str(claims.get("scope") or "").split()),
            session_id=claims.get("sid"),
            token_id=claims.get("jti"),
            via="bearer",
        )


def make_authenticator(services: Any) -> AuthenticatorLike:
    """``gateway.auth.Authenticator`` (one per services, shared with the portal and
    APIs when they put it in ``services.extra["authenticator"]``) behind a cache of
    verified bearer tokens; the bearer-only stand-in when gateway.auth is absent."""
    inner = services.extra.get("authenticator")
    if inner is None:
        try:
            from gateway.auth import Authenticator
        except ImportError:
            return BearerAuthenticator(services)
        inner = Authenticator(services)
    return CachingAuthenticator(
        inner, clock=lambda: services.clock().timestamp())


class CachingAuthenticator:
    """Remembers verified bearer tokens (as Envoy's jwt_authn does) so a client
    sending the same token again costs a dict lookup, not a signature check.

    An entry lives until the token's ``exp`` and at most ``ttl`` seconds (60 s), so
    a key destroyed in the ring stops being honoured within a minute. Revocation
    is still checked on every request through the inner authenticator's deny list
    (``inner.deny.denied(kind, value)``, refreshed within 1 s); an inner
    authenticator without one is never cached. Sessions are never cached.
    """

    def __init__(self, inner: Any, *, clock: Any = None, ttl: float = 60.0,
                 max_entries: int = 50_000) -> None:
        import time

        self.inner = inner
        self.deny = getattr(inner, "deny", None)
        self.monotonic = time.monotonic
        self.wall = clock or time.time
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[tuple[str, str | None], tuple[Any, float, float]] = {}

    async def authenticate(self, request: Request, *, audience: str | None = None) -> Any:
        header = request.headers.get("authorization")
        if self.deny is None or not header or header[:7].lower() != "bearer ":
            return await self.inner.authenticate(request, audience=audience)
        token = header[7:].strip()
        key = (token, audience)
        hit = self._cache.get(key)
        if hit is not None:
            principal, exp, until = hit
            if self.wall() < exp and self.monotonic() < until:
                if self.deny.denied("jti", principal.token_id) or self.deny.denied(
                        "sid", principal.session_id):
                    self._cache.pop(key, None)
                    err = Unauthorized("invalid or missing credentials")
                    err.reason = "token revoked"  # type: ignore[attr-defined]
                    raise err
                return principal
            self._cache.pop(key, None)
        principal = await self.inner.authenticate(request, audience=audience)
        token_exp = _exp_of(token)
        if token_exp is not None and principal.via == "bearer":
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = (principal, token_exp, self.monotonic() + self.ttl)
        return principal


def _exp_of(token: str) -> float | None:
    """``exp`` of a token the inner authenticator has just verified."""
    import base64
    import json

    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        exp = claims.get("exp")
    except (ValueError, IndexError, UnicodeError, AttributeError):
        return None
    return float(exp) if isinstance(exp, int | float) else None
