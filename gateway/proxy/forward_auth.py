"""``GET /auth/verify``: forward authentication for nginx ``auth_request``, and the
same contract Traefik ``forwardAuth`` and Caddy ``forward_auth`` use.

The front proxy sends the client's credentials (``Authorization``, ``Cookie``)
and tells which request it is checking:

    X-Original-URI / X-Forwarded-Uri        the request target (path and query)
    X-Original-Method / X-Forwarded-Method  the method
    X-Govgate-System (optional)             the system code when the front proxy serves
                                            it at its own root; else the URI must be
                                            /s/{system}/...

Both run the proxy's one admission step (``gateway.proxy.admission``): route,
authenticate, cross-site, rate limit, policy and catalogue decision.

The answer: 200 with ``X-Govgate-Assertion`` (audience = the system),
``X-Govgate-User``, ``X-Govgate-Department``, ``X-Govgate-Roles``,
``X-Govgate-Client`` (and ``X-Govgate-Acting-User`` under a delegation) and
``X-Request-ID`` for the front proxy to pass on, and ``X-Govgate-Cookie``: the
request's cookies without the gateway's own (the portal session that may have signed
this request in, the CSRF token, ...), for the front proxy to send as the ``Cookie``
the system receives, as ``/s/{system}/`` does (``strip_gateway_cookies``); empty when
nothing is left (never missing: Caddy's ``copy_headers`` fills a missing field with
its placeholder's text, or the client's value). Asked as ``/auth/verify?cookie=1``
(Traefik, whose ``authResponseHeaders`` replaces a request field but cannot rename
one), the 200 also carries the kept cookies as its own ``Cookie`` field, absent when
none is left;
401 (with ``WWW-Authenticate``) when there is no valid credential; 403 for
everything else that is not allowed, ambiguous paths and rate limits included
(nginx turns any other status into a 500), with an RFC 9457 problem body naming
the real refusal for callers that read it, and ``X-Refusal-Code`` naming it for a
front proxy that reads no body (nginx's ``error_page`` hands it to
``/portal/refused``). A browser navigating behind a front proxy that hands the answer
on as it is (Caddy, Traefik; not nginx, whose ``X-Original-*`` fields mark it) gets,
instead of the problem, a 302 to the portal's sign-in or the refusal page with the
403 (``VerifyEndpoint``'s ``page``: ``gateway.web.portal.front_refused.front_answer``).
Forward-auth cannot change the response body: where the
catalogue says the response must be cut, masked or encrypted for this caller, the
answer is 403 ``shaping_required`` (call the resource through ``/s/{system}/``).
Every answer is audited first; if the audit append fails the answer is 503, which
nginx turns into 500: fail closed.

Header values arrive as bytes (nginx passes ``$request_uri`` and ``$host`` as the
client sent them, UTF-8 or not); each byte is kept as it came. A raw UTF-8 path is
the path its percent-encoding names (``gateway.proxy.path`` decodes both once, so
one policy line or catalogue route decides every spelling; ``htu`` binds the raw
bytes, as the upstream behind nginx receives them); bytes that are not UTF-8, a
raw query, a method that is not an ASCII token, a system code or forwarded host
outside ASCII are refused (``bad_path``, answered 403, audited), never guessed at.

The answer is for the front proxy only: a peer not named by ``forward_auth_from``
(loopback and ``trusted_proxies`` when unset) is refused 403 ``forward_auth_peer``
before anything is read, audited, with no identity header, no assertion and no
cookie. Else anyone holding a user's token could call it directly and read the
user's roles and department, or have the request's cookies (HttpOnly ones of other
applications on the host) reflected back. The PEER decides (``govgate.peer`` in the
scope, kept by ``gateway.app`` before ``X-Forwarded-For`` rewrites the client).

The front proxy must itself drop client-supplied identity headers and set
the ones above: see docs/nginx-forward-auth.conf. It should pass the host the
client addressed as ``X-Forwarded-Host`` (for the cross-site rule).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.errors import AuditUnavailable, Forbidden, GovgateError, Unauthorized, problem_body
from gateway.i18n import accept_lang, render
from gateway.idp.dpop import TARGET_KEY, origin_url, refusal_fields
from gateway.idp.scopes import InsufficientScope
from gateway.problem_titles import title_in
from gateway.proxy.admission import AuditDraft, audit_target
from gateway.proxy.assertion import PER_CALLER
from gateway.proxy.endpoint import LANGUAGE_TAGS, Proxy, new_request_id, request_header
from gateway.proxy.headers import strip_gateway_cookies
from gateway.proxy.identity_headers import header_value
from gateway.proxy.path import BadPath
from gateway.storage import STORAGE_FAILURES, unavailable
from gateway.tables import SYSTEM_RE
from texts import Text


class ShapingRequired(Forbidden):
    code = "shaping_required"
    title = "Call this resource through the gateway's proxy"


class PeerRefused(Forbidden):
    code = "forward_auth_peer"
    title = "Only the front proxy may ask forward-auth"
    localised = True


# the scope key ``gateway.app`` keeps the connection's peer under before uvicorn's
# ProxyHeadersMiddleware replaces ``client`` with X-Forwarded-For's address
PEER_KEY = "govgate.peer"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


#: the user's attributes a system's ``forward_auth_attributes`` may add to the 200, by
#: the header field each goes in (the department and roles are in every 200)
RELEASED_FIELDS = {"name": b"x-govgate-name", "region": b"x-govgate-region"}


def released(principal: Any, listed: frozenset[str]) -> list[tuple[bytes, bytes]]:
    """The fields of the attributes ``listed`` for this system, the user's as they are
    now (a bearer principal is refreshed from the user), none for a client acting for
    itself. A value outside printable ASCII (a Chinese name) goes as an RFC 8187
    ext-value, ``UTF-8''`` and the percent-encoded UTF-8 bytes, as the plain identity
    headers through ``/s/`` do: one reading for a system that meets both, ASCII a front
    proxy passes on untouched (nginx copies the bytes; a raw UTF-8 value would reach the
    system as whatever its framework decodes Latin-1 to), and an ASCII name readable
    as it is, which base64 would not be."""
    if not principal.username:
        return []
    out = []
    for attribute, field_name in RELEASED_FIELDS.items():
        value = getattr(principal, attribute, None)
        if attribute in listed and isinstance(value, str) and value:
            out.append((field_name, header_value(value)))
    return out


@functools.lru_cache(maxsize=16)
def peer_networks(entries: tuple[str, ...]) -> tuple[_Network, ...]:
    """The networks of ``forward_auth_from`` (validated by the settings)."""
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


@functools.lru_cache(maxsize=256)  # the front proxy's few addresses, on every request
def peer_allowed(peer: str | None, entries: tuple[str, ...]) -> bool:
    """Whether the connection's peer address is one ``entries`` names. Anything that is
    not an IP address (a Unix socket, a test client's name) is not: fail closed."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.partition("%")[0])  # no IPv6 zone
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket's ::ffff:10.0.0.5
    return any(address in network for network in peer_networks(entries))



# the front proxy's request line and the host the client addressed, by header name:
# which of them it is (nginx sets ``X-Original-*``, Traefik and Caddy ``X-Forwarded-*``)
_URI, _METHOD, _SYSTEM, _HOST, _OVERRIDE = range(5)
_FRONT: dict[str, int] = {
    "x-original-uri": _URI, "x-forwarded-uri": _URI,
    "x-original-method": _METHOD, "x-forwarded-method": _METHOD,
    "x-govgate-system": _SYSTEM,
    # the host the client addressed, for the cross-site rule (Host is the gateway's own)
    "x-forwarded-host": _HOST,
    # honoured by some upstream frameworks; nginx would forward it as the client sent it
    "x-http-method-override": _OVERRIDE, "x-http-method": _OVERRIDE,
    "x-method-override": _OVERRIDE,
}


# RFC 9110 section 5.6.2: what a method name may be made of (ASCII only)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_NO_STORE = (b"cache-control", b"no-store")
_AMBIGUOUS = object()  # two different values for one of them


def scan(raw: list[tuple[bytes, bytes]]) -> tuple[dict[str, str], list[object]]:
    """One pass over the request's header fields: the first value of each name (as
    ``first_values``), and for each of the URI, the method (upper case), the system,
    the host and a method override what the front proxy gave: None, one value, or
    ``_AMBIGUOUS`` (read with :func:`_one`)."""
    sent: dict[str, str] = {}
    front: list[object] = [None] * 5
    for k, v in raw:
        name = k.decode("latin-1").lower()
        value = v.decode("latin-1")
        if name not in sent:
            sent[name] = value
        which = _FRONT.get(name)
        if which is not None and value:
            if which in (_METHOD, _OVERRIDE) and value.isascii():
                # only ASCII: "ß".upper() is "SS", a method nobody sent (the token
                # check in ``verify`` refuses what stays non-ASCII)
                value = value.upper()
            found = front[which]
            front[which] = value if found is None or found == value else _AMBIGUOUS
    return sent, front


def original_url(sent: dict[str, str], host: str | None, uri: str, issuer: str
                 ) -> str | None:
    """The URL the client sent the front proxy (what its DPoP proof's ``htu`` names):
    ``X-Forwarded-Proto`` (else the issuer's scheme), the host it addressed, and the
    path as the front proxy passed it; None when the host is no host name or address
    (``dpop.origin_url``: a ``#`` or ``?`` in it would have the comparison cut the
    path off, so that a proof for ``/`` opened every path)."""
    # a chain of proxies lists one scheme each: the first is the client's
    scheme = sent.get("x-forwarded-proto", "").partition(",")[0].strip().lower() \
        or issuer.partition(":")[0]
    origin = origin_url(scheme, host) if host else issuer.partition("://")[0] + "://" + \
        issuer.partition("://")[2].partition("/")[0]
    return None if origin is None else origin + uri.partition("?")[0]


def _upstream_cookies(raw: list[tuple[bytes, bytes]]) -> bytes:
    """Every ``Cookie`` field of the request (HTTP/2 sends one per cookie) joined,
    without the gateway's own: what the system behind the front proxy may receive.
    The session cookie would sign its holder in at the portal, ``/oauth2/authorize`` and
    the API; a system is never shown it (``gateway.proxy.headers``)."""
    fields = [v.decode("latin-1") for k, v in raw if k.lower() == b"cookie"]
    if not fields:
        return b""
    return strip_gateway_cookies("; ".join(fields)).encode("latin-1")


def _cookie_field(scope: Scope) -> bool:
    """Whether the front proxy asked (``/auth/verify?cookie=1``, in the address its
    operator configured) for the kept cookies as the answer's own ``Cookie`` field."""
    return b"cookie=1" in (scope.get("query_string") or b"").split(b"&")


def _one(front: list[object], which: int) -> str | None:
    """The one value the front proxy gave for ``which``, or None.

    Traefik and Caddy pass the client's other headers along, so the spelling the front
    proxy did not set is the client's: two different values (in either spelling, or one
    header twice) cannot be told apart and are refused (BadPath, answered 403)."""
    found = front[which]
    if found is _AMBIGUOUS:
        raise BadPath("the front proxy's request line is ambiguous")
    return found  # type: ignore[return-value]


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
#: (scope, status, refusal code, request id) → what a browser gets instead of the
#: refusal, or None (``gateway.web.portal.front_refused.front_answer``)
FrontPage = Callable[[Scope, int, str, str], Awaitable[Answer | None]]


class VerifyEndpoint:
    """``GET|HEAD /auth/verify`` as a bare ASGI app: the router's route for it (which
    answers other methods 405), and what the app dispatches to before Starlette's
    middleware and router, since every request behind nginx comes through here.
    ``page``: the portal's answer to a refused browser behind a front proxy that hands
    the answer on (Caddy, Traefik); the audit record is written before it."""

    def __init__(self, page: FrontPage | None = None) -> None:
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxy = scope["app"].state.gateway.proxy
        status, headers, body = await verify(proxy, scope, receive)
        if self.page is not None and status in (401, 403):
            fields = dict(headers)
            page = await self.page(scope, status,
                                   fields.get(b"x-refusal-code", b"").decode("latin-1"),
                                   fields.get(b"x-request-id", b"").decode("latin-1"))
            if page is not None:
                status, headers, body = page
        # always a length: else the server frames an empty body as chunked
        headers.append((b"content-length", b"%d" % len(body)))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body",
                    "body": body if scope["method"] != "HEAD" else b""})


async def verify(proxy: Proxy, scope: Scope, receive: Receive
                 ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, header fields (lower-case names) and body of the forward-auth answer for
    the request in ``scope``."""
    started = time.perf_counter()
    client = scope.get("client")
    audit = AuditDraft(new_request_id(), client[0] if client else None)
    outcome, status = "deny", 403
    request_id = (b"x-request-id", audit.request_id.encode("latin-1"))
    headers = [request_id, _NO_STORE]
    refusal: GovgateError | None = None
    try:
        peer = scope.get(PEER_KEY, client)
        peer_host = peer[0] if peer else None
        if not peer_allowed(peer_host, proxy.config.forward_auth_from):
            # nothing of the request is read: no credential checked, no identity, no
            # cookie, no rate limit spent for the user the token names
            audit.extra["peer"] = peer_host
            audit.reason = f"peer {peer_host} is not in forward_auth_from"
            raise PeerRefused(Text(
                "forward_auth.peer", "/auth/verify answers the front proxy only; this "
                "peer is not in forward_auth_from"))
        sent, front = scan(scope["headers"])
        uri = _one(front, _URI) or ""
        # the bytes as the front proxy passed them (nginx: the client's, raw): header
        # values are read as latin-1, which gives every byte back unchanged
        raw_uri = uri.encode("latin-1")
        # no default: a front proxy that does not say the method would have every
        # request checked as a GET (fail closed, and the set-up error shows at once)
        method = _one(front, _METHOD) or ""
        audit.extra.update(method=audit_target(method.encode("latin-1")),
                           path=audit_target(raw_uri))
        if not method:
            raise BadPath("the front proxy did not send the request's method")
        if not _TOKEN.fullmatch(method):
            raise BadPath("the front proxy's method is not an HTTP method name")
        if _one(front, _OVERRIDE) not in (None, method):
            raise BadPath("a method-override header names another method")
        host = _one(front, _HOST) or sent.get("host")
        if host is not None and not host.isascii():
            # a host name on the wire is ASCII (IDNA): these bytes would only add an
            # origin to the cross-site rule's own ones that no browser sends
            raise BadPath("the forwarded host is not ASCII")
        raw_path, _, query = raw_uri.partition(b"?")
        system_hint = _one(front, _SYSTEM)
        if system_hint is not None:
            if not SYSTEM_RE.match(system_hint) or not raw_path.startswith(b"/"):
                raise BadPath("bad system or URI")
            if raw_path.startswith(b"/s/"):
                # a /s/{system}/ URI names its system: a hint beside it is a client's
                # (front proxies pass the client's headers along), which would have
                # another system's rules decide this one's request
                raise BadPath("X-Govgate-System beside a /s/{system}/ URI")
            raw_path = b"/s/" + system_hint.encode() + raw_path
        # RFC 9449: a proof names the request the client sent the front proxy
        scope[TARGET_KEY] = (method, original_url(sent, host, uri,
                                                  proxy.services.settings.issuer))
        admission = await proxy.admitter.admit(
            scope, receive, method=method, raw_path=raw_path, query=query, headers=sent,
            host=host, audit=audit)
        system = admission.system.code
        if admission.shape:  # HEAD included: the assertion would serve a GET as well
            audit.reason = (f"{audit.resource} is cut, masked or encrypted for this caller; "
                            "forward-auth cannot change a response body")
            raise ShapingRequired(
                f"resource {audit.resource} must be called through /s/{system}/: its "
                "response is cut to the granted items, masked or encrypted for this caller")
        principal = admission.principal
        marks = admission.request.extra.get("assertion_claims")
        # the system opted in to reuse; a marked call (break-glass) is never reused
        if admission.system.assertion == PER_CALLER and not marks:
            reused = proxy.caller_assertions.get(
                principal, issuer=proxy.services.settings.issuer, system=system,
                now=proxy.services.clock(), lifetime=proxy.config.assertion_lifetime)
            audit.extra["assertion_jti"] = reused.jti
            assertion = reused.token
        else:
            assertion = proxy.signer.mint(
                principal, issuer=proxy.services.settings.issuer, system=system,
                request_id=audit.request_id, now=proxy.services.clock(),
                lifetime=proxy.config.assertion_lifetime, method=method,
                path=uri.partition("?")[0], marks=marks)
        headers += [
            (b"x-govgate-assertion", assertion.encode("latin-1")),
            (b"x-govgate-user", (principal.username or "").encode("latin-1")),
            (b"x-govgate-subject", principal.subject.encode("latin-1")),
            (b"x-govgate-department", principal.department.encode("latin-1")),
            (b"x-govgate-roles", ",".join(sorted(principal.roles)).encode("latin-1")),
            (b"x-govgate-client", (principal.client_id or "").encode("latin-1")),
        ]
        # always there on a 200, empty when nothing is left: a front proxy copying it
        # (Caddy's ``copy_headers``) then never meets it missing, which Caddy 2.6-2.9
        # fill with the placeholder's own text and 2.10+ leave the client's value for
        kept = _upstream_cookies(scope["headers"])
        headers.append((b"x-govgate-cookie", kept))
        if kept and _cookie_field(scope):
            # Traefik: ``authResponseHeaders: [Cookie]`` deletes the request's Cookie
            # and sets the answer's; absent (nothing left), the system gets none
            headers.append((b"cookie", kept))
        delegate = getattr(principal, "delegate", None)
        if delegate:  # a delegation (委托): the colleague acting for the user
            headers.append((b"x-govgate-acting-user", delegate.encode("latin-1")))
        headers += released(principal, admission.system.forward_auth_attributes)
        for name, value in admission.request.extra.get("identity_headers", ()):
            # a decider's mark (break-glass) takes the place of a field of its name
            name = name.lower()
            headers = [field for field in headers if field[0] != name]
            headers.append((name, value))
        outcome, status = "allow", 200
    except Unauthorized as exc:
        status, refusal = 401, exc
        headers += refusal_fields(exc)  # a DPoP refusal's nonce too
        audit.reason = exc.reason or exc.description
    except GovgateError as exc:
        refusal = exc
        if isinstance(exc, InsufficientScope):
            headers.append((b"www-authenticate", exc.www_authenticate.encode("latin-1")))
        if audit.reason is None:
            audit.reason = exc.description
        if exc.status != 403:
            audit.extra["refused_as"] = exc.status  # answered 403: nginx's only refusal
    except STORAGE_FAILURES as exc:  # a step met the database gone: not the caller's fault
        audit.extra["error"] = f"{type(exc).__name__}: {exc}"[:300]
        outcome, status, refusal = "error", 503, unavailable()
    try:
        await proxy.append_audit(audit, outcome, status, started, event_type="forward_auth")
    except AuditUnavailable:
        proxy.count_forward_auth("audit_failed")
        # no-store as on every answer: an operator's cache on the auth location would
        # keep the refusal (for every caller) after the audit came back
        return 503, [request_id, _NO_STORE], b""
    proxy.count_forward_auth(outcome if status != 401 else "unauthenticated")
    if refusal is None:
        return status, headers, b""
    _, problem = problem_body(refusal)
    # the refusal's code for a front proxy that cannot read the body: nginx's
    # ``auth_request_set`` hands it to the page the browser gets (``/portal/refused``)
    headers.append((b"x-refusal-code", refusal.code.encode("ascii")))
    # as the proxy answers it (``Proxy._fail``): the title in the caller's language
    lang = accept_lang(request_header(scope, b"accept-language"),
                       proxy.services.settings.lang)
    problem["title"] = title_in(refusal.code, refusal.title, lang)
    if refusal.localised:
        problem["detail"] = render(refusal.description, lang)
    headers.append((b"content-language", LANGUAGE_TAGS[lang]))
    problem.update(status=status, request_id=audit.request_id)
    headers.append((b"content-type", b"application/problem+json"))
    return status, headers, json.dumps(problem, ensure_ascii=False).encode("utf-8")
