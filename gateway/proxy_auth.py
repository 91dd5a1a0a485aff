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
    try:
        from gateway.auth import Authenticator  # type: ignore[import-not-found]
    except ImportError:
        return BearerAuthenticator(services)
    return Authenticator(services)  # type: ignore[no-any-return]
