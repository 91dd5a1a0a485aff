"""Registered clients as authlib ``ClientMixin`` objects, read from ``gateway.tables.clients``
through a short-lived cache (a disabled client stops working within a second)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from authlib.oauth2.rfc6749.util import scope_to_list
from sqlalchemy.engine import Engine

from gateway.idp.oauth2.oidc import STANDARD_SCOPES
from gateway.idp.scopes import covers, is_gateway_scope
from gateway.tables import clients, departments, systems

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    department: str
    region: str
    grant_types: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    scope: str
    token_endpoint_auth_method: str
    secret_hash: str | None
    jwks: dict[str, Any] | None
    backchannel_logout_uri: str | None
    status: str
    post_logout_redirect_uris: tuple[str, ...] = ()
    verify_secret: Any = None  # services.verify_client_secret
    # the system it signs users in to (delegations name it): only one of the client's own
    # department (``_load``); a client of another department naming it is not that
    # system, as the proxy decides a user's token through it for both departments
    system: str | None = None
    # PKCE required of its authorization requests (a public client's always are)
    require_pkce: bool = False
    # RFC 9449: its token requests must carry a DPoP proof (gateway.idp.dpop)
    dpop_bound: bool = False
    # its assertions may name the token endpoint or several audiences (rfc7523.py)
    lenient_assertion_audience: bool = False
    # a fixed credential at /s/ instead of a token: "off", "basic", "api_key", and the
    # keyed hash of its API key (gateway.proxy.static_credentials)
    static_credential: str = "off"
    api_key_hash: str | None = None
    # the algorithm of its ID tokens; None the token key's (oidc.id_token_key)
    id_token_signed_response_alg: str | None = None
    # Keycloak's "Consent required"; None the rule (consent.needed)
    consent_required: bool | None = None

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"  # noqa: S105

    def default_scope(self, grant_type: str) -> str:
        scopes = scope_to_list(self.scope) or []
        if grant_type == "client_credentials":
            scopes = [s for s in scopes if s not in ("openid", "profile", "offline_access")]
        return " ".join(scopes)

    # authlib ClientMixin
    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def may_have(self, scope: str) -> bool:
        """Whether the client may be granted the one ``scope``: a standard OpenID Connect
        scope (every client), or one it is registered for (``proxy`` covers
        ``proxy:{system}``)."""
        return scope in STANDARD_SCOPES or covers(scope_to_list(self.scope) or [], scope)

    def refused_scopes(self, scope: str | None) -> list[str]:
        """The scopes of a requested ``scope`` that make the request fail
        (``invalid_scope``, ``gateway.idp.oauth2.rfc6749.check_scope``), in request
        order: each gateway scope (``proxy``, ``proxy:...``, the API scopes) the client
        is not registered for, since what it opens is why the token is asked for; and
        when the client may have none of what it asked for, all of it (a token for
        nothing). A scope the gateway does not define beside one the client may have
        is dropped (RFC 6749 section 3.3): relying-party libraries ask for scopes of
        their own (``groups``) by default."""
        wanted = list(dict.fromkeys(scope_to_list(scope) or []))
        refused = [w for w in wanted if is_gateway_scope(w) and not self.may_have(w)]
        if refused or any(self.may_have(w) for w in wanted):
            return refused
        return wanted

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """What the client may hold now of ``scope`` (RFC 6749 section 3.3): the scopes
        it may have, the rest dropped. A request naming a scope the client may not have
        never gets here (it is refused first); this narrows what a grant carries over
        (a refresh token's scope after the client's registration shrank)."""
        if not scope:
            return self.scope
        return " ".join(w for w in dict.fromkeys(scope_to_list(scope) or [])
                        if self.may_have(w))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match (RFC 9700 section 2.1)

    def check_post_logout_redirect_uri(self, uri: str) -> bool:
        """Exact match against the registered post-logout URIs (RP-Initiated Logout 1.0
        section 3.1); the redirect URIs never count."""
        return uri in self.post_logout_redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash or self.verify_secret is None:
            return False
        return bool(self.verify_secret(client_secret, self.secret_hash))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class ClientRegistry:
    """Active clients by id, cached for ``CACHE_SECONDS``."""

    def __init__(self, engine: Engine, verify_secret: Any,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.verify_secret = verify_secret
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Client | None]] = {}
        self._lock = threading.Lock()

    def get(self, client_id: str | None, *, include_disabled: bool = False) -> Client | None:
        if not client_id or not isinstance(client_id, str) or len(client_id) > 128:
            return None
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(client_id)
        if hit is not None and now - hit[0] < self.cache_seconds:
            client = hit[1]
        else:
            client = self._load(client_id)
            with self._lock:
                if len(self._cache) > 10000:
                    self._cache.clear()
                self._cache[client_id] = (now, client)
        if client is None or (client.status != "active" and not include_disabled):
            return None
        return client

    def invalidate(self) -> None:
        with self._lock:
            self._cache.clear()

    def _load(self, client_id: str) -> Client | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(clients, departments.c.region_code,
                          systems.c.department_code.label("system_department"))
                .join(departments, departments.c.code == clients.c.department_code)
                .outerjoin(systems, systems.c.code == clients.c.system)
                .where(clients.c.client_id == client_id)
            ).first()
        if row is None:
            return None
        # B acting for A signs in as A only to a system the delegation names: a client
        # of czt saying it is jgswj's vehicles would get A's identity into czt's system
        own_system = row.system if row.system_department == row.department_code else None
        return Client(
            client_id=row.client_id, name=row.name, department=row.department_code,
            region=row.region_code, grant_types=tuple(row.grant_types or ()),
            redirect_uris=tuple(row.redirect_uris or ()), scope=row.scope or "",
            token_endpoint_auth_method=row.token_endpoint_auth_method,
            secret_hash=row.secret_hash, jwks=row.jwks,
            backchannel_logout_uri=row.backchannel_logout_uri, status=row.status,
            post_logout_redirect_uris=tuple(row.post_logout_redirect_uris or ()),
            verify_secret=self.verify_secret, system=own_system,
            require_pkce=bool(row.require_pkce),
            dpop_bound=bool(row.dpop_bound),
            lenient_assertion_audience=bool(row.lenient_assertion_audience),
            static_credential=row.static_credential or "off",
            api_key_hash=row.api_key_hash,
            id_token_signed_response_alg=row.id_token_signed_response_alg,
            consent_required=row.consent_required,
        )
