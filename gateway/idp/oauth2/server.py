"""authlib's ``AuthorizationServer`` (RFC 6749, https://www.rfc-editor.org/rfc/rfc6749)
adapted to Starlette.

Starlette reads request bodies asynchronously, authlib is synchronous: a route
first awaits the form, wraps query and form in :class:`StarletteOAuth2Request`,
then calls the server. ``handle_response`` returns a plain :class:`Result`
that the route turns into a Starlette response, after appending the audit
records the protocol code collected on ``request.events``.
"""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InsecureTransportError,
    InvalidClientError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
)

from audit import AuditRecord
from gateway.break_glass.active import ActiveBreakGlass, claimed_ids
from gateway.errors import NotFound
from gateway.idp import dpop
from gateway.idp.oauth2.acting import ActingGrants
from gateway.idp.oauth2.clients import Client, ClientRegistry
from gateway.idp.oauth2.deny_list import DenyList
from gateway.idp.oauth2.descriptions import quoted
from gateway.idp.oauth2.oidc import OpenIDCode, OpenIDRefresh
from gateway.idp.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    authenticate_client_secret_basic,
)
from gateway.idp.oauth2.rfc7009 import RevocationEndpoint
from gateway.idp.oauth2.rfc7523 import PrivateKeyJWT
from gateway.idp.oauth2.rfc7636 import S256CodeChallenge
from gateway.idp.oauth2.rfc7662 import IntrospectionEndpoint
from gateway.idp.oauth2.rfc8693 import TokenExchangeGrant
from gateway.idp.oauth2.rfc9068 import (
    AccessTokenGenerator,
    InvalidAccessToken,
    Subject,
    verify_access_token,
)
from gateway.idp.oauth2.store import Store, new_secret
from gateway.services import Services

#: ``invalid_client`` when a request carries no client authentication the client may use
NO_CLIENT_AUTHENTICATION = (
    "no client authentication: a confidential client sends its credentials by the "
    "method it is registered with (client_secret_basic: Authorization: Basic with its "
    "id and secret; client_secret_post: client_id and client_secret in the body; "
    "private_key_jwt: client_assertion); only a public client sends client_id alone")


class StarletteOAuth2Payload(OAuth2Payload):
    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        self._data: dict[str, str] = {}
        for k, v in items:
            self._datalist[k].append(v)
            self._data.setdefault(k, v)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


def origin_of(uri: str) -> str:
    """``scheme://host[:port]`` of ``uri``."""
    scheme, _sep, rest = uri.partition("://")
    return f"{scheme}://{rest.partition('/')[0].partition('?')[0]}"


@functools.lru_cache(maxsize=64)
def _check_transport(origin: str) -> None:
    """authlib's ``InsecureTransportError.check`` for one ``scheme://host[:port]`` (the
    raise is not cached: a refused origin is checked, and refused, every time)."""
    InsecureTransportError.check(origin + "/")


@functools.cache
def _blank_request() -> dict[str, Any]:
    """The attributes authlib's ``OAuth2Request.__init__`` sets, from one real call."""
    return dict(OAuth2Request("POST", "https://govgate.invalid/token").__dict__)


class StarletteOAuth2Request(OAuth2Request):
    """An authlib request built from an already-read Starlette request.

    authlib's ``__init__`` checks the transport of the whole URI on every request (a URL
    split and an IP-address parse, ~25 µs: a twentieth of a token request on a loopback
    issuer). Every URI here is the configured issuer plus a path, and the answer depends
    on scheme and host only, so the check runs once per origin and the attributes
    authlib would set are copied from one real construction."""

    def __init__(self, method: str, uri: str, headers: Any,
                 query: Iterable[tuple[str, str]], form: Iterable[tuple[str, str]],
                 source_ip: str | None = None) -> None:
        try:
            _check_transport(origin_of(uri))
        except InsecureTransportError:
            InsecureTransportError.check(uri)  # authlib's own word (AUTHLIB_INSECURE_TRANSPORT)
        self.__dict__.update({k: v if v is None or type(v) is str else copy.copy(v)
                              for k, v in _blank_request().items()})
        self.method = method
        self.uri = uri
        self.headers = headers
        query, form = list(query), list(form)
        self.repeated = repeated_parameter(query, form)
        self._args = dict(query)
        self._form = {k: v for k, v in form}
        self.payload = StarletteOAuth2Payload([*self._args.items(), *self._form.items()])
        self.source_ip = source_ip
        self.events: list[AuditRecord] = []
        self.family_id: str | None = None
        self.refresh_sid: str | None = None
        self.acting_key: str | None = None  # the code's binding to a delegation (委托)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def repeated_parameter(*parts: Iterable[tuple[str, str]]) -> str | None:
    """The first parameter named more than once across ``parts`` (the query and the
    form), or None. RFC 6749 section 3.2: parameters MUST NOT be included more than
    once; a repeated one would be read as its first value by one layer and its last by
    another."""
    seen: set[str] = set()
    for items in parts:
        for name, _value in items:
            if name in seen:
                return name
            seen.add(name)
    return None


#: the form parameters that carry a client's credential (client_secret_post,
#: private_key_jwt / client_secret_jwt); the Authorization header carries Basic
_CREDENTIAL_PARAMETERS = ("client_secret", "client_assertion")


def several_client_methods(authorization: str | None, form: Mapping[str, str]) -> bool:
    """Whether a request authenticates its client in more than one way: RFC 6749
    section 2.3, the client MUST NOT use more than one authentication method in each
    request (which one would win is the server's accident, not the client's choice)."""
    used = sum(1 for name in _CREDENTIAL_PARAMETERS if name in form)
    if authorization and authorization[:6].lower() == "basic ":
        used += 1
    return used > 1


def request_refusal(repeated: str | None, authorization: str | None,
                    form: Mapping[str, str]) -> InvalidRequestError | None:
    """The ``invalid_request`` a client-authenticated request earns before any grant
    or endpoint reads it (a parameter repeated, several client authentication methods),
    or None."""
    if repeated is not None:
        return InvalidRequestError(f"the parameter {quoted(repeated)} is given more than once")
    if several_client_methods(authorization, form):
        return InvalidRequestError("more than one client authentication method in one "
                                   "request")
    return None


@dataclass
class Result:
    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


def refusal_record(event_type: str, result: Result, client: Client | None,
                   client_id: str | None, grant_type: str | None,
                   source_ip: str | None) -> AuditRecord:
    """The record of an OAuth error answer (``result``): the authenticated client if
    there was one by then, else the ``client_id`` the request named."""
    return AuditRecord(
        event_type=event_type, outcome="failure", source_ip=source_ip,
        actor_client=client.client_id if client else client_id, status=result.status,
        reason=f"{result.body.get('error')}: {result.body.get('error_description', '')}",
        extra={"grant_type": grant_type})


def transport_ok(origin: str) -> bool:
    """Whether a URI of ``origin`` (``scheme://host[:port]``) is secure transport to
    authlib (HTTPS or a loopback host; ``AUTHLIB_INSECURE_TRANSPORT`` is left to the
    authlib path, which checks every request)."""
    try:
        _check_transport(origin)
    except InsecureTransportError:
        return False
    return True


def acting_extra(user: Subject | None) -> dict[str, Any]:
    """What an audit record of a token acted for by a delegate (委托) adds: ``act``
    and ``delegation``, as the proxy's records have them."""
    if user is None or not user.act:
        return {}
    return {"act": {"sub": user.act}, "delegation": user.delegation}


class IdentityServer(AuthorizationServer):
    """The gateway's authorization server: grants, client auth, introspection, revocation."""

    def __init__(self, services: Services, store: Store,
                 break_glass: ActiveBreakGlass | None = None) -> None:
        super().__init__(scopes_supported=None)
        self.services = services
        self.settings = services.settings
        self.keys = services.keys
        self.clock = services.clock
        self.issuer = self.settings.issuer.rstrip("/")
        self.store = store
        self.clients = ClientRegistry(services.engine, services.verify_client_secret)
        self.acting = ActingGrants(services)  # 委托: tokens of A acted for by B
        # RFC 9449: proofs (their replay table) and public clients' bound refresh tokens
        self.dpop = dpop.DPoP(services.engine, self.clock,
                              skew=self.settings.clock_skew_seconds,
                              mac=lambda value: store.hash("refresh", value),
                              nonces=dpop.Nonces(
                                  lambda data: self.keys.mac(dpop.NONCE_PURPOSE, data),
                                  lambda: self.clock().timestamp()),
                              nonce_mode=self.settings.dpop_nonce)
        # the process's mirror of the revocations (refreshed from the database every
        # 0.5 s), told at once of those this process makes
        self.deny = DenyList(store, grace=self.settings.clock_skew_seconds)
        store.on_deny.append(self.deny.invalidate)
        # the gateway's one view of the active break-glass (at most 1 s old, told at
        # once of this process's changes): a token issued without one costs no query,
        # and one whose claim is over is refused (``verify_access_token``)
        self.break_glass = break_glass or ActiveBreakGlass(services.engine, self.clock)
        self.token_generator = AccessTokenGenerator(
            self.keys, issuer=self.issuer, lifetime=self.settings.access_token_lifetime,
            clock=self.clock, new_refresh_token=new_secret,
            marks=self.break_glass.token_claim,
        )
        self.register_token_generator("default", self.token_generator)
        self.register_client_auth_method("client_secret_basic",
                                         authenticate_client_secret_basic)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(
            self.store, self.issuer, f"{self.issuer}/oauth2/token",
            lenient_audience=self.settings.client_assertion_audience != "issuer",
            leeway=self.settings.clock_skew_seconds,
        ))
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True),
                                                     OpenIDCode(self)])
        self.register_grant(RefreshTokenGrant, [OpenIDRefresh(self)])
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(TokenExchangeGrant)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(RevocationEndpoint)

    # -- authlib hooks -----------------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token"
                            ) -> Any:
        """authlib's, and then at the token endpoint a client registered ``dpop_bound``
        without a proof is refused, before its grant uses a code or refresh token up."""
        try:
            client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as exc:
            # authlib's words list every method the endpoint knows ("The client cannot
            # authenticate with methods: [...]", 'none' among them) and read as if the
            # client's own method were refused; pyoidc's refresh sends no credential at
            # its defaults. Say what is missing, not which client is registered how.
            if str(exc.description or "").startswith("The client cannot authenticate"):
                exc.description = NO_CLIENT_AUTHENTICATION
            raise
        if endpoint == "token":
            dpop.require_bound(client)
        return client

    def save_token(self, token: dict[str, Any], request: StarletteOAuth2Request) -> None:
        claims = token.pop("_claims", {})
        client: Client = request.client
        user: Subject | None = request.user
        grant_type = request.payload.grant_type
        if "refresh_token" in token and user is not None:
            # RFC 6749 section 6: a rotated refresh token has the scope of the one it
            # replaces, however narrow the access token the client asked for this time
            rotated = getattr(request, "refresh_token", None) \
                if grant_type == "refresh_token" else None
            self.store.save_refresh(
                token["refresh_token"], family_id=request.family_id or new_secret()[:22],
                client_id=client.client_id, username=user.username, sid=user.sid,
                scope=rotated.scope if rotated is not None else token.get("scope", ""),
                auth_time=user.auth_time, amr=user.amr,
                lifetime=self.settings.refresh_token_lifetime, access_jti=claims.get("jti"),
                access_expires_at=datetime.fromtimestamp(claims["exp"], UTC)
                if "exp" in claims else None,
            )
            if client.is_public and (jkt := dpop.bound_key()):  # RFC 9449 section 5
                self.dpop.bind_refresh(token["refresh_token"], jkt,
                                       self.settings.refresh_token_lifetime)
        elif user is not None and request.family_id and "jti" in claims:
            # no refresh token: the code's family still records the access token, so
            # a replayed code revokes it (RFC 6749 section 4.1.2)
            self.store.record_access(
                family_id=request.family_id, client_id=client.client_id,
                username=user.username, sid=user.sid, scope=token.get("scope", ""),
                auth_time=user.auth_time, access_jti=claims["jti"],
                access_expires_at=datetime.fromtimestamp(claims["exp"], UTC))
        if user is not None and user.act and user.delegation is not None \
                and request.family_id:
            self.acting.remember("family:" + request.family_id, user.delegation, user.act)
        self.event(
            request, "token_refreshed" if grant_type == "refresh_token" else "token_issued",
            "success", actor_user=user.username if user else None,
            actor_client=client.client_id,
            department=user.department if user else client.department,
            extra={"grant_type": grant_type, "jti": claims.get("jti"),
                   "scope": token.get("scope", ""), "sid": user.sid if user else None,
                   "jkt": (claims.get("cnf") or {}).get("jkt"), **acting_extra(user)},
        )

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("pass a StarletteOAuth2Request (read the form first)")

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> Result:
        return Result(status, body, list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals: audit records are collected on the request instead."""

    # -- helpers the grants and routes use -------------------------------------------

    def session_ended(self, sid: str, *, touch: bool = True) -> str:
        """Why the portal session ``sid`` no longer carries the refresh tokens bound to
        it (ended, past its absolute or its idle timeout, not signed in), or "" while it
        is live (docs/sso.md: a refresh token ends with its session). ``touch``: a live
        one counts the refresh as the person's activity, as a page of the portal does
        (Keycloak's SSO Session Idle counts refreshes alike), never past its absolute
        timeout."""
        row = self.store.get_session(sid)
        now = self.clock()
        if row is None or row.revoked_at is not None:
            return "the sign-in session has ended"
        if now >= row.expires_at:
            return "the sign-in session is past its absolute timeout"
        idle = (now - row.last_seen_at).total_seconds()
        if idle > self.settings.session_idle_timeout:
            return "the sign-in session is past its idle timeout"
        if row.stage != "active":
            return "the sign-in session is not signed in"
        if touch and idle > 60:  # as Provider.valid_session: one write a minute at most
            self.store.touch_session(sid)
        return ""

    def subject(self, username: str, *, sid: str | None = None, auth_time: int = 0,
                amr: str = "pwd") -> Subject | None:
        """The user as a token subject; None if unknown or not active."""
        try:
            user = self.services.org.get_user(username)
        except NotFound:
            return None
        if user.status != "active":
            return None
        return Subject(username=user.username, name=user.name, department=user.department,
                       region=user.region, roles=user.roles, sid=sid, auth_time=auth_time,
                       amr=amr, email=user.email, email_verified=user.email_verified,
                       phone_number=user.phone_number,
                       phone_number_verified=user.phone_number_verified)

    def verify_access_token(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """A token of ours, valid now (introspection, token exchange); one whose
        ``break_glass`` claim is over is not (InvalidAccessToken)."""
        claims = verify_access_token(self.keys, token, issuer=self.issuer, now=self.clock(),
                                     skew=self.settings.clock_skew_seconds,
                                     audience=audience)
        if (held := claimed_ids(claims)) and (
                why := self.break_glass.over(str(claims.get("sub")), held)):
            raise InvalidAccessToken(why)
        return claims

    def event(self, request: Any, event_type: str, outcome: str, **fields: Any) -> None:
        """Collect an audit record on ``request`` (appended by the route)."""
        fields.setdefault("source_ip", getattr(request, "source_ip", None))
        extra = {k: v for k, v in (fields.pop("extra", None) or {}).items() if v is not None}
        events = getattr(request, "events", None)
        if events is not None:
            events.append(AuditRecord(event_type=event_type, outcome=outcome, extra=extra,
                                      **fields))
