"""Who is calling: a bearer access token (RFC 9068) or the portal session cookie.

``Authenticator.authenticate`` is what the proxy, forward-auth, the admin and
audit APIs and userinfo call. Every failure is one opaque
:class:`gateway.errors.Unauthorized`; the precise reason is on ``exc.reason``
for the audit record, never in the response.

A user's bearer principal carries the user's current department, region and
roles (``gateway.idp.live_users``), not the ones the token was issued with; a user
disabled or gone since is refused. Changes reach every process within a second.

Revocation reaches every process within a second: each Authenticator mirrors
the deny list (``idp_revocations``) in memory and fetches rows above its
high-water mark at most every ``refresh_interval`` seconds (0.5 s). A check is
a dict lookup; no request queries the database.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.util import scope_to_list
from starlette.requests import Request

from gateway.errors import NotFound, Unauthorized
from gateway.idp.live_users import LiveUsers
from gateway.idp.oauth2.clients import CACHE_SECONDS
from gateway.idp.oauth2.provider import SESSION_COOKIE, get_provider
from gateway.idp.oauth2.rfc9068 import InvalidAccessToken, verify_access_token
from gateway.idp.scopes import covers

#: A process whose client cache has not yet seen a disable may issue tokens for up
#: to ``CACHE_SECONDS`` after it; ``iat`` is in whole seconds. A "client" deny entry
#: therefore also covers tokens issued this long after the disable (so re-enabling a
#: client within this time keeps its first new tokens dead until the entry expires).
CLIENT_DENY_GRACE = CACHE_SECONDS + 1.0


class TokenId(str):
    """A ``jti`` that also carries the token's client and issue time.

    Callers that cache verified principals (``gateway.proxy.credentials``) re-check a
    cached token with ``deny.denied("jti", principal.token_id)`` only; carrying
    the client here lets that same lookup see a disabled client."""

    client_id: str
    issued_at: float | None

    def __new__(cls, jti: str, client_id: str, issued_at: float | None) -> TokenId:
        self = super().__new__(cls, jti)
        self.client_id = client_id
        self.issued_at = issued_at
        return self


@dataclass(frozen=True)
class Principal:
    subject: str  # the user's username, or "client:<client_id>" for client_credentials
    username: str | None
    department: str
    region: str
    roles: frozenset[str]
    client_id: str | None
    scope: frozenset[str]
    session_id: str | None  # portal session, when authenticated by cookie
    token_id: str | None  # jti, when authenticated by bearer token
    via: str  # "bearer" | "session"
    name: str | None = None  # the user's display name (张三), when known


def _unauthorized(reason: str) -> Unauthorized:
    return Unauthorized("invalid or missing credentials", reason=reason)


class DenyList:
    """An in-memory mirror of the revocation table, refreshed by high-water mark."""

    def __init__(self, store: Any, refresh_interval: float = 0.5) -> None:
        self.store = store
        self.clock = store.clock
        self.refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._hwm = 0
        self._checked = float("-inf")
        self._entries: dict[tuple[str, str], float] = {}  # (kind, value) -> expiry ts
        # disabled clients: client_id -> (disabled at, entry expiry), both timestamps
        self._clients: dict[str, tuple[float, float]] = {}

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
            rows = self.store.denied_since(self._hwm)
            for row_id, kind, value, expires, created in rows:
                if kind == "client":
                    # rows come in id order: a later disable covers every earlier one
                    self._clients[value] = (created.timestamp(), expires.timestamp())
                else:
                    self._entries[(kind, value)] = expires.timestamp()
                self._hwm = max(self._hwm, row_id)
            self._checked = now
            if len(self._entries) > 10000:
                cutoff = self.clock().timestamp()
                self._entries = {k: v for k, v in self._entries.items() if v > cutoff}
            if len(self._clients) > 1000:
                cutoff = self.clock().timestamp()
                self._clients = {k: v for k, v in self._clients.items() if v[1] > cutoff}

    def denied(self, kind: str, value: str | None) -> bool:
        if value is None:
            return False
        self.refresh()
        exp = self._entries.get((kind, value))
        if exp is not None and exp > self.clock().timestamp():
            return True
        if self._clients and isinstance(value, TokenId):
            return self._client_denied(value.client_id, value.issued_at)
        return False

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


class Authenticator:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.provider = get_provider(services)
        self.settings = services.settings
        self.deny = self.provider.server.deny_list()
        self.users: LiveUsers = services.live_users

    def live(self, principal: Principal) -> Principal:
        """``principal`` (of a bearer token) with its user's current department, region
        and roles; Unauthorized when the user is disabled or gone. A client-credentials
        principal speaks for its client's current department and holds no scope the
        client is no longer registered for. Sessions (read from the database
        already) are returned as they are."""
        if principal.via != "bearer":
            return principal
        if principal.username is None:
            return self._live_client(principal)
        user = self.users.get(principal.username)
        if user is None or not user.active:
            raise _unauthorized("user disabled or gone")
        if (user.roles == principal.roles and user.department == principal.department
                and user.region == principal.region and user.name == principal.name):
            return principal
        return dataclasses.replace(principal, department=user.department, region=user.region,
                                   roles=user.roles, name=user.name)

    def _live_client(self, principal: Principal) -> Principal:
        client = self.provider.server.clients.get(principal.client_id)  # cached 1 s
        if client is None:
            raise _unauthorized("client disabled or gone")
        registered = scope_to_list(client.scope) or []
        scope = frozenset(s for s in principal.scope if covers(registered, s))
        if client.department == principal.department and scope == principal.scope:
            return principal
        return dataclasses.replace(principal, department=client.department,
                                   region=client.region, scope=scope)

    async def authenticate(self, request: Request, *, audience: str | None = None) -> Principal:
        header = request.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("not a bearer credential")
            return self.from_token(token.strip(), audience=audience)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return self.from_session(cookie)
        raise _unauthorized("no credential")

    def from_token(self, token: str, *, audience: str | None = None) -> Principal:
        """Principal of a bearer access token, or Unauthorized."""
        try:
            claims = verify_access_token(
                self.services.keys, token, issuer=self.provider.server.issuer,
                now=self.services.clock(), skew=self.settings.clock_skew_seconds,
                audience=audience)
        except InvalidAccessToken as exc:
            raise _unauthorized(exc.reason) from None
        iat = claims.get("iat")
        jti = TokenId(claims["jti"], claims["client_id"],
                      float(iat) if isinstance(iat, int | float) else None)
        if self.deny.denied("jti", jti):
            raise _unauthorized("client disabled" if self.deny.denied_client(
                jti.client_id, jti.issued_at) else "token revoked")
        sid = claims.get("sid")
        if self.deny.denied("sid", sid):
            raise _unauthorized("session revoked")
        is_client = claims.get("gty") == "client_credentials"
        roles = claims.get("roles") or []
        return self.live(Principal(
            subject=f"client:{claims['client_id']}" if is_client else str(claims["sub"]),
            username=None if is_client else str(claims["sub"]),
            department=str(claims.get("department", "")),
            region=str(claims.get("region", "")),
            roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
            client_id=str(claims["client_id"]),
            scope=frozenset(str(claims.get("scope", "")).split()),
            session_id=str(sid) if sid else None,
            token_id=jti,
            via="bearer",
        ))

    def from_session(self, cookie: str) -> Principal:
        """Principal of a portal session cookie, or Unauthorized."""
        row = self.provider.valid_session(cookie)
        if row is None:
            raise _unauthorized("no live session (unknown, revoked, timed out or incomplete)")
        try:
            user = self.services.org.get_user(row.username)
        except NotFound:
            raise _unauthorized("session user gone") from None
        if user.status != "active":
            raise _unauthorized("user disabled")
        if user.must_change:
            raise _unauthorized("password change pending")
        return Principal(
            subject=user.username, username=user.username, department=user.department,
            region=user.region, roles=user.roles, client_id=None, scope=frozenset(),
            session_id=row.sid, token_id=None, via="session", name=user.name,
        )
