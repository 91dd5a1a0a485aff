"""Admission: the one step ``/s/{system}/...`` and ``/auth/verify`` both run before a
request may reach a department system.

    route          ``gateway.proxy.path.parse``: one canonical path or 400 (BadPath);
                   the system looked up (in memory) but not yet refused
    authenticate   bearer access token (verified before: a dict lookup) or the
                   portal session → 401 (Unauthorized); a DPoP-bound token's proof
                   checked, the rate limit taken (429), then its jti written as used;
                   a token without the scope
                   ``proxy`` or ``proxy:{system}`` → 403 (``gateway.idp.scopes``)
    cross-site     a state-changing request riding on the session cookie from
                   another site → 403 (``gateway.same_origin``)
    rate limit     token bucket per client (client id, else subject) → 429
    unknown        a system code that does not exist → 404 (UnknownSystem), only
                   now: strangers and callers scoped to other systems get the
                   same answer for every code, and probing codes spends the
                   caller's own bucket
    decide         policy (a user's token through another department's client for
                   both sides: ``gateway.proxy.through``), then each decider (the
                   catalogue's: ``gateway.proxy.catalogue``)
                   → 403; a spelling of a governed route that only a lax upstream
                   reads as the route → 400

``Admitter.admit`` returns an :class:`Admission` (who, which system and path, the
decision with its reason, whether the response must be shaped) or raises the
refusal; either way the request's :class:`AuditDraft` holds what the one audit
record will say, and the caller appends that record before it answers. The
``/s/`` proxy then forwards and shapes; forward-auth, which cannot change a
response body, refuses what would need shaping.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.types import Receive, Scope

from audit.record import AuditRecord
from catalogue.media import media_type
from catalogue.query import parameter_names, read_name
from gateway.errors import Forbidden, NotFound, TooManyRequests
from gateway.idp import attribute_release
from gateway.idp.scopes import PROXY, InsufficientScope, proxy_scope, require
from gateway.proxy.acting import DELEGATED_AS, ActingFor, roles_only
from gateway.proxy.credentials import AuthenticatorLike
from gateway.proxy.delegation import check_audience, delegated_policy
from gateway.proxy.path import BadPath, Target, parse
from gateway.proxy.static_credentials import StaticCredentials, TooManyFailures, presented
from gateway.proxy.target_redaction import redact_target
from gateway.proxy.through import SIDES as THROUGH
from gateway.proxy.through import decide_for, through_another_department
from gateway.proxy.upstream_tls import UpstreamTLS, from_column
from gateway.rate_limits import TokenBucketLimiter
from gateway.same_origin import cross_site_reason, own_origins
from gateway.tables import systems
from policies import Decision, Query, subjects_for

# what an audit record keeps of a request target as the client sent it
MAX_AUDIT_TARGET = 1000


class UnknownSystem(NotFound):
    code = "unknown_system"
    title = "No such system"


# an upstream that answers TRACE echoes the request it received, the identity
# assertion and forwarded fields the gateway added included; CONNECT asks for a tunnel
# past every check. Refused whatever a policy line allows (``*`` allows every method),
# as nginx refuses TRACE
NEVER_FORWARDED = frozenset({"TRACE", "TRACK", "CONNECT"})
# a method named in the query string: Express's ``method-override('_method')`` (and
# others) take the method from there, so the upstream would run another method than
# the one decided. Compared as the laxest upstream reads names (``catalogue.query``)
METHOD_PARAMETERS = frozenset({"_method", "x-http-method-override", "x-http-method",
                               "x-method-override"})


# the same in a POST's form body: Rack::MethodOverride (on by default in Rails) and
# Laravel read ``_method`` from an urlencoded or a multipart form
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_PART_METHOD = re.compile(
    rb"(?im)^content-disposition:[^\r\n]*\bname\*?=[^;\r\n]*?\b_method\b")


def form_post(method: str, content_type: str | None) -> bool:
    """Whether the request is a form POST whose body an upstream may take a method from."""
    return method == "POST" and media_type(content_type)[0] in _FORM_TYPES


def method_in_form(body: bytes, content_type: str) -> str | None:
    """The field of a form body (see :func:`form_post`) naming a method, or None."""
    if media_type(content_type)[0] == "multipart/form-data":
        return "_method" if _PART_METHOD.search(body) else None
    return method_parameter(body.decode("latin-1"))


def method_parameter(query: str) -> str | None:
    """The first parameter of ``query`` (raw) naming a method, as sent; None if none."""
    if "%" not in query and "method" not in query.lower():
        return None  # nearly every query: no name could read as one
    return next((raw[:80] for raw in parameter_names(query)
                 if read_name(raw) in METHOD_PARAMETERS), None)


class AccessDenied(Forbidden):
    code = "access_denied"
    title = "Access denied"


class RateLimited(TooManyRequests):
    """The proxy's and forward-auth's per-client limit (gateway.errors.TooManyRequests)."""

    def __init__(self, retry_after: str) -> None:
        super().__init__(retry_after)


@dataclass(slots=True)
class AuditDraft:
    """The one audit record of a proxied or forward-auth request, filled in as the
    request goes: admission, the catalogue's decider and shaper, the forwarder."""

    request_id: str
    source_ip: str | None
    system: str | None = None
    actor_user: str | None = None
    actor_client: str | None = None
    department: str | None = None
    resource: str | None = None
    items: tuple[str, ...] = ()
    purpose: str | None = None
    reason: str | None = None
    req_hash: str | None = None
    resp_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # not recorded: the decision once made, for the metrics' label
    decision: Decision | None = None

    def record(self, event_type: str, outcome: str, status: int, started: float
               ) -> AuditRecord:
        return AuditRecord(
            event_type=event_type, outcome=outcome, status=status,
            latency_ms=int((time.perf_counter() - started) * 1000),
            request_id=self.request_id, source_ip=self.source_ip, system=self.system,
            actor_user=self.actor_user, actor_client=self.actor_client,
            department=self.department, resource=self.resource, items=self.items,
            purpose=self.purpose, reason=self.reason, req_hash=self.req_hash,
            resp_hash=self.resp_hash, extra=self.extra,
        )


def audit_target(raw: bytes | str) -> str:
    """A request target as the client sent it, bounded, for the audit record: bytes as
    UTF-8 (what a raw non-ASCII path means, as ``path.parse`` reads it), a byte that
    is not UTF-8 as ``\\xNN``, so the record shows what arrived, not mojibake; the
    values of credential parameters masked (``gateway.proxy.target_redaction``)."""
    text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
    text = redact_target(text)  # no credential in the audit record
    return text if len(text) <= MAX_AUDIT_TARGET else text[:MAX_AUDIT_TARGET] + "…"


@dataclass(frozen=True)
class System:
    code: str
    department: str
    upstream: str  # scheme://host[:port][/base], no trailing slash
    # allow-list mode: the only client headers forwarded (lower case), None = all but
    # the dropped families (gateway.proxy.headers)
    forward_headers: frozenset[bytes] | None = None
    # its server tells path letters apart (catalogue routes then match letter for letter)
    case_sensitive: bool = False
    identity_headers: str = "assertion"  # gateway.proxy.identity_headers: assertion|plain|both
    remote_user: bool = False
    tls: UpstreamTLS | None = None  # its CA, client certificate, floor (upstream_tls)
    # identity only over https with the certificate verified (endpoint.InsecureUpstream)
    identity_tls_only: bool = False
    # per_request: an assertion signed for each request; per_caller: one reused per
    # caller up to 30 s (gateway.proxy.caller_assertion)
    assertion: str = "per_request"
    # what forward-auth's 200 adds of the user (gateway.proxy.forward_auth): name, region
    forward_auth_attributes: frozenset[str] = frozenset()


class SystemDirectory:
    """The systems table, re-read at most every ``ttl`` seconds."""

    def __init__(self, engine: sa.Engine, ttl: float = 1.0,
                 open_: Callable[[bytes, str], bytes] | None = None) -> None:
        self.engine = engine
        self.ttl = ttl
        self.open = open_  # the key ring's, for the systems' sealed TLS client keys
        self._at = -1e9
        self._by_code: dict[str, System] = {}

    def invalidate(self) -> None:
        self._at = -1e9

    def get(self, code: str) -> System | None:
        now = time.monotonic()
        if now - self._at > self.ttl:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(systems.c.code, systems.c.department_code, systems.c.upstream,
                              systems.c.forward_headers, systems.c.case_sensitive_paths,
                              systems.c.identity_headers, systems.c.remote_user,
                              systems.c.tls, systems.c.identity_tls_only,
                              systems.c.assertion, systems.c.forward_auth_attributes)
                ).all()
            self._by_code = {r.code: System(
                r.code, r.department_code, r.upstream.rstrip("/"),
                None if r.forward_headers is None else frozenset(
                    n.lower().encode("latin-1") for n in r.forward_headers),
                bool(r.case_sensitive_paths), r.identity_headers or "assertion",
                bool(r.remote_user),
                from_column(r.tls, r.code, self.open) if r.tls and self.open else None,
                bool(r.identity_tls_only), r.assertion or "per_request",
                frozenset(attribute_release.normalised(r.forward_auth_attributes)))
                for r in rows}
            self._at = now
        return self._by_code.get(code)


@dataclass
class ProxyRequest:
    """What the deciders and shapers see about one request."""

    request_id: str
    method: str
    target: Target
    system: System
    principal: Any
    client_ip: str | None
    headers: Mapping[str, str]  # as the client sent them (lower-case names)
    extra: dict[str, Any] = field(default_factory=dict)  # for deciders/shapers to share
    # the request's one audit record, for deciders and shapers to add what they know
    # (resource, items released, purpose, what was withheld and why)
    audit: AuditDraft = field(default_factory=lambda: AuditDraft("", None))
    # set by a decider when the response must be cut, masked or encrypted
    shape: bool = False


@dataclass(frozen=True)
class Admission:
    """A request admitted: who, where, the decision and whether the response must be
    shaped (``request.shape``); ``request.audit`` is its audit draft."""

    request: ProxyRequest
    decision: Decision

    @property
    def principal(self) -> Any:
        return self.request.principal

    @property
    def system(self) -> System:
        return self.request.system

    @property
    def shape(self) -> bool:
        return self.request.shape


# a step after the policy decision: may return a new Decision (e.g. a catalogue grant)
Decider = Callable[[ProxyRequest, Decision], Awaitable[Decision]]


class Admitter:
    """Route, authenticate, cross-site, rate limit and decide (module docstring)."""

    def __init__(
        self,
        *,
        systems: SystemDirectory,
        authenticator: AuthenticatorLike,
        audience: str,
        issuer: str,
        limiter: TokenBucketLimiter,
        policies: Any,
        deciders: Sequence[Decider] = (),
        observe_decision: Callable[[float], None] = lambda _seconds: None,
        acting: ActingFor | None = None,
        static: StaticCredentials | None = None,
    ) -> None:
        self.systems = systems
        self.authenticator = authenticator
        self.audience = audience
        self.issuer = issuer
        self.limiter = limiter
        self.policies = policies
        self.deciders = list(deciders)
        self.observe_decision = observe_decision
        self.acting = acting  # a portal user acting for a colleague (gateway.proxy.acting)
        # an old system's fixed credential (gateway.proxy.static_credentials), /s/ only
        self.static = static
        self._cached = getattr(authenticator, "cached", None)
        # the policies' cache by the caller's fields (policies.Policies.decide_caller)
        self._decide_caller = getattr(policies, "decide_caller", None)

    async def principal(self, scope: Scope, receive: Receive,
                        headers: Mapping[str, str],
                        before_proof_use: Callable[[Any], None] | None = None) -> Any:
        """Who sends the request in ``scope`` (``headers``: its first values), or
        Unauthorized. A bearer token verified before costs a dict lookup; anything
        else goes through the full authenticator (``before_proof_use``: run between a
        DPoP proof's checks and the write that uses it up)."""
        found = (self._cached(headers.get("authorization"), self.audience)
                 if self._cached else None)
        if found is None:
            kw = {} if before_proof_use is None else {"before_proof_use": before_proof_use}
            found = await self.authenticator.authenticate(Request(scope, receive),
                                                          audience=self.audience, **kw)
        return found

    def spend(self, principal: Any) -> None:
        """The caller's rate limit: one from its bucket, or RateLimited."""
        # the one calling spends: a colleague acting for the user (委托) their own budget
        caller = getattr(principal, "delegate", None) or principal.subject
        wait = self.limiter.take(principal.client_id or f"sub:{caller}")
        if wait > 0:
            raise RateLimited(TokenBucketLimiter.retry_after(wait))

    async def decide(self, req: ProxyRequest) -> Decision:
        """Policy, then every decider in turn (the catalogue's hook). For a delegated
        token both the user and the acting client must be allowed
        (``gateway.proxy.delegation``)."""
        decision = self.policy(req)
        for decider in self.deciders:
            decision = await decider(req, decision)
        return decision

    def policy(self, req: ProxyRequest) -> Decision:
        """The policy's decision alone (``decide``'s first step): a delegated token's
        two sides, a user's token through another department's client for both
        (``gateway.proxy.through``), else the caller's."""
        p = req.principal
        if getattr(p, "actor", None) is not None:
            return delegated_policy(self.policies, req)
        if req.audit.extra.get(DELEGATED_AS) == "roles":
            return roles_only(self.policies, req)
        if through_another_department(p):
            # a request by another department's system for the user: both decide
            decision, two = decide_for(self.policies, p, req.target.object, req.method,
                                       req.system.department, req.system.case_sensitive)
            req.extra[THROUGH] = two
            req.audit.extra["client_department"] = p.client_department
            return decision
        if self._decide_caller is not None:
            return self._decide_caller(p.username, p.client_id, p.roles, p.department,
                                       req.target.object, req.method, req.system.department,
                                       req.system.case_sensitive)
        query = Query(
            subjects_for(username=p.username, client_id=p.client_id, roles=p.roles,
                         department=p.department),
            p.department, req.target.object, req.method, req.system.department,
            req.system.case_sensitive,
        )
        return self.policies.decide(query)

    async def admit(
        self, scope: Scope, receive: Receive, *, method: str, raw_path: bytes,
        query: bytes, headers: Mapping[str, str], host: str | None, audit: AuditDraft,
        fixed_credentials: bool = False,
    ) -> Admission:
        """Admit the request for ``method`` ``raw_path``?``query`` or raise its refusal
        (a GovgateError); ``host`` is the host the client addressed.
        ``fixed_credentials``: an opted-in client's Basic or API key is taken (``/s/``;
        forward-auth's front proxy would hide whether it crossed the network in the
        clear)."""
        target = parse(raw_path, query)
        if target.upstream_path != target.path or len(raw_path) != len(target.object):
            # decoded and re-encoded on the way: record what the upstream is sent
            audit.extra["upstream_path"] = target.upstream_path
        code = target.system
        # looked up now, refused only once the caller is known: a stranger gets the
        # same 401 for a code that does not exist as for one that does (no
        # enumeration of system codes). The same read of the directory (refreshed at
        # most every ttl) either way: no database round trip for unknown codes only.
        system = self.systems.get(code)
        if system is not None:  # the record never names a system that does not exist
            audit.system = system.code
        principal = None
        if fixed_credentials and self.static is not None and \
                (kind := presented(headers)) is not None:
            try:
                principal = self.static.principal(kind, headers, scope, audit)
            except TooManyFailures as exc:
                audit.reason = f"static credential ({kind}): too many failed attempts"
                raise RateLimited(TokenBucketLimiter.retry_after(exc.retry_after)) from None
        # a bearer token verified before: the lookup inline, without a coroutine
        if principal is None and self._cached:
            principal = self._cached(headers.get("authorization"), self.audience)
        spent = False
        if principal is None:
            def spend_first(caller: Any) -> None:
                # a DPoP proof's jti is a write: the limit comes before it, so a flood
                # of proofs is refused before it writes (RFC 9449 section 11.1)
                nonlocal spent
                spent = True
                audit.actor_user = caller.username  # a 429 here says whose it was
                audit.actor_client = caller.client_id
                audit.department = caller.department
                self.spend(caller)

            principal = await self.principal(scope, receive, headers, spend_first)
        audit.actor_user = principal.username
        audit.actor_client = principal.client_id
        audit.department = principal.department
        # up to the rate limit the checks read the code as the caller wrote it (for a
        # known system it is its code): one scoped to other systems learns nothing
        if self.acting is not None:
            principal = self.acting(principal, headers, code, audit)
        if getattr(principal, "actor", None) is not None:
            check_audience(principal, self.issuer, code, audit)
        try:
            require(principal, PROXY, proxy_scope(code))
        except InsufficientScope as exc:
            audit.reason = f"the token lacks the scope {exc.scope} (it has: " \
                           f"{' '.join(sorted(principal.scope)) or 'none'})"
            raise
        if principal.via == "session":
            why = cross_site_reason(method, headers, own_origins(
                self.issuer, scope.get("scheme", "http"), host))
            if why is not None:
                audit.reason = why
                raise AccessDenied("cross-site request refused")
        if not spent:
            self.spend(principal)
        if system is None:  # after the caller's own bucket: probing codes spends it
            audit.reason = f"no system {code}"
            raise UnknownSystem("no such system")
        if method in NEVER_FORWARDED:
            audit.reason = f"{method} is never forwarded"
            raise AccessDenied(f"the gateway does not forward {method} requests")
        if target.query and (named := method_parameter(target.query)) is not None:
            audit.reason = f"query parameter {named!r} names a method"
            raise BadPath(f"query parameter {named!r} would make the system run another "
                          f"method than {method}")
        req = ProxyRequest(audit.request_id, method, target, system, principal,
                           audit.source_ip, headers, audit=audit)
        t_decide = time.perf_counter()
        decision = self.policy(req)  # decide(), without a coroutine of its own
        for decider in self.deciders:
            decision = await decider(req, decision)
        self.observe_decision(time.perf_counter() - t_decide)
        audit.decision = decision
        audit.reason = decision.reason
        audit.extra["rule"] = decision.rule
        audit.extra["line_id"] = decision.line.id if decision.line else None
        if not decision.allowed:
            raise AccessDenied("access denied")
        return Admission(req, decision)
