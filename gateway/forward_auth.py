"""``GET /auth/verify``: forward authentication for nginx ``auth_request``, and the
same contract Traefik ``forwardAuth`` and Caddy ``forward_auth`` use.

The front proxy sends the client's credentials (``Authorization``, ``Cookie``)
and tells which request it is checking:

    X-Original-URI / X-Forwarded-Uri        the request target (path and query)
    X-Original-Method / X-Forwarded-Method  the method
    X-Govgate-System (optional)             the system code when the front proxy serves
                                            it at its own root; else the URI must be
                                            /s/{system}/...

The answer: 200 with ``X-Govgate-Assertion`` (audience = the system),
``X-Govgate-User``, ``X-Govgate-Department``, ``X-Govgate-Roles``,
``X-Govgate-Client`` and ``X-Request-ID`` for the front proxy to pass on;
401 (with ``WWW-Authenticate``) when there is no valid credential; 403 for
everything else that is not allowed, ambiguous paths included (nginx turns
any other status into a 500). Every answer is audited first; if the audit
append fails the answer is 503, which nginx turns into 500: fail closed.

The front proxy must itself drop client-supplied identity headers and set
the ones above: see docs/nginx-forward-auth.conf.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Receive, Scope, Send

from gateway.errors import GovgateError, Unauthorized
from gateway.proxy import (
    AccessDenied,
    ProxyRequest,
    UnknownSystem,
    first_values,
    get_proxy,
    new_request_id,
)
from gateway.proxy_path import SYSTEM_RE, BadPath, parse


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
# honoured by some upstream frameworks; nginx would forward it as the client sent it
_METHOD_OVERRIDE = frozenset({b"x-http-method-override", b"x-http-method",
                              b"x-method-override"})


class VerifyEndpoint:
    """``GET|HEAD /auth/verify`` as a bare ASGI app: the router's route for it (which
    answers other methods 405), and what the app dispatches to before Starlette's
    middleware and router, since every request behind nginx comes through here."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, headers = await verify(scope["app"].state.services, scope, receive)
        raw = [(k.lower().encode("latin-1"), v.encode("latin-1"))
               for k, v in headers.items()]
        raw.append((b"content-length", b"0"))  # else the server frames an empty chunked body
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": b""})


verify_asgi = VerifyEndpoint()


async def verify(services: Any, scope: Scope, receive: Receive) -> tuple[int, dict[str, str]]:
    """Status and headers of the forward-auth answer for the request in ``scope``."""
    proxy = get_proxy(services)
    started = time.perf_counter()
    request_id = new_request_id()
    client = scope.get("client")
    client_ip = client[0] if client else None
    audit: dict[str, Any] = {"request_id": request_id, "source_ip": client_ip, "extra": {}}
    outcome, status = "deny", 403
    headers: dict[str, str] = {"X-Request-ID": request_id, "Cache-Control": "no-store"}
    try:
        raw_headers = scope["headers"]
        sent = first_values(raw_headers)
        uri = _only(raw_headers, _URI) or ""
        # no default: a front proxy that does not say the method would have every
        # request checked as a GET (fail closed, and the set-up error shows at once)
        method = _only(raw_headers, _METHOD, fold=True) or ""
        audit["extra"].update(method=method, uri=uri[:500])
        if not method:
            raise BadPath("the front proxy did not send the request's method")
        if _only(raw_headers, _METHOD_OVERRIDE, fold=True) not in (None, method):
            raise BadPath("a method-override header names another method")
        raw_path, _, query = uri.encode("latin-1", "replace").partition(b"?")
        system_hint = _only(raw_headers, _SYSTEM)
        if system_hint is not None:
            if not SYSTEM_RE.match(system_hint) or not raw_path.startswith(b"/"):
                raise BadPath("bad system or URI")
            raw_path = b"/s/" + system_hint.encode() + raw_path
        target = parse(raw_path, query)
        system = proxy.systems.get(target.system)
        if system is None:
            raise UnknownSystem("no such system")
        audit["system"] = system.code
        audit["extra"]["path"] = target.object
        principal = await proxy.principal(scope, receive, sent)
        audit.update(actor_user=principal.username, actor_client=principal.client_id,
                     department=principal.department)
        req = ProxyRequest(request_id, method, target, system, principal, client_ip, sent)
        decision = await proxy.decide(req)
        audit["reason"] = decision.reason
        audit["extra"].update(rule=decision.rule,
                              line_id=decision.line.id if decision.line else None)
        if not decision.allowed:
            raise AccessDenied("access denied")
        headers.update({
            "X-Govgate-Assertion": proxy.signer.mint(
                principal, issuer=services.settings.issuer, system=system.code,
                request_id=request_id, now=services.clock(),
                lifetime=proxy.config.assertion_lifetime),
            "X-Govgate-User": principal.username or "",
            "X-Govgate-Subject": principal.subject,
            "X-Govgate-Department": principal.department,
            "X-Govgate-Roles": ",".join(sorted(principal.roles)),
            "X-Govgate-Client": principal.client_id or "",
        })
        outcome, status = "allow", 200
    except Unauthorized as exc:
        status = 401
        headers["WWW-Authenticate"] = 'Bearer realm="govgate"'
        audit["reason"] = getattr(exc, "reason", None) or exc.description
    except GovgateError as exc:
        audit.setdefault("reason", exc.description)
    try:
        from audit.record import AuditRecord

        if services.audit is None:
            raise RuntimeError("audit log not configured")
        await services.audit.append(AuditRecord(
            event_type="forward_auth", outcome=outcome, status=status,
            latency_ms=int((time.perf_counter() - started) * 1000),
            **{k: v for k, v in audit.items() if k != "extra"}, extra=audit["extra"],
        ))
    except Exception:
        proxy.metrics.forward_auth.labels("audit_failed").inc()
        return 503, {"X-Request-ID": request_id}
    proxy.metrics.forward_auth.labels(outcome if status != 401 else "unauthenticated").inc()
    return status, headers
