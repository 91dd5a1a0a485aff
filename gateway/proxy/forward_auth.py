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
``X-Request-ID`` for the front proxy to pass on;
401 (with ``WWW-Authenticate``) when there is no valid credential; 403 for
everything else that is not allowed, ambiguous paths and rate limits included
(nginx turns any other status into a 500), with an RFC 9457 problem body naming
the real refusal for callers that read it. Forward-auth cannot change the
response body: where the catalogue says the response must be cut, masked or
encrypted for this caller, the answer is 403 ``shaping_required`` (call the
resource through ``/s/{system}/``). Every answer is audited first; if the
audit append fails the answer is 503, which nginx turns into 500: fail closed.

The front proxy must itself drop client-supplied identity headers and set
the ones above: see docs/nginx-forward-auth.conf. It should pass the host the
client addressed as ``X-Forwarded-Host`` (for the cross-site rule).
"""

from __future__ import annotations

import json
import time

from starlette.types import Receive, Scope, Send

from gateway.errors import AuditUnavailable, Forbidden, GovgateError, Unauthorized, problem_body
from gateway.idp.scopes import InsufficientScope
from gateway.proxy.admission import AuditDraft, audit_target
from gateway.proxy.assertion import PER_CALLER
from gateway.proxy.endpoint import Proxy, first_values, new_request_id
from gateway.proxy.path import BadPath
from gateway.storage import STORAGE_FAILURES, unavailable
from gateway.tables import SYSTEM_RE


class ShapingRequired(Forbidden):
    code = "shaping_required"
    title = "Call this resource through the gateway's proxy"



def _only(raw: list[tuple[bytes, bytes]], names: frozenset[bytes], *,
          fold: bool = False) -> str | None:
    """The one value the front proxy gave under any of ``names`` (lower case), or None.

    nginx sets ``X-Original-*``, Traefik and Caddy set ``X-Forwarded-*`` and pass the
    client's other headers along, so the spelling the front proxy did not set is the
    client's: two different values (in either spelling, or one header twice) cannot be
    told apart and are refused (BadPath, answered 403)."""
    found: str | None = None
    for k, v in raw:
        if v and k.lower() in names:
            value = v.decode("latin-1")
            if fold:
                value = value.upper()
            if found is not None and value != found:
                raise BadPath("the front proxy's request line is ambiguous")
            found = value
    return found


_URI = frozenset({b"x-original-uri", b"x-forwarded-uri"})
_METHOD = frozenset({b"x-original-method", b"x-forwarded-method"})
_SYSTEM = frozenset({b"x-govgate-system"})
# the host the client addressed, for the cross-site rule (Host is the gateway's own)
_HOST = frozenset({b"x-forwarded-host"})
# honoured by some upstream frameworks; nginx would forward it as the client sent it
_METHOD_OVERRIDE = frozenset({b"x-http-method-override", b"x-http-method",
                              b"x-method-override"})


class VerifyEndpoint:
    """``GET|HEAD /auth/verify`` as a bare ASGI app: the router's route for it (which
    answers other methods 405), and what the app dispatches to before Starlette's
    middleware and router, since every request behind nginx comes through here."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxy = scope["app"].state.gateway.proxy
        status, headers, body = await verify(proxy, scope, receive)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in headers.items()]
        # always a length: else the server frames an empty body as chunked
        raw.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body",
                    "body": body if scope["method"] != "HEAD" else b""})


verify_asgi = VerifyEndpoint()


async def verify(proxy: Proxy, scope: Scope, receive: Receive
                 ) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the forward-auth answer for the request in ``scope``."""
    started = time.perf_counter()
    client = scope.get("client")
    audit = AuditDraft(new_request_id(), client[0] if client else None)
    outcome, status = "deny", 403
    headers: dict[str, str] = {"X-Request-ID": audit.request_id, "Cache-Control": "no-store"}
    refusal: GovgateError | None = None
    try:
        raw_headers = scope["headers"]
        sent = first_values(raw_headers)
        uri = _only(raw_headers, _URI) or ""
        # no default: a front proxy that does not say the method would have every
        # request checked as a GET (fail closed, and the set-up error shows at once)
        method = _only(raw_headers, _METHOD, fold=True) or ""
        audit.extra.update(method=method, path=audit_target(uri))
        if not method:
            raise BadPath("the front proxy did not send the request's method")
        if _only(raw_headers, _METHOD_OVERRIDE, fold=True) not in (None, method):
            raise BadPath("a method-override header names another method")
        raw_path, _, query = uri.encode("latin-1", "replace").partition(b"?")
        system_hint = _only(raw_headers, _SYSTEM)
        if system_hint is not None:
            if not SYSTEM_RE.match(system_hint) or not raw_path.startswith(b"/"):
                raise BadPath("bad system or URI")
            if raw_path.startswith(b"/s/"):
                # a /s/{system}/ URI names its system: a hint beside it is a client's
                # (front proxies pass the client's headers along), which would have
                # another system's rules decide this one's request
                raise BadPath("X-Govgate-System beside a /s/{system}/ URI")
            raw_path = b"/s/" + system_hint.encode() + raw_path
        admission = await proxy.admitter.admit(
            scope, receive, method=method, raw_path=raw_path, query=query, headers=sent,
            host=_only(raw_headers, _HOST) or sent.get("host"), audit=audit)
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
        headers.update({
            "X-Govgate-Assertion": assertion,
            "X-Govgate-User": principal.username or "",
            "X-Govgate-Subject": principal.subject,
            "X-Govgate-Department": principal.department,
            "X-Govgate-Roles": ",".join(sorted(principal.roles)),
            "X-Govgate-Client": principal.client_id or "",
            # a delegation (委托): the colleague acting for the user
            **({"X-Govgate-Acting-User": principal.delegate}
               if getattr(principal, "delegate", None) else {}),
        })
        headers.update({k.decode("latin-1").title(): v.decode("latin-1")
                        for k, v in admission.request.extra.get("identity_headers", [])})
        outcome, status = "allow", 200
    except Unauthorized as exc:
        status, refusal = 401, exc
        headers["WWW-Authenticate"] = 'Bearer realm="govgate"'
        audit.reason = exc.reason or exc.description
    except GovgateError as exc:
        refusal = exc
        if isinstance(exc, InsufficientScope):
            headers["WWW-Authenticate"] = exc.www_authenticate
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
        proxy.metrics.forward_auth.labels("audit_failed").inc()
        return 503, {"X-Request-ID": audit.request_id}, b""
    proxy.metrics.forward_auth.labels(outcome if status != 401 else "unauthenticated").inc()
    if refusal is None:
        return status, headers, b""
    _, problem = problem_body(refusal)
    problem.update(status=status, request_id=audit.request_id)
    headers["Content-Type"] = "application/problem+json"
    return status, headers, json.dumps(problem, ensure_ascii=False).encode("utf-8")
