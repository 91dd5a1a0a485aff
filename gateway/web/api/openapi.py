"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of ``/api/v1``, built from
the declarations the routes carry (``gateway.web.api.operation.ApiRoute``): every
operation of the application's router, nothing written a second time.

Public, as Keycloak publishes its OpenID discovery document and the description of
its admin REST API: the description holds the shape of the API only (paths,
parameters, schemas, the scopes and the token URL), none of the instance's data,
and a client needs it before it has a token. What each operation answers still
needs the token or session it names.

The security schemes: ``oauth2`` (bearer JWT access tokens, RFC 9068, from the
gateway's own token endpoint; a system's client-credentials token, or a person's
from the authorization-code flow; the gateway's scopes, ``gateway.idp.scopes``) and
``portalSession`` (the portal's session cookie, how the portal's own pages call the
API; a state-changing call must then say ``application/json``).
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gateway.idp.oauth2.provider import SESSION_COOKIE, cookie_name
from gateway.idp.scopes import (
    ACCOUNT,
    ADMIN,
    AUDIT_READ,
    CATALOGUE_READ,
    CATALOGUE_WRITE,
    SCIM,
    STATS_READ,
)
from gateway.root import gateway_of
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation
from gateway.web.api.schema_check import JSON

PATH = "/api/v1/openapi.json"
OAUTH2 = "oauth2"
SESSION = "portalSession"

SCOPES = {
    CATALOGUE_READ: "read the data catalogue, applications and grants (目录、申请、授权)",
    CATALOGUE_WRITE: "everything of catalogue:read, and save, publish, apply, decide, revoke",
    AUDIT_READ: "the audit log (auditors only)",
    ACCOUNT: "the signed-in person's own account",
    STATS_READ: "real use (实绩) figures",
    ADMIN: "the administrators' consoles (the caller's admin role decides which)",
    SCIM: "SCIM 2.0 provisioning at /scim/v2, outside this API (a client acting as itself)",
}

TAGS = [
    {"name": "catalogue", "description": "The data catalogue, applications and grants "
                                         "(共享目录、申请、授权)"},
    {"name": "steward", "description": "What data stewards and department heads decide"},
    {"name": "account", "description": "The signed-in person's own account"},
    {"name": "audit", "description": "The audit log, for auditors (审计管理员)"},
    {"name": "stats", "description": "Real use (实绩)"},
    {"name": "admin-sys", "description": "The system administrator's console (系统管理员)"},
    {"name": "admin-sec", "description": "The security administrator's console (安全管理员)"},
    {"name": "admin-audit", "description": "The audit administrator's console (审计管理员)"},
    {"name": "meta", "description": "This description"},
    {"name": "delegation", "description": "Delegation between people (委托)"},
    {"name": "keys", "description": "Public keys for the systems behind the gateway"},
]


def operations(routes: Iterable[BaseRoute]) -> list[Operation]:
    """The declarations of ``routes``, in their order."""
    return [r.operation for r in routes if isinstance(r, ApiRoute)]


def document(routes: Iterable[BaseRoute], issuer: str) -> JSON:
    """The OpenAPI 3.1 document of the operations among ``routes``, served at ``issuer``."""
    base = issuer.rstrip("/")
    paths: JSON = {}
    for op in operations(routes):
        paths.setdefault(op.path, {})[op.method.lower()] = op.describe(OAUTH2, SESSION)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "govgate API",
            "version": "1",
            "description": "The gateway's JSON API: the data catalogue and its "
                           "workflow, the auditors' log, real use, one's own account and "
                           "the three administrators' consoles. Every refusal is RFC 9457 "
                           "problem details (application/problem+json). Bodies are JSON "
                           "objects of at most 1 MiB, nested at most 16 deep; their "
                           "strings are UTF-8 text (RFC 8259 section 8.1) without NUL: a "
                           "NUL or an unpaired surrogate (\\ud800) anywhere is refused "
                           "with 400, whatever the schema. What an operation's schema cannot "
                           "say is written under 'Beyond this description'.",
        },
        "servers": [{"url": base}],
        "tags": TAGS,
        "paths": paths,
        "components": {"securitySchemes": {
            OAUTH2: {
                "type": "oauth2",
                "description": "A bearer JWT access token (RFC 9068) from the gateway's "
                               "token endpoint. A system asks with its client's "
                               "credentials; a person's token comes from the "
                               "authorization-code flow (with PKCE). A token without the "
                               "scope an operation names is refused with 403 and "
                               "WWW-Authenticate: Bearer error=\"insufficient_scope\".",
                "flows": {
                    "clientCredentials": {"tokenUrl": f"{base}/oauth2/token",
                                          "scopes": SCOPES},
                    "authorizationCode": {"authorizationUrl": f"{base}/oauth2/authorize",
                                          "tokenUrl": f"{base}/oauth2/token",
                                          "refreshUrl": f"{base}/oauth2/token",
                                          "scopes": SCOPES},
                },
            },
            SESSION: {
                "type": "apiKey", "in": "cookie", "name": cookie_name(SESSION_COOKIE, issuer),
                "description": "The portal's session (after signing in at /portal/login); "
                               "not scoped. A call that changes state must send "
                               "Content-Type: application/json.",
            },
        }},
    }


DESCRIPTION = Operation(
    "GET", PATH, "This description (OpenAPI 3.1)", "meta", Access(public=True),
    {200: Answer("The OpenAPI document", {"type": "object", "required": ["openapi", "paths"]},
                 headers={"Cache-Control": {"schema": {"type": "string"}}})},
    description="Public: it holds the API's shape, none of the instance's data.")


async def serve(request: Request) -> Response:
    doc = document(request.app.routes, gateway_of(request).services.settings.issuer)
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=300"})


def routes() -> list[BaseRoute]:
    return [DESCRIPTION.route(serve)]
