"""``create_app``: the one place that builds the HTTP application."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from audit.partitions import ensure_partitions
from audit.record import AuditRecord
from gateway import referrals
from gateway.admin.scim.errors import ScimError
from gateway.audit_shipping import last_round, ship_forever
from gateway.directory import schedule as directory_schedule
from gateway.errors import AuditUnavailable, GovgateError
from gateway.idp.dpop import FORWARDED_HOST_KEY
from gateway.idp.oauth2.acting_ends import watch as watch_delegation_ends
from gateway.memory import return_large_blocks
from gateway.metrics import metrics_endpoint
from gateway.proxy.admission import audit_target
from gateway.proxy.endpoint import ProxyEndpoint
from gateway.proxy.forward_auth import PEER_KEY, VerifyEndpoint
from gateway.referrals import security_mail
from gateway.request_id import new_request_id
from gateway.root import Gateway, Seams, build_gateway, gateway_of
from gateway.services import Services, open_services
from gateway.settings import load_settings
from gateway.web.api.account import routes as account_routes
from gateway.web.api.admin import routes as admin_routes
from gateway.web.api.admin_common import api_lang, scope_lang
from gateway.web.api.audit import routes as audit_routes
from gateway.web.api.break_glass import break_glass_routes
from gateway.web.api.catalogue import routes as catalogue_routes
from gateway.web.api.delegations import routes as delegation_routes
from gateway.web.api.media import PREFIX as API_PREFIX
from gateway.web.api.media import refuse_non_json
from gateway.web.api.openapi import routes as openapi_routes
from gateway.web.api.problems import LANGUAGE_TAGS, PROBLEM_JSON, problem_json
from gateway.web.api.stats import routes as stats_routes
from gateway.web.api.steward import routes as steward_routes
from gateway.web.body_limits import BodyCutShort, declared_too_large, limit_body
from gateway.web.cas import cas_routes
from gateway.web.jwks import jwks_routes
from gateway.web.methods import allowed_methods
from gateway.web.nul_guard import NulRefused, guard_form_body, nul_in_target
from gateway.web.oauth2 import oauth2_routes
from gateway.web.oauth2_token import PATH as TOKEN_PATH
from gateway.web.oauth2_token import TokenEndpoint
from gateway.web.portal.account import routes as portal_account_routes
from gateway.web.portal.error_page import browser_answer
from gateway.web.portal.front_refused import front_answer
from gateway.web.portal.passkey_pages import routes as passkey_routes
from gateway.web.portal.routes import portal_routes
from gateway.web.saml import saml_routes
from gateway.web.scim.routes import PREFIX as SCIM_PREFIX
from gateway.web.scim.routes import error as scim_error
from gateway.web.scim.routes import scim_routes
from gateway.web.session_cookie import drop_ambiguous_session
from gateway.web.unavailable import HANDLED, readyz, storage_unavailable
from keys import KeyStateError
from texts import Text

log = logging.getLogger("govgate")
# forward-auth, a refused browser answered with the portal's page or sign-in where the
# front proxy hands the answer on (gateway.web.portal.front_refused.front_answer)
VERIFY = VerifyEndpoint(page=front_answer)


async def _audited_refusal(services: Services, scope: Scope, refused: GovgateError
                           ) -> GovgateError:
    """``refused`` once its audit record (the target as sent) is written, else the
    503 that says the audit log is unavailable: what is refused is audited too."""
    client = scope.get("client")
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    query = scope.get("query_string", b"")
    try:
        await services.audit.append(AuditRecord(
            event_type="api_request", outcome="deny", status=refused.status,
            source_ip=client[0] if client else None, reason=refused.description,
            extra={"method": scope["method"], "code": refused.code,
                   "path": audit_target(raw + b"?" + query if query else raw)}))
    except Exception:
        return AuditUnavailable("the request could not be audited")
    return refused


def _audited_body(services: Services, scope: Scope, receive: Receive) -> Receive:
    """``receive``, auditing a refusal its guards raise while the body is read (too
    large, too slow, a NUL): what is refused is audited, also once the handler began."""
    async def audited() -> Message:
        try:
            return await receive()
        except GovgateError as exc:
            raise await _audited_refusal(services, scope, exc) from None
    return audited


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


#: the Chinese of the routing's own refusals under /api (an address or a
#: method it does not have); their English is Starlette's phrase
ROUTING_TITLES_ZH = {404: "未找到", 405: "不允许的请求方法"}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(("/portal/", "/s/")):
        # a browser navigating to a portal address that is not there gets a page
        page = browser_answer(request.scope, exc.status_code, request_id=new_request_id(),
                              resource=None,
                              default_lang=gateway_of(request).services.settings.lang)
        if page is not None:
            status, headers, html = page
            return Response(html, status_code=status, headers={
                k.decode("latin-1"): v.decode("latin-1") for k, v in headers})
    body = {
        "type": "about:blank",
        "title": exc.detail if isinstance(exc.detail, str) else "error",
        "status": exc.status_code,
    }
    extra: dict[str, str] = dict(getattr(exc, "headers", None) or {})
    if request.url.path.startswith(API_PREFIX):  # its problems speak both
        lang = api_lang(request)
        if lang == "zh":
            body["title"] = ROUTING_TITLES_ZH.get(exc.status_code, body["title"])
        extra["Content-Language"] = LANGUAGE_TAGS[lang]
    if exc.status_code == 405:  # the path's methods, not only those of its first route
        extra["Allow"] = ", ".join(allowed_methods(request.app.routes, request.scope))
    return JSONResponse(
        body,
        status_code=exc.status_code,
        media_type=PROBLEM_JSON,
        headers=extra,
    )


async def _our_error(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith(API_PREFIX):
        return problem_json(exc, api_lang(request))
    return problem_json(exc)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client that went away before its body's end (Starlette's ClientDisconnect, from
    any handler that reads a body): nothing was acted on and nobody reads the answer;
    without this it reached the server's error middleware, a 500 and a traceback."""
    return problem_json(BodyCutShort(Text(
        "request.body_cut_short", "the client went away before the end of the body")))


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", _healthz),
        Route("/readyz", readyz),
        *jwks_routes(),
        Route("/s/{system}/{path:path}", ProxyEndpoint()),
        Route("/auth/verify", VERIFY, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint),
        *oauth2_routes(),
        *portal_routes([*portal_account_routes(), *passkey_routes()]),
        *cas_routes(),
        *saml_routes(),
        *steward_routes(),
        *catalogue_routes(),
        *audit_routes(),
        *account_routes(),
        *stats_routes(),
        *admin_routes(),
        *openapi_routes(),
        *scim_routes(),
        *break_glass_routes(),
        *delegation_routes(),
    ]


async def _maintain(gateway: Gateway) -> None:
    """The periodic jobs of a running gateway, every ``maintenance_interval_seconds``
    (60 s): scheduled key rotation and promotion, and purging expired codes, refresh
    tokens, deny-list rows and sign-in throttle rows, the audit records' month
    partitions ahead (PostgreSQL, audit.partitions); then the referral round
    (gateway.referrals: overdue applications to the department head, their notices)."""
    services = gateway.services
    rotate_after = services.settings.key_rotate_days * 86400
    while True:
        await asyncio.sleep(services.settings.maintenance_interval_seconds)
        try:
            await asyncio.to_thread(services.keys.maintain, rotate_after)
            await asyncio.to_thread(gateway.provider.store.purge)
            await asyncio.to_thread(gateway.provider.server.acting.purge)  # 委托 bindings
            await asyncio.to_thread(gateway.throttle.purge)
            # kept as long as a session lasts, for single logout
            await asyncio.to_thread(
                gateway.cas.store.purge, services.settings.session_absolute_timeout + 3600)
            await asyncio.to_thread(  # likewise
                gateway.saml.store.purge, services.settings.session_absolute_timeout + 3600)
            await asyncio.to_thread(ensure_partitions, services.engine,  # PostgreSQL only
                                    int(services.clock().timestamp() * 1000))
        except Exception:  # a failed round is retried next round; requests go on
            log.exception("maintenance round failed")
        await referrals.maintain(gateway)  # overdue applications; logs its own failures
        try:  # break-glass notices: an expiry's, and any whose write failed
            await asyncio.to_thread(gateway.break_glass.settle_notices)
        except Exception:
            log.exception("break-glass notice round failed")
        await security_mail.maintain(gateway)  # the owners' security notices, if set
        await directory_schedule.maintain(gateway)  # the scheduled directory sync, if due


class GatewayApp(Starlette):
    """Starlette, with two things in front of it.

    ``/s/...`` goes straight to the proxy, and ``GET|HEAD /auth/verify`` to
    forward-auth: both answer every outcome themselves (audited), so the error
    middleware and the router would only add work to the busiest paths.
    ``/oauth2/token``, after the guards below, goes to ``gateway.web.oauth2_token``,
    which answers client credentials itself and hands the rest to Starlette. A
    state-changing ``/api/...`` request that does not declare JSON is answered 415
    here, before any route (``gateway.web.api.media``: CSRF from same-site pages), a
    NUL in the path, query or form body of any other request 400
    (``gateway.web.nul_guard``: PostgreSQL refuses it in any text), and a body over
    2 MiB 413 or one that stops arriving 408 (``gateway.web.body_limits``). On every
    route, a request naming the session cookie twice is signed out
    (``gateway.web.session_cookie``: a cookie tossed by a sibling site).

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
        gateway: Gateway = self.state.gateway
        trusted = list(gateway.services.settings.trusted_proxies)
        body_timeout = gateway.services.settings.body_timeout_seconds
        proxy = gateway.proxy
        token = TokenEndpoint(gateway.provider, functools.partial(Starlette.__call__, self))
        session_name = gateway.provider.session_cookie

        async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                drop_ambiguous_session(scope, session_name)
                path = scope["path"]
                if path.startswith("/s/"):
                    scope["app"] = self
                    await proxy(scope, receive, send)
                    return
                if path == "/auth/verify" and scope["method"] in ("GET", "HEAD"):
                    scope["app"] = self
                    await VERIFY(scope, receive, send)
                    return
                refused: GovgateError | None = NulRefused() if nul_in_target(scope) else None
                if refused is None and path.startswith(API_PREFIX):
                    refused = refuse_non_json(scope)
                refused = refused or declared_too_large(scope)
                if refused is not None:
                    refusal = await _audited_refusal(gateway.services, scope, refused)
                    # SCIM clients read SCIM's error body (RFC 7644 3.12), not RFC 9457's
                    answer = (scim_error(ScimError(refusal.status, refusal.description))
                              if path.startswith(SCIM_PREFIX) else problem_json(
                                  refusal, scope_lang(scope, gateway.services.settings.lang)
                                  if path.startswith(API_PREFIX) else None))
                    await answer(scope, receive, send)
                    return
                receive = _audited_body(gateway.services, scope, guard_form_body(
                    scope, limit_body(receive, body_timeout)))
                if path == TOKEN_PATH:  # client credentials past Starlette; the rest to it
                    scope["app"] = self
                    await token(scope, receive, send)
                    return
            await Starlette.__call__(self, scope, receive, send)

        if not trusted:
            return dispatch
        middleware = ProxyHeadersMiddleware(dispatch, trusted_hosts=trusted)  # type: ignore[arg-type]
        behind = cast(ASGIApp, middleware)

        async def keep_peer(scope: Scope, receive: Receive, send: Send) -> None:
            # forward-auth decides by the connection's peer, which the middleware is
            # about to replace with X-Forwarded-For's address (a client could name any)
            peer = scope.get("client")
            scope[PEER_KEY] = peer
            if peer and peer[0] in middleware.trusted_hosts:
                # the host the client addressed, as the front proxy says (a DPoP
                # proof's htu names it: gateway.idp.dpop.request_target); the first of
                # a chain's list is the client's
                forwarded = next((v for k, v in scope.get("headers") or ()
                                  if k == b"x-forwarded-host"), None)
                if forwarded is not None:
                    scope[FORWARDED_HOST_KEY] = \
                        forwarded.decode("latin-1").partition(",")[0].strip()
            await behind(scope, receive, send)

        return keep_peer


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


def create_app(over: Services | Gateway, *, seams: Seams | None = None,
               freeze_heap: bool = False) -> Starlette:
    """The gateway application over already-opened services (its
    :class:`~gateway.root.Gateway` built here; ``seams`` replace parts of it) or
    over a gateway already built (tests that act on it beside the app).

    ``freeze_heap`` (the servers set it; tests do not): once started, move every
    object alive into the collector's permanent generation (``gc.freeze``), so full
    collections stop re-scanning the modules, tables and keys loaded at start-up.
    Measured on the proxy: p99 latency 90 ms → 35 ms, throughput +8%. Large freed
    blocks go back to the system from then on (``gateway.memory``): resident memory
    stays flat after bursts of sign-ins."""
    gateway = over if isinstance(over, Gateway) else build_gateway(over, browser_seams(seams))
    services = gateway.services

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        await services.audit.start()
        if freeze_heap:
            gc.collect()
            gc.freeze()
            return_large_blocks()
        maintenance = asyncio.create_task(_maintain(gateway), name="govgate-maintenance")
        shipping = asyncio.create_task(ship_forever(services), name="govgate-audit-shipping")
        ends = asyncio.create_task(watch_delegation_ends(gateway.provider),
                                   name="govgate-delegation-ends")
        try:
            yield {}
        finally:
            for task in (maintenance, shipping, ends):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.aclose()
            await services.audit.close()
            await last_round(services)

    app = GatewayApp(
        lifespan=lifespan,
        # KeyStateError: no key may sign (none active, or an SM2 key under the standard
        # profile): a problem naming the fix, not a 500
        exception_handlers={HTTPException: _http_error, GovgateError: _our_error,
                            ClientDisconnect: _client_gone,
                            KeyStateError: _our_error,
                            **dict.fromkeys(HANDLED, storage_unavailable)},
    )
    app.router = LiteralRouter(routes(), lifespan=lifespan)
    app.state.gateway = gateway
    return app


def browser_seams(seams: Seams | None = None) -> Seams:
    """``seams`` with the portal's error page for browsers on the proxy (unless set)."""
    seams = seams or Seams()
    if seams.browser_page is None:
        seams = dataclasses.replace(seams, browser_page=browser_answer)
    return seams


def app_from_environment() -> Starlette:
    """The application of one worker process under ``govgate serve --workers N``:
    settings from the environment the worker inherited, its own services and its
    own audit chain."""
    return create_app(open_services(load_settings(os.environ), writer="gateway"),
                      freeze_heap=True)
