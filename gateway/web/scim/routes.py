"""``/scim/v2/...``: SCIM 2.0 (RFC 7644) for a registered client acting as itself.

Every request carries a bearer token of the ``client_credentials`` grant with the
``scim`` scope, of an active client; the client's department decides what it sees and
changes (``gateway.admin.scim``). Answers are ``application/scim+json``; every error,
refusals included, is a SCIM error body (RFC 7644 section 3.12), and refusals of the
credential are audited (``api_request``, deny) like the other APIs'."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from audit import AuditRecord
from catalogue.media import media_type
from gateway.admin.scim.context import ScimContext, scim_context
from gateway.admin.scim.errors import ScimError, not_found
from gateway.admin.scim.groups import ScimGroups
from gateway.admin.scim.listing import Query, parse_query, project
from gateway.admin.scim.schema import (
    ENTERPRISE_SCHEMA,
    LIST_SCHEMA,
    resource_types,
    schemas,
    service_provider_config,
)
from gateway.admin.scim.users import ScimUsers
from gateway.errors import (
    AuditUnavailable,
    TooManyRequests,
    Unauthorized,
    is_problem,
    problem_body,
)
from gateway.idp.dpop import refusal_headers
from gateway.idp.scopes import SCIM, InsufficientScope, require
from gateway.idp.sign_out import schedule_notices
from gateway.limits import unstorable
from gateway.request_id import new_request_id
from gateway.root import gateway_of

PREFIX = "/scim/v2"
SCIM_JSON = "application/scim+json"
JSON_TYPES = (SCIM_JSON, "application/json")
MAX_BODY = 1 << 20
ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]

Handler = Callable[[Request, ScimContext], Any]


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, media_type=SCIM_JSON, headers=headers)


def error(exc: ScimError, headers: dict[str, str] | None = None) -> Response:
    return answer(exc.body(), exc.status, headers)


async def _refused(request: Request, status: int, reason: str, client_id: str | None
                   ) -> None:
    services = gateway_of(request).services
    try:
        await services.audit.append(AuditRecord(
            event_type="api_request", outcome="deny", status=status, actor_client=client_id,
            source_ip=request.client.host if request.client else None, reason=reason,
            extra={"method": request.method, "path": request.url.path}))
    except Exception:
        raise AuditUnavailable("the request could not be audited") from None


async def _context(request: Request) -> ScimContext | Response:
    """The calling client, or the refusal to send (401, 403), audited."""
    gateway = gateway_of(request)
    try:
        principal = await gateway.authenticator.authenticate(request)
        if principal.via != "bearer" or not principal.subject.startswith("client:"):
            await _refused(request, 403, "SCIM takes a client's own token "
                                         "(client_credentials)", principal.client_id)
            return error(ScimError(403, "SCIM takes a client's own token (the "
                                        "client_credentials grant), not a person's"))
        require(principal, SCIM)
    except Unauthorized as exc:
        await _refused(request, 401, exc.reason or "invalid credentials", None)
        # a DPoP-bound token's refusal carries the DPoP challenge (RFC 9449 section 7.1)
        return error(ScimError(401, "invalid or missing bearer token"), refusal_headers(exc))
    except TooManyRequests as exc:  # a DPoP proof's write refused (Authenticator.spend_proof)
        await _refused(request, 429, "rate limit: DPoP proofs", exc.client_id)
        return error(ScimError(429, str(exc)), {"Retry-After": exc.retry_after})
    except InsufficientScope as exc:
        await _refused(request, 403, str(exc), principal.client_id)
        return error(ScimError(403, str(exc)), {"WWW-Authenticate": exc.www_authenticate})
    assert principal.client_id is not None
    ctx = await run_in_threadpool(
        scim_context, gateway, principal.client_id,
        base=gateway.provider.server.issuer + PREFIX,
        source_ip=request.client.host if request.client else None,
        request_id=request.headers.get("x-request-id") or new_request_id())
    if ctx is None:
        await _refused(request, 401, "client unknown or disabled", principal.client_id)
        return error(ScimError(401, "the client is unknown or disabled"),
                     {"WWW-Authenticate": 'Bearer realm="govgate"'})
    return ctx


async def body_of(request: Request) -> Any:
    """The JSON body, read up to ``MAX_BODY`` bytes (413 past that). A body declared as
    anything but JSON is 415 (RFC 7644 section 3.1): a form or text read as JSON would
    be a body its sender never meant as SCIM."""
    declared = media_type(request.headers.get("content-type"))[0]
    if declared and declared not in JSON_TYPES:
        raise ScimError(415, f"the body must be {SCIM_JSON} (or application/json), "
                             f"not {declared[:100]}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ScimError(413, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ScimError(400, "the body is not JSON", "invalidSyntax") from None
    if unstorable(body):
        raise ScimError(400, "the body holds a NUL character or an unpaired surrogate",
                        "invalidValue")
    return body


def endpoint(handlers: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    """``handlers`` by method behind the client's authentication; any other method is a
    405, any error a SCIM error body."""

    async def run(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            return error(ScimError(405, f"{request.method} is not supported here"),
                         {"Allow": ", ".join(sorted(handlers))})
        try:
            ctx = await _context(request)
            if isinstance(ctx, Response):
                return ctx
            result = await handler(request, ctx)
            for out in ctx.signed_out:
                schedule_notices(ctx.gateway.provider, out)
            return result  # type: ignore[no-any-return]
        except ScimError as exc:
            return error(exc)
        except Exception as exc:
            # the org's and the audit log's errors (a write that could not be recorded
            # is 503, as on the other APIs); anything else is a bug, and a 500
            if not is_problem(exc):
                raise
            status, body = problem_body(exc)
            return error(ScimError(status, str(body.get("detail") or body.get("title"))))

    return run


def _resource(status: int, resource: dict[str, Any], query: Query) -> Response:
    headers = {"ETag": resource["meta"]["version"],
               "Location": resource["meta"]["location"]}
    return answer(project(resource, query, (ENTERPRISE_SCHEMA,)), status, headers)


def _listing(found: dict[str, Any], query: Query) -> Response:
    found["Resources"] = [project(r, query, (ENTERPRISE_SCHEMA,)) for r in found["Resources"]]
    return answer(found)


def _if_match(request: Request) -> str | None:
    return request.headers.get("if-match")


# -- discovery --------------------------------------------------------------------------

async def _spc(request: Request, ctx: ScimContext) -> Response:
    return answer(service_provider_config(ctx.base))


def _published(request: Request, found: list[dict[str, Any]], what: str) -> Response:
    """The list of ``found``, or the one the path's id names."""
    wanted = request.path_params.get("id")
    if wanted is None:
        return answer({"schemas": [LIST_SCHEMA], "totalResults": len(found),
                       "startIndex": 1, "itemsPerPage": len(found), "Resources": found})
    for one in found:
        if one["id"] == wanted:
            return answer(one)
    return error(not_found(f"no {what} {wanted!r}"))


async def _schemas(request: Request, ctx: ScimContext) -> Response:
    codes = await run_in_threadpool(ctx.departments)
    return _published(request, schemas(ctx.base, codes), "schema")


async def _resource_types(request: Request, ctx: ScimContext) -> Response:
    return _published(request, resource_types(ctx.base), "resource type")


# -- users and groups -------------------------------------------------------------------

Kind = Callable[[ScimContext], ScimUsers | ScimGroups]


async def _search_body(request: Request) -> Query:
    body = await body_of(request)
    if not isinstance(body, dict):
        raise ScimError(400, "a SearchRequest is a JSON object", "invalidSyntax")
    return parse_query(body)


def _resource_handlers(kind: Kind) -> tuple[dict[str, Handler], dict[str, Handler],
                                             dict[str, Handler]]:
    """GET of the collection, POST .search, and GET/PUT/PATCH of one resource, for
    ``kind`` (``ScimUsers`` or ``ScimGroups``)."""

    async def listing(request: Request, ctx: ScimContext) -> Response:
        query = parse_query(request.query_params)
        return _listing(await run_in_threadpool(kind(ctx).search, query), query)

    async def search(request: Request, ctx: ScimContext) -> Response:
        query = await _search_body(request)
        return _listing(await run_in_threadpool(kind(ctx).search, query), query)

    async def get(request: Request, ctx: ScimContext) -> Response:
        found = await run_in_threadpool(kind(ctx).get, request.path_params["id"])
        return _resource(200, found, parse_query(request.query_params))

    def change(verb: str) -> Handler:
        async def run(request: Request, ctx: ScimContext) -> Response:
            body = await body_of(request)
            done = await run_in_threadpool(getattr(kind(ctx), verb),
                                           request.path_params["id"], body,
                                           _if_match(request))
            return _resource(200, done, parse_query(request.query_params))
        return run

    return ({"GET": listing}, {"POST": search},
            {"GET": get, "PUT": change("replace"), "PATCH": change("patch")})


async def _users_create(request: Request, ctx: ScimContext) -> Response:
    body = await body_of(request)
    created = await run_in_threadpool(ScimUsers(ctx).create, body)
    return _resource(201, created, parse_query(request.query_params))


async def _user_delete(request: Request, ctx: ScimContext) -> Response:
    await run_in_threadpool(ScimUsers(ctx).delete, request.path_params["id"],
                            _if_match(request))
    return Response(status_code=204)


async def _groups_fixed(request: Request, ctx: ScimContext) -> Response:
    what = f"{request.method} {request.url.path}"
    raise await run_in_threadpool(ScimGroups(ctx).refuse_fixed, what)


def _both(ctx: ScimContext, query: Query) -> dict[str, Any]:
    """RFC 7644 3.4.3, a search at the root: Users, then Groups, as one list. A filter
    naming what one resource type lacks matches nothing of that type."""
    pages: list[dict[str, Any]] = []
    refused: list[ScimError] = []
    start, count, before = query.start, query.count, 0
    for kind in (ScimUsers(ctx), ScimGroups(ctx)):
        try:
            page = kind.search(replace(query, start=max(1, start - before), count=count))
        except ScimError as exc:
            if exc.scim_type != "invalidFilter":
                raise
            refused.append(exc)
            continue
        pages.append(page)
        count -= page["itemsPerPage"] if start <= before + page["totalResults"] else 0
        before += page["totalResults"]
    if not pages:
        raise refused[0]
    resources = [r for page in pages for r in page["Resources"]][:query.count]
    return {"schemas": [LIST_SCHEMA], "totalResults": before, "startIndex": query.start,
            "itemsPerPage": len(resources), "Resources": resources}


async def _root_search(request: Request, ctx: ScimContext) -> Response:
    query = await _search_body(request)
    return _listing(await run_in_threadpool(_both, ctx, query), query)


async def _nothing(request: Request, ctx: ScimContext) -> Response:
    return error(not_found(f"nothing at {request.url.path}"))


async def _no_bulk(request: Request, ctx: ScimContext) -> Response:
    # RFC 7644 3.12: 501 for an operation the service provider does not support;
    # ServiceProviderConfig says bulk.supported false
    return error(ScimError(501, "bulk operations are not supported: send each "
                                "operation on its own"))


def scim_routes() -> list[BaseRoute]:
    """One mount: its own routes take every method (405 and 404 are SCIM errors too)."""
    users, users_search, user = _resource_handlers(ScimUsers)
    groups, groups_search, group = _resource_handlers(ScimGroups)
    paths: list[tuple[str, dict[str, Handler]]] = [
        ("/ServiceProviderConfig", {"GET": _spc}),
        ("/Schemas", {"GET": _schemas}),
        ("/Schemas/{id}", {"GET": _schemas}),
        ("/ResourceTypes", {"GET": _resource_types}),
        ("/ResourceTypes/{id}", {"GET": _resource_types}),
        ("/Users", {**users, "POST": _users_create}),
        ("/Users/.search", users_search),
        ("/Users/{id}", {**user, "DELETE": _user_delete}),
        ("/Groups", {**groups, "POST": _groups_fixed}),
        ("/Groups/.search", groups_search),
        ("/Groups/{id}", {**group, "DELETE": _groups_fixed}),
        ("/.search", {"POST": _root_search}),
        ("/Bulk", {m: _no_bulk for m in ALL}),
        ("/{path:path}", {m: _nothing for m in ALL}),
    ]
    return [Mount(PREFIX, routes=[Route(path, endpoint(handlers), methods=ALL)
                                  for path, handlers in paths])]
