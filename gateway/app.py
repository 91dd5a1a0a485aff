"""``create_app``: the one place that builds the HTTP application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.errors import problem_body
from gateway.services import Services

PROBLEM_JSON = "application/problem+json"


def problem_response(exc: Exception) -> JSONResponse:
    status, body = problem_body(exc)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="govgate"'
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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
    from gateway.forward_auth import verify_endpoint
    from gateway.metrics import metrics_endpoint
    from gateway.proxy import ProxyEndpoint

    out += [
        Route("/s/{system}/{path:path}", ProxyEndpoint()),
        Route("/auth/verify", verify_endpoint, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint),
    ]
    from gateway.oauth2.routes import oauth2_routes
    from gateway.portal.routes import portal_routes

    out += oauth2_routes() + portal_routes()
    from gateway.api.catalogue import routes as catalogue_routes

    out += catalogue_routes()
    return out


def create_app(services: Services) -> Starlette:
    """The gateway application over already-opened ``services``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {}

    from gateway.errors import GovgateError

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, GovgateError: _our_error},
    )
    app.state.services = services
    from gateway.auth import Authenticator

    services.authenticate = Authenticator(services).authenticate  # type: ignore[attr-defined]
    return app
