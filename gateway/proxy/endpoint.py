"""The policy-enforcing reverse proxy at ``/s/{system}/{path}``.

One request, in order (each step can end it with an RFC 9457 problem):

    limits      header block over ``max_header_bytes`` → 431; declared body over
                ``max_body_bytes`` → 413 (before a byte of it is read)
    admit       ``gateway.proxy.admission.Admitter``, the step forward-auth runs too:
                route (400), authenticate (401), cross-site (403), rate limit
                (429), an unknown system (404, only for an authenticated caller with
                the scope for that code), decide: policy, then the catalogue (403;
                an ambiguous spelling of a governed route 400)
    forward     identity headers stripped, hop-by-hop dropped, X-Forwarded-* and
                ``X-Govgate-Assertion`` + ``X-Request-ID`` set; bodies streamed both
                ways, a body growing past the limit aborts with 413; connect or read
                timeout → 504, connection failure → 502. A shaped request's body is
                read whole first (413 past the limit) and passed by ``body_checks``
                (the catalogue's: its parameter names), then sent with its length
    shape       ``shapers`` see the response and may rewrite it (the catalogue's
                cut / mask / encrypt); a shaper raising refuses the response
    audit       one record (decision and reason, status, latency, request id,
                body hashes) appended durably BEFORE the response leaves; if the
                append fails the client gets 503 instead (no audit, no access)

Errors (all ``GovgateError``; detail is opaque, the reason goes to audit):

    GovgateError
    ├── ValidationError → BadPath (400)
    ├── NotFound → UnknownSystem (404)
    ├── Unauthorized (401)            Forbidden → AccessDenied (403)
    ├── RateLimited (429)             AuditUnavailable (503)
    └── ProxyError
        ├── PayloadTooLarge (413)     HeadersTooLarge (431)
        ├── BodyTimeout (408)
        ├── BadGateway (502)          GatewayTimeout (504)
        ├── InsecureUpstream (502)    identity_over_tls_only and no verified TLS
        └── ShapingRefused (502)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.types import Receive, Scope, Send

from gateway.errors import AuditUnavailable, GovgateError, Unauthorized, problem_body
from gateway.i18n import accept_lang, render
from gateway.idp.dpop import refusal_fields
from gateway.idp.scopes import InsufficientScope
from gateway.metrics import Metrics
from gateway.problem_titles import title_in
from gateway.proxy.acting import ActingFor, acting_cache
from gateway.proxy.admission import (
    AccessDenied,
    Admitter,
    AuditDraft,
    Decider,
    ProxyRequest,
    RateLimited,
    System,
    SystemDirectory,
    UnknownSystem,
    audit_target,
    form_post,
    method_in_form,
)
from gateway.proxy.assertion import HEADER as ASSERTION_HEADER
from gateway.proxy.assertion import PER_CALLER, AssertionSigner
from gateway.proxy.caller_assertion import CallerAssertions
from gateway.proxy.credentials import AuthenticatorLike
from gateway.proxy.headers import HeaderPolicy
from gateway.proxy.identity_headers import ASSERTION, PLAIN, plain_headers
from gateway.proxy.path import BadPath
from gateway.proxy.static_credentials import API_KEY, StaticCredentials
from gateway.proxy.upstream_http import (
    Origin,
    UpstreamBodyTooLarge,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamReadTimeout,
    UpstreamReply,
    UpstreamTransport,
)
from gateway.rate_limits import TokenBucketLimiter
from gateway.request_id import new_request_id
from gateway.services import Services
from gateway.settings import Settings
from gateway.storage import STORAGE_FAILURES, unavailable
from policies import Decision, Policies

__all__ = ["AccessDenied", "Decider", "Proxy", "ProxyRequest", "RateLimited", "System",
           "UnknownSystem"]

PROBLEM_JSON = b"application/problem+json"
ASSERTION_HEADER_B = ASSERTION_HEADER.lower().encode("ascii")
_PROTO = {s: (b"x-forwarded-proto", s.encode()) for s in ("http", "https")}
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # a request without a body: most of them
SHAPE_LIMIT_BYTES = 64 * 1024 * 1024  # a response to be shaped is read whole, up to this
_BODILESS = frozenset({204, 304})


# ---------------------------------------------------------------------------
# errors


class ProxyError(GovgateError):
    code = "proxy"
    status = 502
    title = "Proxy error"


class BodyTimeout(ProxyError):
    code = "request_timeout"
    status = 408
    title = "Request body too slow"


class PayloadTooLarge(ProxyError):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"


class HeadersTooLarge(ProxyError):
    code = "headers_too_large"
    status = 431
    title = "Request header fields too large"


class BadGateway(ProxyError):
    code = "bad_gateway"
    status = 502
    title = "Upstream unavailable"


class InsecureUpstream(ProxyError):
    """The system wants identity only over verified TLS and its upstream is not that
    (http, or a TLS context that does not check the certificate): nothing is sent."""

    code = "insecure_upstream"
    status = 502
    title = "Upstream not reached over verified TLS"


class GatewayTimeout(ProxyError):
    code = "gateway_timeout"
    status = 504
    title = "Upstream timed out"


class ShapingRefused(ProxyError):
    code = "shaping_refused"
    status = 502
    title = "Response refused"


# ---------------------------------------------------------------------------
# configuration and the objects the seams see


LOOPBACK = ("127.0.0.0/8", "::1")


@dataclass(frozen=True)
class ProxyConfig:
    max_body_bytes: int = 10 * 1024 * 1024
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    rate: float = 100.0  # requests per second per client
    burst: float = 200.0
    buffer_response_bytes: int = 1024 * 1024  # hashed and shapeable before sending
    extra_strip_headers: tuple[str, ...] = ()
    assertion_lifetime: int = 60
    token_audience: str | None = None
    max_connections: int = 256  # requests in flight per upstream
    # the longest wait for the next piece of a request body: a client sending it
    # slowly would otherwise hold one of the upstream's connection slots for ever
    body_timeout: float = 30.0
    # the peers /auth/verify answers (gateway.proxy.forward_auth): addresses or networks
    forward_auth_from: tuple[str, ...] = LOOPBACK

    @classmethod
    def from_settings(cls, s: Settings) -> ProxyConfig:
        return cls(
            max_body_bytes=s.max_body_bytes,
            max_header_bytes=s.max_header_bytes,
            max_headers=s.max_headers,
            connect_timeout=s.upstream_connect_timeout,
            read_timeout=s.upstream_read_timeout,
            assertion_lifetime=min(60, s.assertion_lifetime),
            rate=s.proxy_rate,
            burst=s.proxy_burst,
            extra_strip_headers=tuple(s.proxy_strip_headers),
            max_connections=s.upstream_max_connections,
            body_timeout=s.body_timeout_seconds,
            # unset: the gateway's own host and the load balancers named as trusted
            forward_auth_from=(tuple(s.forward_auth_from)
                               or LOOPBACK + tuple(s.trusted_proxies)),
        )


@dataclass
class UpstreamResponse:
    """A buffered upstream response (what shapers may rewrite)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


# a step on the buffered response: returns it (maybe rewritten), or raises to refuse
Shaper = Callable[[ProxyRequest, Decision, UpstreamResponse], Awaitable[UpstreamResponse]]
# a check of a shaped request's whole body (with the request's raw header fields) before
# the upstream sees it: returns, or raises to refuse
BodyCheck = Callable[[ProxyRequest, bytes, list[tuple[bytes, bytes]]], Awaitable[None]]


# ---------------------------------------------------------------------------
# the proxy


class _BodyTooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


class _UpstreamCut(_ClientGone):
    """The upstream broke off a streamed answer whose head had gone out: the client
    is cut short too (no answer of our own can follow), audited as a 502."""


class _BodyStalled(Exception):
    pass


class RequestBody:
    """The client's request body on its way to the upstream: counted against the
    limit, hashed for the audit record, and what became of it (ended, cut off at the
    limit, or its client gone)."""

    __slots__ = ("_hash", "done", "gone", "limit", "receive", "received", "stalled",
                 "timeout", "too_large")

    def __init__(self, receive: Receive, limit: int, *, expected: bool,
                 timeout: float = 30.0) -> None:
        self.receive = receive
        self.limit = limit
        self.timeout = timeout
        self.stalled = False
        self.received = 0
        self.too_large = False
        self.gone = False
        self.done = not expected
        self._hash: Any = None  # hashlib's SHA-256, from the first chunk on

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    message = await self.receive()
            except TimeoutError:
                self.stalled = True
                raise _BodyStalled from None
            if message["type"] == "http.disconnect":
                self.gone = True
                raise _ClientGone
            chunk = message.get("body", b"")
            self.received += len(chunk)
            if self.received > self.limit:
                self.too_large = True
                raise _BodyTooLarge
            if chunk:
                if self._hash is None:
                    self._hash = hashlib.sha256()
                self._hash.update(chunk)
                yield chunk
            if not message.get("more_body", False):
                self.done = True
                return

    def digest(self) -> str | None:
        """The SHA-256 of the whole body, once it has all been read."""
        if not self.done:
            return None
        return EMPTY_SHA256 if self._hash is None else self._hash.hexdigest()

    def failure(self, exc: BaseException) -> Exception | None:
        """What the client is told when the upstream request failed because of its
        body (too large, or the client left), or None: the upstream's fault."""
        if self.too_large or _caused_by(exc, _BodyTooLarge):
            return PayloadTooLarge(f"request body over {self.limit} bytes")
        if self.stalled or _caused_by(exc, _BodyStalled):
            return BodyTimeout(f"no part of the request body for {self.timeout:g} s")
        if self.gone or _caused_by(exc, _ClientGone):
            return _ClientGone()
        return None


# the HTML page a browser navigating to a refused address gets instead of problem+json
# (``gateway.web.portal.error_page.browser_answer``, handed in by ``create_app``)
BrowserPage = Callable[..., tuple[int, list[tuple[bytes, bytes]], bytes] | None]


class Proxy:
    """ASGI app for ``/s/{system}/{path}``. Built by the composition root
    (``gateway.root``) with its collaborators; tests build one the same way."""

    def __init__(
        self,
        services: Services,
        *,
        authenticator: AuthenticatorLike,
        policies: Policies,
        metrics: Metrics,
        config: ProxyConfig | None = None,
        deciders: Sequence[Decider] = (),
        shapers: Sequence[Shaper] = (),
        body_checks: Sequence[BodyCheck] = (),
        client: UpstreamTransport | None = None,
        rate_clock: Callable[[], float] = time.monotonic,
        browser_page: BrowserPage | None = None,
        static_clients: Any = None,
    ) -> None:
        self.services = services
        self.config = config or ProxyConfig.from_settings(services.settings)
        self.browser_page = browser_page
        self.shapers = list(shapers)
        self.body_checks = list(body_checks)
        self.client: UpstreamTransport = client or UpstreamClient(
            connect_timeout=self.config.connect_timeout,
            read_timeout=self.config.read_timeout)
        self._origins: dict[tuple[str, Any], tuple[Origin, str]] = {}
        self._semaphores: dict[Origin, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = {}
        self.in_flight = 0  # requests holding an upstream slot, all upstreams
        self.headers = HeaderPolicy(self.config.extra_strip_headers)
        self.systems = SystemDirectory(services.engine, open_=services.keys.open)
        self.metrics = metrics
        self.signer = AssertionSigner(services.keys)
        self.caller_assertions = CallerAssertions(self.signer)
        issuer = services.settings.issuer
        self.admitter = Admitter(
            systems=self.systems,
            authenticator=authenticator,
            audience=self.config.token_audience or issuer, issuer=issuer,
            limiter=TokenBucketLimiter(self.config.rate, self.config.burst, clock=rate_clock),
            policies=policies, deciders=deciders,
            observe_decision=self.metrics.decision_seconds.observe,
            acting=ActingFor(acting_cache(services), services.live_users, services.clock,
                             services.keys),
            static=None if static_clients is None else StaticCredentials(
                static_clients, verify_secret=services.verify_client_secret,
                verify_api_key=services.verify_api_key, engine=services.engine),
        )
        self._children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self._forward_auth_children: dict[str, Any] = {}
        self._upstream_children: dict[str, Any] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def shape(self, req: ProxyRequest, decision: Decision,
                    response: UpstreamResponse) -> UpstreamResponse:
        """Every shaper in turn (the catalogue's cut, mask, encrypt)."""
        for shaper in self.shapers:
            try:
                response = await shaper(req, decision, response)
            except GovgateError:
                raise
            except Exception as exc:
                # the record says why (the class only: a message may quote the body)
                req.audit.items = ()
                req.audit.extra.setdefault(
                    "refused", f"the shaper failed: {type(exc).__name__}")
                raise ShapingRefused("the response could not be shaped") from exc
        return response

    # -- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        started = time.perf_counter()
        method = scope["method"]
        client = scope.get("client")
        audit = AuditDraft(new_request_id(), client[0] if client else None,
                           extra={"method": method})
        try:
            raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
            raw_path, _, _ = raw_path.partition(b"?")
            query = scope.get("query_string", b"")
            audit.extra["path"] = audit_target(
                raw_path + b"?" + query if query else raw_path)
            header_map, length, chunked = self._scan_headers(raw_headers)
            if length is not None and length > self.config.max_body_bytes:
                raise PayloadTooLarge(f"request body over {self.config.max_body_bytes} bytes")
            admission = await self.admitter.admit(
                scope, receive, method=method, raw_path=raw_path, query=query,
                headers=header_map, host=header_map.get("host"), audit=audit,
                fixed_credentials=True)
            await self._forward(admission.request, admission.decision, scope, receive, send,
                                raw_headers, length, chunked, started)
        except Exception as exc:
            await self._fail(exc, send, audit, started, scope)

    # -- steps -----------------------------------------------------------------------

    def _scan_headers(self, raw: list[tuple[bytes, bytes]]
                      ) -> tuple[dict[str, str], int | None, bool]:
        """One pass over the request's header fields: their count and size against the
        limits (431), then the first value of each name (as :func:`first_values`), the
        declared length (the first ``Content-Length``; a bad one 400) and whether the body
        is chunked."""
        if len(raw) > self.config.max_headers:
            raise HeadersTooLarge("too many header fields")
        size = 0
        out: dict[str, str] = {}
        length: bytes | None = None
        chunked = False
        for k, v in raw:
            size += len(k) + len(v) + 4
            name = k.decode("latin-1").lower()
            if name not in out:
                out[name] = v.decode("latin-1")
                if name == "content-length":
                    length = v
            if name == "transfer-encoding":
                chunked = True
        if size > self.config.max_header_bytes:
            raise HeadersTooLarge(f"header block over {self.config.max_header_bytes} bytes")
        if length is None:
            return out, None, chunked
        return out, _declared_length(length), chunked

    def _origin(self, system: System) -> tuple[Origin, str]:
        """The upstream's origin and base path (``http://h:p/base`` → origin, "/base")."""
        key = (system.upstream, system.tls)
        found = self._origins.get(key)
        if found is None:
            parts = urlsplit(system.upstream)
            try:
                origin = Origin.parse(f"{parts.scheme}://{parts.netloc}", tls=system.tls)
            except ValueError:
                raise BadGateway("the system's upstream address is not usable") from None
            if len(self._origins) >= 10_000:
                self._origins.clear()
            found = self._origins[key] = (origin, parts.path.rstrip("/"))
        return found

    async def _forward(
        self, req: ProxyRequest, decision: Decision, scope: Scope, receive: Receive,
        send: Send, raw_headers: list[tuple[bytes, bytes]], length: int | None,
        chunked: bool, started: float,
    ) -> None:
        services = self.services
        audit = req.audit
        origin, base = self._origin(req.system)
        if req.system.identity_tls_only and not self.client.verifies(origin):
            audit.extra["upstream_error"] = (
                f"insecure: identity_over_tls_only and the upstream is {origin.scheme}"
                + (" without certificate verification" if origin.scheme == "https" else ""))
            raise InsecureUpstream("the system takes identity only over verified TLS")
        headers, host = self.headers.request_headers(
            raw_headers, allow=req.system.forward_headers, shaped=req.shape)
        if audit.extra.get("authenticated_by") == API_KEY:  # the gateway's, never the upstream's
            headers = [(k, v) for k, v in headers if k.lower() != b"x-api-key"]
        request_id = (b"x-request-id", req.request_id.encode("latin-1"))
        scheme = scope.get("scheme", "http")
        headers += [(b"x-forwarded-for", (req.client_ip or "").encode("latin-1")),
                    _PROTO.get(scheme) or (b"x-forwarded-proto", scheme.encode("latin-1"))]
        if host:
            headers.append((b"x-forwarded-host", host.encode("latin-1")))
        headers.append(request_id)
        mode = req.system.identity_headers
        # the system opted in to reuse; a marked call (break-glass) is never reused
        if mode != PLAIN and req.system.assertion == PER_CALLER \
                and not req.extra.get("assertion_claims"):
            reused = self.caller_assertions.get(
                req.principal, issuer=services.settings.issuer, system=req.system.code,
                now=services.clock(), lifetime=self.config.assertion_lifetime)
            audit.extra["assertion_jti"] = reused.jti
            headers.append((ASSERTION_HEADER_B, reused.token.encode("ascii")))
        elif mode != PLAIN:
            headers.append((ASSERTION_HEADER_B, self.signer.mint(
                req.principal, issuer=services.settings.issuer, system=req.system.code,
                request_id=req.request_id, now=services.clock(),
                lifetime=self.config.assertion_lifetime, method=upstream_method(req),
                path=base + req.target.upstream_path,
                marks=req.extra.get("assertion_claims"),
            ).encode("ascii")))
        if mode != ASSERTION:
            headers += plain_headers(req.principal, remote_user=req.system.remote_user)
            headers += req.extra.get("identity_headers", [])  # a decider's marks
        has_body = chunked or bool(length)
        try:
            target = (base + req.target.upstream_path
                      + (f"?{req.target.query}" if req.target.query else "")).encode("latin-1")
        except UnicodeEncodeError:
            raise BadPath("the query string is not encoded") from None

        body = RequestBody(receive, self.config.max_body_bytes, expected=has_body,
                           timeout=self.config.body_timeout)
        sent: bytes | AsyncIterator[bytes] | None
        form = has_body and form_post(req.method, req.headers.get("content-type"))
        if has_body and (req.shape or form):
            # an upstream may read parameters from the body (Rack a form's, Rails a JSON
            # object's keys; a form's ``_method`` on any route): read whole and checked
            # before the upstream sees a byte, then sent as read, with its length
            sent = await self._checked_body(req, body, raw_headers, form=form)
            sent_length: int | None = len(sent)
        else:
            sent = body.chunks() if has_body else None
            sent_length = None if chunked else length
        t_up = time.perf_counter()
        slots = self._slots(origin)
        try:
            # at most upstream_max_connections requests in flight per upstream: a burst
            # queues here (up to the connect timeout) instead of opening a socket each
            if slots.locked():
                await asyncio.wait_for(slots.acquire(), self.config.connect_timeout)
            else:
                await slots.acquire()
        except TimeoutError:
            raise self._upstream_failed(req, audit, UpstreamPoolTimeout(
                f"all {self.config.max_connections} connections to the upstream busy")) from None
        self.in_flight += 1
        try:
            try:
                resp = await self.client.request(
                    upstream_method(req), origin, target, headers, sent,
                    content_length=sent_length)
            except Exception as exc:
                raise body.failure(exc) or self._upstream_failed(req, audit, exc) from None
            try:
                self._upstream_seconds(req.system.code).observe(time.perf_counter() - t_up)
                await self._respond(req, decision, resp, send, started, body, base, request_id)
            finally:
                resp.close()
        finally:
            self.in_flight -= 1
            slots.release()

    async def _checked_body(self, req: ProxyRequest, body: RequestBody,
                            raw_headers: list[tuple[bytes, bytes]], *, form: bool) -> bytes:
        """The request's whole body, up to the limit (413 beyond), once it has passed
        every body check (a shaped request's) and, for a form POST, names no method."""
        parts = []
        try:
            async for chunk in body.chunks():
                parts.append(chunk)
        except Exception as exc:
            failure = body.failure(exc)
            if failure is None:
                raise
            raise failure from None
        whole = b"".join(parts)
        req.audit.req_hash = body.digest()
        if form and (named := method_in_form(whole, req.headers["content-type"])):
            req.audit.reason = f"form field {named!r} names a method"
            raise BadPath(f"form field {named!r} would make the system run another "
                          f"method than {req.method}")
        for check in self.body_checks if req.shape else ():
            await check(req, whole, raw_headers)
        return whole

    def _slots(self, origin: Origin) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        found = self._semaphores.get(origin)
        if found is None or found[0] is not loop:  # a semaphore belongs to one loop
            found = self._semaphores[origin] = (loop, asyncio.Semaphore(
                self.config.max_connections))
        return found[1]

    def _upstream_failed(self, req: ProxyRequest, audit: AuditDraft,
                         exc: Exception) -> ProxyError:
        kind, error = _upstream_error(exc)
        self.metrics.upstream_errors.labels(req.system.code, kind).inc()
        audit.extra["upstream_error"] = f"{kind}: {type(exc).__name__}: {exc}"[:300]
        return error

    async def _respond(
        self, req: ProxyRequest, decision: Decision, resp: UpstreamReply,
        send: Send, started: float, body: RequestBody, base: str,
        request_id: tuple[bytes, bytes],
    ) -> None:
        audit = req.audit
        headers = self.headers.response_headers(resp.headers, system=req.system.code,
                                                base=base, upstream=req.system.upstream)
        declared = resp.content_length
        buffer = req.shape or (
            declared is not None and declared <= self.config.buffer_response_bytes)
        audit.req_hash = body.digest()
        if buffer:
            try:
                content = await resp.read(SHAPE_LIMIT_BYTES if req.shape
                                          else self.config.buffer_response_bytes)
            except UpstreamBodyTooLarge:
                raise ShapingRefused("the response is too large to shape") from None
            except UpstreamError as exc:
                raise self._upstream_failed(req, audit, exc) from None
            shaped = await self.shape(req, decision,
                                      UpstreamResponse(resp.status, headers, content))
            out_headers = [(k, v) for k, v in shaped.headers if k != b"content-length"]
            if shaped.status not in _BODILESS:  # RFC 9110 8.6: none on a 204 (or a 304)
                # a HEAD's too: the GET's shaped length (the server sends no body)
                out_headers.append((b"content-length", b"%d" % len(shaped.body)))
            out_headers.append(request_id)
            audit.resp_hash = hashlib.sha256(shaped.body).hexdigest()
            await self.append_audit(audit, "allow", shaped.status, started)
            self._count(req.system.code, shaped.status, "allow", started)
            await send({"type": "http.response.start", "status": shaped.status,
                        "headers": out_headers})
            await send({"type": "http.response.body",
                        "body": b"" if req.method == "HEAD" else shaped.body})
            return
        # large or unknown length: audited before the first byte, body streamed
        audit.extra["resp_streamed"] = True
        await self.append_audit(audit, "allow", resp.status, started)
        self._count(req.system.code, resp.status, "allow", started)
        headers.append(request_id)
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        sent = 0
        try:
            async for chunk in resp.iter_chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
        except UpstreamError as exc:
            self.metrics.upstream_errors.labels(req.system.code, "body").inc()
            # the first record said 200 before the first byte; the failure's record
            # says how much the consumer got (real use is not overstated)
            audit.extra["resp_bytes_sent"] = sent
            audit.extra["upstream_error"] = str(exc)
            raise _UpstreamCut from None  # headers are out: all we can do is cut it short
        await send({"type": "http.response.body", "body": b""})

    async def append_audit(self, audit: AuditDraft, outcome: str, status: int,
                     started: float, event_type: str = "proxy_request") -> None:
        """Append the request's record durably, or AuditUnavailable (no audit, no access)."""
        log = self.services.audit
        if log is None:
            raise AuditUnavailable("audit log not configured")
        try:
            await log.append_durable(audit.record(event_type, outcome, status, started))
        except Exception as exc:
            raise AuditUnavailable("the request could not be audited") from exc

    def _count(self, system: str, status: int, decision: str, started: float) -> None:
        key = (system, status, decision)
        children = self._children.get(key)
        if children is None:  # label lookups take a lock and hash the labels: once
            children = self._children[key] = (
                self.metrics.requests.labels(system, str(status), decision),
                self.metrics.latency.labels(system))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def count_forward_auth(self, decision: str) -> None:
        """One forward-auth answer in ``govgate_forward_auth_total{decision}``."""
        child = self._forward_auth_children.get(decision)
        if child is None:  # label lookups take a lock and hash the labels: once
            child = self._forward_auth_children[decision] = (
                self.metrics.forward_auth.labels(decision))
        child.inc()

    def _upstream_seconds(self, system: str) -> Any:
        child = self._upstream_children.get(system)
        if child is None:
            child = self._upstream_children[system] = (
                self.metrics.upstream_latency.labels(system))
        return child

    async def _fail(self, exc: Exception, send: Send, audit: AuditDraft,
                    started: float, scope: Scope) -> None:
        """Audit the refusal or failure, then answer it as a problem (when the client
        is still there), or to a browser's navigation as the sign-in or an error page
        (``gateway.web.portal.error_page``)."""
        if isinstance(exc, STORAGE_FAILURES):  # a step met the database gone: 503
            audit.extra["error"] = f"{type(exc).__name__}: {exc}"[:300]
            exc = unavailable()
        if isinstance(exc, _UpstreamCut):
            status, body = 502, None
            headers: list[tuple[bytes, bytes]] = []
        elif isinstance(exc, _ClientGone):
            audit.extra["client_gone"] = True
            status, body = 499, None
            headers = []
        else:
            status, body = problem_body(exc)
            body["request_id"] = audit.request_id
            headers = []
            if isinstance(exc, Unauthorized):
                headers += refusal_fields(exc)  # a DPoP refusal's nonce too
                audit.reason = exc.reason or exc.description
            if isinstance(exc, InsufficientScope):
                headers.append((b"www-authenticate", exc.www_authenticate.encode()))
            if isinstance(exc, RateLimited):
                headers.append((b"retry-after", exc.retry_after.encode()))
            if isinstance(exc, GovgateError):  # its title in the caller's language
                lang = accept_lang(request_header(scope, b"accept-language"),
                                   self.services.settings.lang)
                body["title"] = title_in(exc.code, exc.title, lang)
                if exc.localised:
                    body["detail"] = render(exc.description, lang)
                headers.append((b"content-language", LANGUAGE_TAGS[lang]))
            if status >= 500 and not isinstance(exc, GovgateError):
                audit.extra["error"] = f"{type(exc).__name__}: {exc}"[:300]
            elif audit.reason is None:
                audit.reason = exc.description if isinstance(exc, GovgateError) else None
        outcome = "deny" if status in (401, 403) else ("error" if status >= 400 else "allow")
        label = audit.decision.outcome if audit.decision is not None else "none"
        if not isinstance(exc, AuditUnavailable):
            try:
                await self.append_audit(audit, outcome, status, started)
            except AuditUnavailable as audit_exc:
                status, body = problem_body(audit_exc)
                body["request_id"] = audit.request_id
                headers = []
        if not audit.extra.get("resp_streamed"):  # counted already, as its head went out
            self._count(audit.system or "-", status, label, started)
        if body is None:
            return
        page = None if self.browser_page is None else self.browser_page(
            scope, status, request_id=audit.request_id, resource=audit.resource,
            default_lang=self.services.settings.lang, code=getattr(exc, "code", None))
        if page is not None:
            status, headers, payload = page
        else:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers += [(b"content-type", PROBLEM_JSON),
                        (b"content-length", str(len(payload)).encode()),
                        (b"x-request-id", audit.request_id.encode())]
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
        except Exception:  # noqa: S110 - the response had already started; nothing to tell
            pass


LANGUAGE_TAGS = {"zh": b"zh-CN", "en": b"en"}


def upstream_method(req: ProxyRequest) -> str:
    """The method the upstream is asked with: a HEAD on a shaped route goes as the GET
    it stands for, so that its answer is shaped, refused or sized as the GET's would be
    (a HEAD's head from the upstream describes the raw body, which nothing can shape)."""
    return "GET" if req.method == "HEAD" and req.shape else req.method


def request_header(scope: Scope, name: bytes) -> str | None:
    """The first ``name`` field of the request (lower case), as Latin-1 text."""
    return next((v.decode("latin-1") for k, v in scope.get("headers", ())
                 if k.lower() == name), None)


def first_values(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header name (lower case) → its first value, as Starlette's ``Headers.get`` reads
    it: the cached-token lookup and the full authenticator must see the same
    ``Authorization`` when a client sends two."""
    out: dict[str, str] = {}
    for k, v in raw:
        name = k.decode("latin-1").lower()
        if name not in out:
            out[name] = v.decode("latin-1")
    return out


def _declared_length(value: bytes) -> int:
    try:
        n = int(value)
    except ValueError:
        raise BadPath("bad Content-Length") from None
    if n < 0:
        raise BadPath("bad Content-Length")
    return n


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 10:
        if isinstance(cur, kind):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


class UpstreamPoolTimeout(UpstreamError):
    """No free connection slot for the upstream within the connect timeout."""


def _upstream_error(exc: Exception) -> tuple[str, ProxyError]:
    if isinstance(exc, UpstreamPoolTimeout):
        return "pool_timeout", GatewayTimeout("the upstream is at its connection limit")
    if isinstance(exc, UpstreamConnectTimeout):
        return "connect_timeout", GatewayTimeout("the upstream did not accept the connection")
    if isinstance(exc, UpstreamReadTimeout | asyncio.TimeoutError | TimeoutError):
        return "read_timeout", GatewayTimeout("the upstream did not answer in time")
    if isinstance(exc, UpstreamConnectError):
        return "connect", BadGateway("the upstream refused the connection")
    if isinstance(exc, UpstreamError | OSError):
        return "protocol", BadGateway("the upstream connection failed")
    return "internal", BadGateway("the upstream request failed")


class ProxyEndpoint:
    """The route endpoint: hands the request to the app's ``Proxy``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await scope["app"].state.gateway.proxy(scope, receive, send)
