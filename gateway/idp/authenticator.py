"""Who is calling: a bearer access token (RFC 9068) or the portal session cookie.

``Authenticator.authenticate`` is what the proxy, forward-auth, the admin and
audit APIs and userinfo call. Every failure is one opaque
:class:`gateway.errors.Unauthorized`; the precise reason is on ``exc.reason``
for the audit record, never in the response.

A user's bearer principal carries the user's current department, region and
roles (``gateway.live_users``), not the ones the token was issued with; a user
disabled or gone since is refused. Changes reach every process within a second.

Revocation reaches every process within a second: each Authenticator mirrors
the deny list (``idp_revocations``) in memory and fetches rows above its
high-water mark at most every ``refresh_interval`` seconds (0.5 s). A check is
a dict lookup; no request queries the database.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749.util import scope_to_list
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gateway.break_glass.active import claimed_ids
from gateway.department_scope import reach
from gateway.errors import NotFound, TooManyRequests, Unauthorized
from gateway.idp import dpop
from gateway.idp.oauth2.clients import Client
from gateway.idp.oauth2.deny_list import token_id
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.rfc8693 import TOKEN_EXCHANGE, acting_subject
from gateway.idp.oauth2.rfc9068 import InvalidAccessToken, verify_access_token
from gateway.idp.scopes import (
    ACCOUNT,
    ADMIN,
    AUDIT_READ,
    CATALOGUE_READ,
    CATALOGUE_WRITE,
    STATS_READ,
    covers,
)
from gateway.live_users import LiveUsers
from gateway.rate_limits import TokenBucketLimiter
from gateway.services import Services
from texts import Text


@dataclass(frozen=True)
class ActingClient:
    """The system a delegated token (RFC 8693 token exchange) was issued to: it calls
    acting for the token's user (``act.sub`` ``client:<client_id>``)."""

    client_id: str
    department: str
    region: str


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
    # a delegated token: the client acting for the user, and the token's audiences (the
    # one system it may call, checked by the proxy's admission)
    actor: ActingClient | None = None
    audiences: frozenset[str] = frozenset()
    # a delegation (委托, gateway.delegations): the signed-in user acting for the
    # subject (``act.sub``), and the delegation's id (gateway.proxy.acting)
    delegate: str | None = None
    delegation: int | None = None
    # the bearer token's exp (epoch seconds): what is derived from it (a reused
    # assertion, gateway.proxy.caller_assertion) must not outlive it
    expires_at: float | None = None
    # the break-glass ids the token claims (``break_glass``): refused once one is over
    break_glass: tuple[str, ...] = ()
    # the department the token's client is registered to now (a catalogue grant naming
    # the client holds only while it is the consumer's); None: not known
    client_department: str | None = None
    # RFC 9449: the thumbprint of the key the token is bound to (``cnf.jkt``); None for
    # a bearer token (gateway.idp.dpop)
    jkt: str | None = None
    # a person's token through a client whose department does not reach theirs
    # (``Authenticator._within_client_reach``): the API does not act as the person
    beyond_client_reach: bool = False


# the scopes by which the gateway's own API acts as the token's person (catalogue:read
# stays: ``/catalogue/allowed`` answers such a token with the proxy's reading of both
# departments, docs/catalogue.md; the reads of the person's department's applications
# and grants refuse it by ``beyond_client_reach``, gateway.web.api.catalogue)
PERSON_APIS = frozenset({ADMIN, AUDIT_READ, ACCOUNT, CATALOGUE_WRITE, STATS_READ})
NARROWED_ENTRIES = 4096  # (registered, held) scope pairs: clients × the scopes asked


def _unauthorized(reason: str) -> Unauthorized:
    return Unauthorized(Text("auth.invalid_credentials", "invalid or missing credentials"),
                        reason=reason)


class Authenticator:
    """Bearer tokens and portal sessions to principals (the one authenticator of an
    app, built by ``gateway.root``)."""

    def __init__(self, services: Services, provider: Provider) -> None:
        self.services = services
        self.provider = provider
        self.settings = services.settings
        self.deny = provider.server.deny
        self.users: LiveUsers = services.live_users
        self._scopes: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
        # the proxy's per-client limit (proxy_rate, proxy_burst) for the DPoP proofs
        # met here, where nothing else limits them (userinfo, the API, SCIM): each
        # fresh proof is a row written (RFC 9449 section 11.1)
        self.proof_limits = TokenBucketLimiter(self.settings.proxy_rate,
                                               self.settings.proxy_burst)

    def live(self, principal: Principal) -> Principal:
        """``principal`` (of a bearer token) with its user's current department, region
        and roles; Unauthorized when the user is disabled or gone. A client-credentials
        principal speaks for its client's current department and holds no scope the
        client is no longer registered for. Sessions (read from the database
        already) are returned as they are."""
        if principal.via != "bearer":
            return principal
        username = principal.username
        if username is None:
            return self._live_client(principal)
        if principal.actor is not None:
            principal = self._live_actor(principal)
        principal = self._live_through(principal)
        user = self.users.get(username)
        if user is None or not user.active:
            raise _unauthorized("user disabled or gone")
        # on every use, a cached token's too (gateway.proxy.credentials): the claim
        # announces an emergency to whoever reads the token, so once it is over the
        # token is not honoured anywhere (its next token, refreshed, has no claim)
        if principal.break_glass and (
                why := self.provider.server.break_glass.over(username, principal.break_glass)):
            raise _unauthorized(why)
        principal = self._within_client_reach(principal, user.department)
        if (user.roles == principal.roles and user.department == principal.department
                and user.region == principal.region and user.name == principal.name):
            return principal
        return dataclasses.replace(principal, department=user.department, region=user.region,
                                   roles=user.roles, name=user.name)

    def _within_client_reach(self, principal: Principal, department: str) -> Principal:
        """``principal`` without the gateway's API scopes (the API acting as the
        person: admin, audit, account, catalogue:write, stats) when the department of the
        client the token was issued to does not reach the person's (itself and those
        below it; every one from province level: ``gateway.department_scope``). A
        client's scope is its registration, which a department's system administrator
        sets, and no consent screen stands between: a city's client asking ``admin``
        of the province's administrator would act as them. The proxy decides such a
        token for both sides instead (``gateway.proxy.through``)."""
        if principal.client_department == department or not principal.scope & (
                PERSON_APIS | {CATALOGUE_READ}):
            return principal
        client_department = principal.client_department
        reached = reach(self.services.engine, client_department) \
            if client_department else frozenset()
        if reached is None or department in reached:
            return principal
        return dataclasses.replace(principal, scope=principal.scope - PERSON_APIS,
                                   beyond_client_reach=True)

    def _live_client(self, principal: Principal) -> Principal:
        client = self.provider.server.clients.get(principal.client_id)  # cached 1 s
        if client is None:
            raise _unauthorized("client disabled or gone")
        registered = scope_to_list(client.scope) or []
        scope = frozenset(s for s in principal.scope if covers(registered, s))
        if (client.department == principal.department == principal.client_department
                and scope == principal.scope):
            return principal
        return dataclasses.replace(principal, department=client.department,
                                   region=client.region, scope=scope,
                                   client_department=client.department)

    def _live_through(self, principal: Principal) -> Principal:
        """A user's token with the client it was issued to as registered now: refused
        once the client is disabled (whichever path disabled it; the deny list covers
        only those that end its tokens), holding no scope the client is no longer
        registered for, and carrying the client's current department, which decides
        the catalogue grants naming it. No registration at all (none is ever deleted)
        leaves no client department: no such grant applies."""
        client = self.provider.server.clients.get(  # cached 1 s
            principal.client_id, include_disabled=True)
        if client is None:
            if principal.client_department is None:
                return principal
            return dataclasses.replace(principal, client_department=None)
        if client.status != "active":
            raise _unauthorized("client disabled or gone")
        # what the client may no longer have, its user's token no longer opens (as its
        # refresh would no longer carry it)
        scope = self._narrowed(client, principal.scope)
        if client.department == principal.client_department and scope == principal.scope:
            return principal
        return dataclasses.replace(principal, client_department=client.department,
                                   scope=scope)

    def _narrowed(self, client: Client, scope: frozenset[str]) -> frozenset[str]:
        """``scope`` without what ``client`` may no longer have, remembered by the pair
        (a few microseconds each time otherwise, on every proxied request)."""
        key = (client.scope, scope)
        found = self._scopes.get(key)
        if found is None:
            if len(self._scopes) >= NARROWED_ENTRIES:
                self._scopes.clear()
            found = self._scopes[key] = frozenset(s for s in scope if client.may_have(s))
        return found

    def _live_actor(self, principal: Principal) -> Principal:
        """The acting client of a delegated token as registered now: still active, still
        allowed to exchange (else refused: the delegation ends with the setting), in its
        current department."""
        actor = principal.actor
        assert actor is not None
        client = self.provider.server.clients.get(actor.client_id)  # cached 1 s
        if client is None:
            raise _unauthorized("acting client disabled or gone")
        if not client.check_grant_type(TOKEN_EXCHANGE):
            raise _unauthorized("acting client no longer allowed to exchange tokens")
        if (client.department, client.region) == (actor.department, actor.region):
            return principal
        return dataclasses.replace(principal, actor=ActingClient(
            client.client_id, client.department, client.region))

    async def authenticate(self, request: Request, *, audience: str | None = None,
                           before_proof_use: Callable[[Principal], None] | None = None
                           ) -> Principal:
        """The principal of ``request``'s credential, or Unauthorized. A DPoP-bound
        token's proof is checked, then ``before_proof_use`` (the proxy's rate limit,
        which may refuse) runs, by default :meth:`spend_proof`, then the proof's ``jti``
        is used up (a write)."""
        header = request.headers.get("authorization")
        if header:
            scheme, _, token = header.partition(" ")
            scheme, token = scheme.lower(), token.strip()
            if scheme == "basic":
                # an old system that knows only HTTP Basic sends its client id and
                # secret here; the secret is never checked on this path (no oracle
                # for guessing it), the caller is told where a token comes from
                raise Unauthorized(Text(
                    "auth.basic_not_accepted",
                    "HTTP Basic is not accepted here: exchange the client id and secret "
                    "for an access token at {token_endpoint} (grant_type="
                    "client_credentials) and send it as Authorization: Bearer",
                    token_endpoint=f"{self.provider.server.issuer}/oauth2/token"),
                    reason="not a bearer token: the Authorization scheme is Basic")
            if scheme not in ("bearer", "dpop") or not token:
                # not "bearer credential": the audit reads "bearer" and a word as a secret
                raise _unauthorized("not a bearer token")
            principal = self.from_token(token, audience=audience)
            dpop.presented(scheme, principal.jkt)
            if principal.jkt is not None:  # RFC 9449 section 7: the proof of its key
                server = self.provider.server
                proof = dpop.verified_proof(server.dpop, request.headers, request.scope,
                                            server.issuer, token, principal.jkt)
                (before_proof_use or self.spend_proof)(principal)
                await run_in_threadpool(dpop.use_proof, server.dpop, proof)
            if principal.delegate is not None:  # 委托: its client's sign-in, userinfo only
                raise _unauthorized("a token acted for by a delegate serves only userinfo")
            return principal
        cookie = self.provider.session_token(request.cookies)
        if cookie:
            return self.from_session(cookie)
        raise _unauthorized("no credential")

    def spend_proof(self, principal: Principal) -> None:
        """One from the bucket of the client whose DPoP proof is about to be written
        (``proof_limits``), or TooManyRequests: a flood of fresh proofs stops before
        its rows do."""
        wait = self.proof_limits.take(principal.client_id or f"sub:{principal.subject}")
        if wait > 0:
            raise TooManyRequests(TokenBucketLimiter.retry_after(wait), Text(
                "auth.dpop_rate_limited", "too many requests with DPoP proofs from this "
                "client; retry after {seconds} s",
                seconds=TokenBucketLimiter.retry_after(wait)), client_id=principal.client_id)

    def from_token(self, token: str, *, audience: str | None = None) -> Principal:
        """Principal of a bearer access token, or Unauthorized. A delegated token (it
        has ``act``) is accepted only where an audience is asked for (the proxy and
        forward-auth), whose admission matches its ``aud`` with the system called."""
        try:
            claims = verify_access_token(
                self.services.keys, token, issuer=self.provider.server.issuer,
                now=self.services.clock(), skew=self.settings.clock_skew_seconds)
        except InvalidAccessToken as exc:
            raise _unauthorized(exc.reason) from None
        try:
            jkt = dpop.jkt_of(claims)
        except dpop.InvalidProof as exc:
            raise _unauthorized(exc.reason) from None
        aud = claims.get("aud")
        audiences = frozenset(str(a) for a in (aud if isinstance(aud, list) else [aud]))
        actor = None
        delegate, delegation = None, None
        if "delegation" in claims:
            delegate, delegation = self._delegate(claims, audience)
        elif "act" in claims:
            actor = self._actor(claims, audience)
        elif audience is not None and audience not in audiences:
            raise _unauthorized("audience mismatch")
        jti = token_id(claims)  # an exchanged token's also names its subject token
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
            actor=actor,
            audiences=audiences if actor is not None else frozenset(),
            expires_at=float(exp) if isinstance(exp := claims.get("exp"), int | float)
            else None,
            delegate=delegate,
            delegation=delegation,
            jkt=jkt,
            break_glass=claimed_ids(claims),
        ))

    def _delegate(self, claims: dict[str, Any], audience: str | None) -> tuple[str, int]:
        """The person acting and the delegation of a token issued to a relying party
        while B acted for A (委托, gateway.idp.oauth2.acting): good for userinfo only
        (``authenticate`` refuses it for the API), never for the proxy or forward-auth
        (the delegation is checked there, at each request, against B's session)."""
        act, delegation = claims.get("act"), claims.get("delegation")
        if audience is not None:
            raise _unauthorized("a token acted for by a delegate serves only its client")
        if not isinstance(act, dict) or not isinstance(act.get("sub"), str) \
                or str(act["sub"]).startswith("client:") or "act" in act \
                or not isinstance(delegation, int) or isinstance(delegation, bool):
            raise _unauthorized("malformed act or delegation claim")
        return str(act["sub"]), delegation

    def _actor(self, claims: dict[str, Any], audience: str | None) -> ActingClient:
        """The acting client of a delegated token's claims."""
        if audience is None:
            raise _unauthorized("a delegated token serves only the proxy")
        act = claims.get("act")
        client_id = str(claims["client_id"])
        if not isinstance(act, dict) or act.get("sub") != acting_subject(client_id) \
                or "act" in act:
            raise _unauthorized("act claim is not the token's own client")
        if claims.get("gty") == "client_credentials":
            raise _unauthorized("a delegated token is a user's")
        # region and department: _live_actor reads them as registered now
        return ActingClient(client_id, "", "")

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
