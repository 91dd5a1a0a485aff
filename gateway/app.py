"""``create_app``: the one place that builds the HTTP application."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from audit.record import AuditRecord
from gateway.errors import AuditUnavailable, GovgateError, problem_body
from gateway.idp.login_throttle import LoginThrottle
from gateway.proxy.admission import audit_target
from gateway.services import Services
from gateway.web.api.media import PREFIX as API_PREFIX
from gateway.web.api.media import refuse_non_json
from gateway.web.portal.error_page import browser_answer
from gateway.web.request_id import new_request_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("govgate")


def problem_response(exc: Exception) -> JSONResponse:
    status, body = problem_body(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="govgate"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _audited_refusal(services: Services, scope: Scope, refused: GovgateError
                           ) -> GovgateError:
    """``refused`` once its audit record (the target as sent) is written, else the
    503 that says the audit log is unavailable: what is refused is audited too."""
    client = scope.get("client")
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string", b"")
    try:
        if services.audit is None:
            raise AuditUnavailable("audit log not configured")
        await services.audit.append(AuditRecord(
            event_type="api_request", outcome="deny", status=refused.status,
            source_ip=client[0] if client else None, reason=refused.description,
            extra={"method": scope["method"], "code": refused.code,
                   "path": audit_target(raw + b"?" + query if query else raw)}))
    except Exception:
        return AuditUnavailable("the request could not be audited")
    return refused


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    services: Services = request.app.state.services
    try:
        with services.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        return JSONResponse(
            {
                "type": "urn:govgate:error:storage",
                "title": "Storage unavailable",
                "status": 503,
                "detail": "database unreachable",
            },
            status_code=503,
            media_type=PROBLEM_JSON,
        )
    return JSONResponse({"status": "ready"})


async def _jwks(request: Request) -> Response:
    """The public keys of every use (token, assertion, audit), for relying parties,
    upstream systems and offline audit verification."""
    keys = request.app.state.services.keys
    return JSONResponse(keys.jwks(), headers=keys.jwks_response_headers())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/portal/", "/s/")):
        # a browser navigating to a portal address that is not there gets a page
        page = browser_answer(request.scope, exc.status_code, request_id=new_request_id(),
                              resource=None,
                              default_lang=request.app.state.services.settings.lang)
        if page is not None:
            status, headers, html = page
            return Response(html, status_code=status, headers={
                k.decode("latin-1"): v.decode("latin-1") for k, v in headers})
    body = {
        "type": "about:blank",
        "title": exc.detail if isinstance(exc.detail, str) else "error",
        "status": exc.status_code,
    }
    return JSONResponse(
        body,
        status_code=exc.status_code,
        media_type=PROBLEM_JSON,
        headers=getattr(exc, "headers", None),
    )


async def _our_error(request: Request, exc: Exception) -> Response:
    return problem_response(exc)


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Route("/readyz", _readyz),
        Route("/.well-known/jwks.json", _jwks),
    ]
    from gateway.metrics import metrics_endpoint
    from gateway.proxy.endpoint import ProxyEndpoint
    from gateway.proxy.forward_auth import verify_asgi

    out += [
        Route("/s/{system}/{path:path}", ProxyEndpoint()),
        Route("/auth/verify", verify_asgi, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint),
    ]
    from gateway.idp.oauth2.routes import oauth2_routes
    from gateway.web.portal.routes import portal_routes

    out += oauth2_routes() + portal_routes()
    from gateway.idp.cas.routes import cas_routes
    from gateway.idp.saml.routes import saml_routes

    out += cas_routes() + saml_routes()
    from gateway.web.api.catalogue import routes as catalogue_routes

    out += catalogue_routes()
    from gateway.web.api.audit import routes as audit_routes

    out += audit_routes()
    return out


async def _maintain(services: Services) -> None:
    """The periodic jobs of a running gateway, every ``maintenance_interval_seconds``
    (60 s): scheduled key rotation and promotion, and purging expired codes, refresh
    tokens, deny-list rows and sign-in throttle rows."""
    rotate_after = services.settings.key_rotate_days * 86400
    while True:
        await asyncio.sleep(services.settings.maintenance_interval_seconds)
        try:
            await asyncio.to_thread(services.keys.maintain, rotate_after)
            provider = services.extra.get("idp_provider")
            if provider is not None:
                await asyncio.to_thread(provider.store.purge)
            await asyncio.to_thread(LoginThrottle.from_services(services).purge)
            cas = services.extra.get("cas")
            if cas is not None:  # kept as long as a session lasts, for single logout
                await asyncio.to_thread(
                    cas.store.purge, services.settings.session_absolute_timeout + 3600)
            saml = services.extra.get("saml")
            if saml is not None:  # likewise
                await asyncio.to_thread(
                    saml.store.purge, services.settings.session_absolute_timeout + 3600)
        except Exception:  # a failed round is retried next round; requests go on
            log.exception("maintenance round failed")


class GatewayApp(Starlette):
    """Starlette, with two things in front of it.

    ``/s/...`` goes straight to the proxy, and ``GET|HEAD /auth/verify`` to
    forward-auth: both answer every outcome themselves (audited), so the error
    middleware and the router would only add work to the busiest paths. A
    state-changing ``/api/...`` request that does not declare JSON is answered 415
    here, before any route (``gateway.web.api.media``: CSRF from same-site pages).

    With ``trusted_proxies`` set, a request whose peer is one of them has its client
    address and scheme taken from ``X-Forwarded-For`` / ``X-Forwarded-Proto``
    (uvicorn's ProxyHeadersMiddleware: the right-most address not itself trusted),
    so audit records, lockouts and rate limits name the real client. From any other
    peer those headers are ignored (and the proxy drops them)."""

    _front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self._front
        if front is None:
            front = self._front = self._build_front()
        await front(scope, receive, send)

    def _build_front(self) -> ASGIApp:
        services = getattr(self.state, "services", None)
        trusted = list(services.settings.trusted_proxies) if services is not None else []

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                path = scope["path"]
                if path.startswith("/s/"):
                    from gateway.proxy.endpoint import get_proxy

                    scope["app"] = self
                    await get_proxy(self.state.services)(scope, receive, send)
                    return
                if path == "/auth/verify" and scope["method"] in ("GET", "HEAD"):
                    from gateway.proxy.forward_auth import verify_asgi

                    scope["app"] = self
                    await verify_asgi(scope, receive, send)
                    return
                if path.startswith(API_PREFIX):
                    refused = refuse_non_json(scope)
                    if refused is not None:
                        await problem_response(
                            await _audited_refusal(self.state.services, scope, refused)
                        )(scope, receive, send)
                        return
            await Starlette.__call__(self, scope, receive, send)

        if not trusted:
            return dispatch
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        return cast(ASGIApp, ProxyHeadersMiddleware(
            dispatch, trusted_hosts=trusted))  # type: ignore[arg-type]


class LiteralRouter(Router):
    """Starlette's router with one dict lookup before its linear scan: a route with a
    fixed path that fully matches (path and method) is taken at once. Anything else
    (patterns, a method the first route of that path does not take, slashes to
    redirect) goes through the scan unchanged, so no outcome differs; the token and
    introspection endpoints just stop waiting behind every portal and API pattern."""

    def __init__(self, routes: list[BaseRoute], **kwargs: Any) -> None:
        super().__init__(routes, **kwargs)
        self.literal: dict[str, Route] = {}
        for route in routes:
            if isinstance(route, Route) and "{" not in route.path:
                self.literal.setdefault(route.path, route)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            route = self.literal.get(scope["path"])
            if route is not None:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


def create_app(services: Services, *, freeze_heap: bool = False) -> Starlette:
    """The gateway application over already-opened ``services``.

    ``freeze_heap`` (the servers set it; tests do not): once started, move every
    object alive into the collector's permanent generation (``gc.freeze``), so full
    collections stop re-scanning the modules, tables and keys loaded at start-up.
    Measured on the proxy: p99 latency 90 ms → 35 ms, throughput +8%."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        if services.audit is not None:
            await services.audit.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
        maintenance = asyncio.create_task(_maintain(services), name="govgate-maintenance")
        try:
            yield {}
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            from gateway.proxy.endpoint import close_proxy
            from gateway.proxy.policies import close_policies

            await close_proxy(services)
            close_policies(services)
            if services.audit is not None:
                await services.audit.close()

    from gateway.errors import GovgateError

    app = GatewayApp(
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, GovgateError: _our_error},
    )
    app.router = LiteralRouter(routes(), lifespan=lifespan)
    app.state.services = services
    from gateway.idp.cas.routes import cas_server
    from gateway.idp.saml.routes import saml_idp

    # built now, not on first use: their single logout hooks every session end (once
    # per services, however many apps are made over them)
    app.state.cas = cas_server(services)
    app.state.saml = saml_idp(services)
    from gateway.idp.authenticator import Authenticator

    services.authenticate = Authenticator(services).authenticate  # type: ignore[attr-defined]
    return app


def app_from_environment() -> Starlette:
    """The application of one worker process under ``govgate serve --workers N``:
    settings from the environment the worker inherited, its own services and its
    own audit chain."""
    import os

    from gateway.services import open_services
    from gateway.settings import load_settings

    return create_app(open_services(load_settings(os.environ), writer="gateway"),
                      freeze_heap=True)
