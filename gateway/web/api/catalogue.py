"""The catalogue's HTTP API under ``/api/v1/catalogue``.

    GET  /resources?q=&department=&share_type=&item=&level=&status=   search
    POST /resources                      create or update (state-file entry; new = draft)
    GET  /resources/{code}
    POST /resources/{code}/publish       → the resource and duplicate-collection warnings
    POST /resources/{code}/retire
    GET  /duplicates                     items other departments already provide
    GET  /applications?status=           the caller's department's (as consumer or provider)
    POST /applications                   {resource, items, purpose, until, basis?, from?, client?}
    GET  /applications/overdue
    GET  /applications/{id}              with its timeline (``history``: every step, its reason)
    POST /applications/{id}/approve      {items?, until?, note?} (narrowing) → the grant
    POST /applications/{id}/reject       {reason}
    POST /applications/{id}/escalate     {reason}
    POST /applications/{id}/close        {reason} (security admin, escalated only)
    GET  /grants?resource=&active=       the caller's department's (as consumer or provider)
    POST /grants/{id}/revoke             {reason}
    GET  /allowed                        what the caller may call now, and until when

Every call needs a bearer token or portal session (401 otherwise). Reading the
catalogue is open to every authenticated principal; a provider's data steward
saves, publishes, approves, rejects and revokes for their department; the
security admin (安全管理员) sees every department, decides escalated
applications and revokes any grant; the applicant's department escalates.
Each transition is audited by the catalogue's ``record`` callable. The data
stewards' endpoints (inbox, refer, grants with their use, calendar) are in
gateway/web/api/steward.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from catalogue import Actor, Caller, CatalogueError, InvalidInput
from gateway.errors import Forbidden, ValidationError, is_problem
from gateway.idp.scopes import CATALOGUE_READ, CATALOGUE_WRITE, require
from gateway.root import gateway_of
from gateway.web.api.body import read_object
from gateway.web.api.problems import problem_json

PREFIX = "/api/v1/catalogue"
SECADMIN = "secadmin"

Handler = Callable[[Request, Any], Awaitable[Any]]


def _problem(exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        exc = ValidationError(exc.description, problems=exc.problems)
    return problem_json(exc)


def _actor(principal: Any) -> Actor:
    name = principal.username or f"client:{principal.client_id}"
    return Actor(name, principal.department or None, frozenset(principal.roles or ()),
                 client=principal.client_id)


def _person(principal: Any) -> Actor:
    if not principal.username:
        raise Forbidden("this needs a person's login, not a system's token")
    return _actor(principal)


def endpoint(handler: Handler, status: int = 200, *, write: bool = False
             ) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind authentication and the token's scope: ``catalogue:write`` for
    a ``write``, else ``catalogue:read`` or ``catalogue:write`` (``gateway.idp.scopes``)."""
    accepted = (CATALOGUE_WRITE,) if write else (CATALOGUE_WRITE, CATALOGUE_READ)

    async def run(request: Request) -> Response:
        gateway = gateway_of(request)
        try:
            principal = await gateway.authenticator.authenticate(request)
            require(principal, *accepted)
            result = await handler(request, principal)
        except Exception as exc:
            if isinstance(exc, CatalogueError) or is_problem(exc):
                return _problem(exc)
            raise
        return JSONResponse(result, status_code=status)

    return run


def _text(body: dict[str, Any], key: str) -> str:
    """An optional text field of a JSON body ("" when absent); a list or a number is
    refused rather than stored as its Python repr."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{key} must be a string")
    return value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError(f"{name} must be a number") from None


def _sees_all(principal: Any) -> bool:
    return SECADMIN in set(principal.roles or ())


# -- resources -----------------------------------------------------------------------


async def list_resources(request: Request, principal: Any) -> Any:
    q = request.query_params
    level = _int(q["level"], "level") if q.get("level") else None
    found = await run_in_threadpool(
        gateway_of(request).catalogue.search, q=q.get("q"),
        department=q.get("department"), share_type=q.get("share_type"), item=q.get("item"),
        level=level, status=q.get("status"))
    return {"resources": [r.to_entry() for r in found]}


async def get_resource(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    return {"resource": (await run_in_threadpool(cat.get, request.path_params["code"])
                         ).to_entry()}


async def save_resource(request: Request, principal: Any) -> Any:
    entry = await read_object(request)
    cat = gateway_of(request).catalogue
    saved, warnings = await run_in_threadpool(cat.save, _person(principal), entry)
    return {"resource": saved.to_entry(), "warnings": warnings}


async def publish(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    saved, warnings = await run_in_threadpool(cat.publish, _person(principal),
                                              request.path_params["code"])
    return {"resource": saved.to_entry(), "warnings": warnings}


async def retire(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    saved, _ = await run_in_threadpool(cat.retire, _person(principal),
                                       request.path_params["code"])
    return {"resource": saved.to_entry()}


async def duplicates(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    found = await run_in_threadpool(cat.duplicates)
    return {"overlaps": [{**o.__dict__, "message": o.message()} for o in found]}


# -- applications --------------------------------------------------------------------


async def list_applications(request: Request, principal: Any) -> Any:
    wf = gateway_of(request).workflow
    status = request.query_params.get("status")
    states = [status] if status else None
    if _sees_all(principal):
        found = await run_in_threadpool(lambda: wf.applications(status=states))
    else:
        dept = principal.department
        mine = await run_in_threadpool(lambda: wf.applications(status=states, consumer=dept))
        theirs = await run_in_threadpool(lambda: wf.applications(status=states, provider=dept))
        found = sorted({a.id: a for a in mine + theirs}.values(), key=lambda a: a.id)
    return {"applications": [a.to_dict() for a in found]}


async def create_application(request: Request, principal: Any) -> Any:
    body = await read_object(request)
    missing = [k for k in ("resource", "items", "purpose", "until") if k not in body]
    if missing:
        raise ValidationError("application incomplete",
                              problems=[f"missing {k!r}" for k in missing])
    if not isinstance(body["items"], list):
        raise ValidationError("items must be a list of item names")
    wf = gateway_of(request).workflow
    app = await run_in_threadpool(
        lambda: wf.apply(_person(principal), _text(body, "resource"), items=body["items"],
                         purpose=body["purpose"], until=body["until"],
                         basis=_text(body, "basis"), client_id=_text(body, "client") or None,
                         valid_from=body.get("from")))
    return {"application": app.to_dict()}


async def overdue(request: Request, principal: Any) -> Any:
    wf = gateway_of(request).workflow
    provider = None if _sees_all(principal) else principal.department
    found = await run_in_threadpool(lambda: wf.overdue(provider=provider))
    return {"applications": [a.to_dict() for a in found]}


async def get_application(request: Request, principal: Any) -> Any:
    wf = gateway_of(request).workflow
    app_id = _int(request.path_params["id"], "id")
    app = await run_in_threadpool(wf.get, app_id)
    if not _sees_all(principal) and principal.department != app.consumer:
        res = await run_in_threadpool(gateway_of(request).catalogue.get,
                                      app.resource)
        if principal.department != res.provider:
            raise Forbidden("not an application of your department")
    return {"application": app.to_dict()}


async def approve(request: Request, principal: Any) -> Any:
    body = await read_object(request)
    wf = gateway_of(request).workflow
    app_id = _int(request.path_params["id"], "id")
    items = body.get("items")
    if items is not None and not isinstance(items, list):
        raise ValidationError("items must be a list of item names")
    grant = await run_in_threadpool(
        lambda: wf.approve(_person(principal), app_id, items=items, until=body.get("until"),
                           note=_text(body, "note")))
    return {"grant": grant.to_dict()}


def _decide(kind: str) -> Handler:
    async def decide(request: Request, principal: Any) -> Any:
        body = await read_object(request)
        wf = gateway_of(request).workflow
        app_id = _int(request.path_params["id"], "id")
        method = getattr(wf, kind)
        app = await run_in_threadpool(
            lambda: method(_person(principal), app_id, _text(body, "reason")))
        return {"application": app.to_dict()}

    return decide


# -- grants --------------------------------------------------------------------------


async def list_grants(request: Request, principal: Any) -> Any:
    services = gateway_of(request).services
    wf = gateway_of(request).workflow
    q = request.query_params
    active = q.get("active", "").lower() in ("1", "true", "yes")
    found = await run_in_threadpool(lambda: wf.grants(resource=q.get("resource"),
                                                      active_only=active))
    if not _sees_all(principal):
        provided = {r.code for r in await run_in_threadpool(gateway_of(request).catalogue.resources)
                    if r.provider == principal.department}
        found = [g for g in found
                 if g.consumer == principal.department or g.resource in provided]
    now = services.clock()
    return {"grants": [{**g.to_dict(), "state": g.state_at(now)} for g in found]}


async def revoke(request: Request, principal: Any) -> Any:
    body = await read_object(request)
    wf = gateway_of(request).workflow
    grant_id = _int(request.path_params["id"], "id")
    grant = await run_in_threadpool(
        lambda: wf.revoke(_person(principal), grant_id, _text(body, "reason")))
    return {"grant": grant.to_dict()}


async def allowed(request: Request, principal: Any) -> Any:
    services = gateway_of(request).services
    caller = Caller(principal.department or None, principal.client_id, principal.username)
    now = services.clock()
    found = await run_in_threadpool(gateway_of(request).catalogue.allowed, caller, now)
    return {"department": caller.department, "client": caller.client_id,
            "at": now.isoformat(), "allowed": found}


def routes() -> list[Route]:
    p = PREFIX

    def get(path: str, handler: Handler) -> Route:
        return Route(f"{p}{path}", endpoint(handler), methods=["GET"])

    def post(path: str, handler: Handler, status: int = 200) -> Route:
        return Route(f"{p}{path}", endpoint(handler, status, write=True), methods=["POST"])

    return [
        get("/resources", list_resources),
        post("/resources", save_resource),
        get("/resources/{code}", get_resource),
        post("/resources/{code}/publish", publish),
        post("/resources/{code}/retire", retire),
        get("/duplicates", duplicates),
        get("/applications", list_applications),
        post("/applications", create_application, 201),
        get("/applications/overdue", overdue),
        get("/applications/{id}", get_application),
        post("/applications/{id}/approve", approve, 201),
        post("/applications/{id}/reject", _decide("reject")),
        post("/applications/{id}/escalate", _decide("escalate")),
        post("/applications/{id}/close", _decide("close")),
        get("/grants", list_grants),
        post("/grants/{id}/revoke", revoke),
        get("/allowed", allowed),
    ]
