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

from catalogue import Actor, Caller, CatalogueError, InvalidInput, NotAllowed
from catalogue.model import APPLICATION_STATES, LEVELS, SHARE_TYPES, STATUSES
from gateway.errors import Forbidden, ValidationError, is_problem
from gateway.idp.scopes import CATALOGUE_READ, CATALOGUE_WRITE, require
from gateway.proxy.catalogue import CatalogueShaping
from gateway.root import gateway_of
from gateway.web.api import shapes as s
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation, Param
from gateway.web.api.problems import problem_json
from gateway.web.catalogue_sight import actor_of, audit_refusal, sees_all, sight
from texts import Text

PREFIX = "/api/v1/catalogue"

Handler = Callable[[Request, Any], Awaitable[Any]]


def _problem(exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        exc = ValidationError(exc.description, problems=exc.problems)
    return problem_json(exc)


def _person(request: Request, principal: Any) -> Actor:
    if not principal.username:
        raise Forbidden(Text("catalogue.person_only",
                             "this needs a person's login, not a system's token"))
    return actor_of(request, principal)


READ = Access((CATALOGUE_WRITE, CATALOGUE_READ), roles="every authenticated caller")
WRITE = Access((CATALOGUE_WRITE,), person=True)


# reads of the caller's department's own work (applications, grants, a steward's
# inbox): never for a person's token through a client whose department does not reach
# theirs (gateway.idp.authenticator), which keeps catalogue:read for /allowed and the
# published catalogue only
OWN_READS: set[str] = set()
BEYOND_REACH = Text("catalogue.beyond_client_reach",
                    "a token issued to a client of a department that does not reach yours "
                    "does not read your department's applications and grants")


def declare(method: str, path: str, summary: str, answer: Answer, *, status: int = 200,
            access: Access = READ, tag: str = "catalogue", **more: Any) -> Operation:
    """An operation under ``/api/v1/catalogue`` (``path`` after it)."""
    return Operation(method, PREFIX + path, summary, tag, access, {status: answer}, **more)


def endpoint(op: Operation, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind authentication, the token's scope (``op.access``: any of its
    scopes, ``gateway.idp.scopes``) and the check of ``op``'s parameters and body."""
    accepted = op.access.scopes
    status = next(iter(op.answers))

    async def run(request: Request) -> Response:
        gateway = gateway_of(request)
        try:
            principal = await gateway.authenticator.authenticate(request)
            require(principal, *accepted)
            if op.path in OWN_READS and getattr(principal, "beyond_client_reach", False):
                raise NotAllowed(BEYOND_REACH)
            await op.check(request)
            result = await handler(request, principal)
        except Exception as exc:
            if isinstance(exc, NotAllowed):
                await run_in_threadpool(audit_refusal, request, principal, exc)
            if isinstance(exc, CatalogueError) or is_problem(exc):
                return _problem(exc)
            raise
        return JSONResponse(result, status_code=status)

    return run


def route(op: Operation, handler: Handler) -> ApiRoute:
    return op.route(endpoint(op, handler))


def _text(body: dict[str, Any], key: str) -> str:
    """An optional text field of a JSON body ("" when absent); a list or a number is
    refused rather than stored as its Python repr."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(Text("catalogue.field_text", "{field} must be a string",
                                   field=key))
    return value


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValidationError(Text("catalogue.field_number", "{field} must be a number",
                                   field=name)) from None


# -- resources -----------------------------------------------------------------------

LIST_RESOURCES = declare(
    "GET", "/resources", "Search the catalogue",
    Answer("The resources found", s.wrapped("resources", s.array(s.RESOURCE_ENTRY))),
    query=(Param("q", {"type": "string", "maxLength": 200}, "words of the name, summary "
                 "or an item"),
           Param("department", s.CODE, "the provider"),
           Param("share_type", {"type": "string", "enum": list(SHARE_TYPES)}),
           Param("item", {"type": "string", "maxLength": 64}, "an item's name or title"),
           Param("level", {"type": "integer", "enum": list(LEVELS)},
                 "resources holding an item of this level"),
           Param("status", {"type": "string", "enum": list(STATUSES)})))


async def list_resources(request: Request, principal: Any) -> Any:
    q = LIST_RESOURCES.params(request)
    found = await run_in_threadpool(
        gateway_of(request).catalogue.search, q=q.get("q"),
        department=q.get("department"), share_type=q.get("share_type"), item=q.get("item"),
        level=q.get("level"), status=q.get("status"))
    return {"resources": [r.to_entry() for r in found]}


CODE_PARAM = Param("code", s.CODE, "the resource's code")

GET_RESOURCE = declare("GET", "/resources/{code}", "One resource",
                       Answer("The resource", s.wrapped("resource", s.RESOURCE_ENTRY)),
                       path_params=(CODE_PARAM,))


async def get_resource(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    return {"resource": (await run_in_threadpool(cat.get, request.path_params["code"])
                         ).to_entry()}


SAVE_RESOURCE = declare(
    "POST", "/resources", "Create or update a resource (a new one is a draft)",
    Answer("The resource saved, and duplicate-collection warnings", s.RESOURCE_SAVED),
    access=WRITE, body=s.RESOURCE_ENTRY, body_required=True, refusals=(404, 409),
    description="The body is a resource entry of the state file's catalogue section. "
                "A data steward saves their department's resources.",
    rules="the provider or the system is unknown, a conditional resource names no "
          "conditions, a resource not shared names no basis, an item is named twice, or "
          "the route's path template is malformed")


async def save_resource(request: Request, principal: Any) -> Any:
    entry = await SAVE_RESOURCE.read_body(request)
    cat = gateway_of(request).catalogue
    saved, warnings = await run_in_threadpool(cat.save, _person(request, principal), entry)
    return {"resource": saved.to_entry(), "warnings": warnings}


PUBLISH = declare("POST", "/resources/{code}/publish", "Publish a resource",
                  Answer("The resource, and duplicate-collection warnings", s.RESOURCE_SAVED),
                  access=WRITE, path_params=(CODE_PARAM,), refusals=(409,))


async def publish(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    saved, warnings = await run_in_threadpool(cat.publish, _person(request, principal),
                                              request.path_params["code"])
    return {"resource": saved.to_entry(), "warnings": warnings}


RETIRE = declare("POST", "/resources/{code}/retire", "Retire a resource",
                 Answer("The resource", s.wrapped("resource", s.RESOURCE_ENTRY)),
                 access=WRITE, path_params=(CODE_PARAM,), refusals=(409,))


async def retire(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    saved, _ = await run_in_threadpool(cat.retire, _person(request, principal),
                                       request.path_params["code"])
    return {"resource": saved.to_entry()}


OVERLAP = s.obj({k: s.TEXT for k in (
    "item", "resource", "department", "source_item", "source_resource", "source_name",
    "source_department", "message")}, ["item", "resource", "department", "message"])

DUPLICATES = declare("GET", "/duplicates", "Items other departments already provide "
                     "(一数一源)", Answer("The overlaps", s.wrapped("overlaps",
                                                                 s.array(OVERLAP))))


async def duplicates(request: Request, principal: Any) -> Any:
    cat = gateway_of(request).catalogue
    found = await run_in_threadpool(cat.duplicates)
    return {"overlaps": [{**o.__dict__, "message": o.message()} for o in found]}


# -- applications --------------------------------------------------------------------

APPLICATIONS = s.wrapped("applications", s.array(s.APPLICATION))
ID_PARAM = Param("id", s.ID, "the application's number")

LIST_APPLICATIONS = declare(
    "GET", "/applications", "The applications of the caller's department",
    Answer("As consumer or as provider (the security admin: all)", APPLICATIONS),
    query=(Param("status", {"type": "string", "enum": list(APPLICATION_STATES)}),))


async def list_applications(request: Request, principal: Any) -> Any:
    wf = gateway_of(request).workflow
    status = LIST_APPLICATIONS.params(request).get("status")
    states = [status] if status else None
    if sees_all(principal):
        cat = gateway_of(request).catalogue

        def within() -> list[Any]:
            providers = {r.code: r.provider for r in cat.resources()}
            seen = sight(request, principal)
            return [a for a in wf.applications(status=states)
                    if seen(a.consumer, providers.get(a.resource))]

        found = await run_in_threadpool(within)
    else:
        dept = principal.department
        mine = await run_in_threadpool(lambda: wf.applications(status=states, consumer=dept))
        theirs = await run_in_threadpool(lambda: wf.applications(status=states, provider=dept))
        found = sorted({a.id: a for a in mine + theirs}.values(), key=lambda a: a.id)
    return {"applications": [a.to_dict() for a in found]}


CREATE_APPLICATION = declare(
    "POST", "/applications", "Apply for a resource (共享申请)",
    Answer("The application, submitted", s.wrapped("application", s.APPLICATION)),
    status=201, access=WRITE, refusals=(404, 409), body_required=True,
    body=s.obj({
        "resource": s.CODE,
        "items": s.array(s.ITEM_NAME, minItems=1),
        "purpose": s.text_of("purpose", required=True),
        "until": s.DATE,
        "basis": s.text_of("basis"),
        "from": s.NULLABLE_DATE,
        "client": {"type": ["string", "null"], "maxLength": 128},
    }, ["resource", "items", "purpose", "until"], closed=True),
    description="For the caller's own department, for shareable items of a published "
                "resource that is shared on conditions.",
    rules="an item is not a shareable item of the resource, or ``until`` is in the past "
          "or before ``from``")


async def create_application(request: Request, principal: Any) -> Any:
    body = await CREATE_APPLICATION.read_body(request)
    wf = gateway_of(request).workflow
    app = await run_in_threadpool(
        lambda: wf.apply(_person(request, principal), _text(body, "resource"), items=body["items"],
                         purpose=body["purpose"], until=body["until"],
                         basis=_text(body, "basis"), client_id=_text(body, "client") or None,
                         valid_from=body.get("from")))
    return {"application": app.to_dict()}


OVERDUE = declare("GET", "/applications/overdue", "Open applications past their time limit",
                  Answer("The provider's overdue applications (the security admin: all)",
                         APPLICATIONS))


async def overdue(request: Request, principal: Any) -> Any:
    wf = gateway_of(request).workflow
    provider = None if sees_all(principal) else principal.department
    found = await run_in_threadpool(lambda: wf.overdue(provider=provider))
    if provider is None:
        providers = {r.code: r.provider
                     for r in await run_in_threadpool(gateway_of(request).catalogue.resources)}
        seen = await run_in_threadpool(sight, request, principal)
        found = [a for a in found if seen(a.consumer, providers.get(a.resource))]
    return {"applications": [a.to_dict() for a in found]}


GET_APPLICATION = declare(
    "GET", "/applications/{id}", "One application with its timeline",
    Answer("The application (``history``: every step, its reason)",
           s.wrapped("application", s.APPLICATION)),
    path_params=(ID_PARAM,),
    access=Access(READ.scopes, roles="the consumer's and the provider's department, the "
                                     "security admin"))


async def get_application(request: Request, principal: Any) -> Any:
    wf = gateway_of(request).workflow
    app_id = _int(request.path_params["id"], "id")
    app = await run_in_threadpool(wf.get, app_id)
    res = await run_in_threadpool(gateway_of(request).catalogue.get, app.resource)
    if not (await run_in_threadpool(sight, request, principal))(app.consumer, res.provider):
        raise NotAllowed("not an application of your department")
    return {"application": app.to_dict()}


APPROVE = declare(
    "POST", "/applications/{id}/approve", "Approve an application (possibly narrowed)",
    Answer("The grant it created", s.wrapped("grant", s.GRANT)), status=201,
    access=WRITE, path_params=(ID_PARAM,), refusals=(409,),
    body=s.obj({"items": s.array(s.ITEM_NAME, minItems=1), "until": s.DATE,
                "note": s.text_of("note")}, closed=True),
    description="``items`` and ``until`` may only narrow what was applied for.",
    rules="the items or the period are wider than applied for, or ``until`` is in the past")


async def approve(request: Request, principal: Any) -> Any:
    body = await APPROVE.read_body(request)
    wf = gateway_of(request).workflow
    app_id = _int(request.path_params["id"], "id")
    items = body.get("items")
    grant = await run_in_threadpool(
        lambda: wf.approve(_person(request, principal), app_id, items=items,
                           until=body.get("until"), note=_text(body, "note")))
    return {"grant": grant.to_dict()}


def _decision(kind: str, summary: str) -> Operation:
    return declare("POST", f"/applications/{{id}}/{kind}", summary,
                   Answer("The application", s.wrapped("application", s.APPLICATION)),
                   access=WRITE, path_params=(ID_PARAM,), refusals=(409,),
                   body=s.REASON_BODY, body_required=True)


REJECT = _decision("reject", "Reject an application, with a reason")
ESCALATE = _decision("escalate", "Escalate a rejected application to the security admin "
                                 "(协商), with a reason")
CLOSE = _decision("close", "Close an escalated application (the security admin), with a "
                           "reason")


def _decide(op: Operation, kind: str) -> Handler:
    async def decide(request: Request, principal: Any) -> Any:
        body = await op.read_body(request)
        wf = gateway_of(request).workflow
        app_id = _int(request.path_params["id"], "id")
        method = getattr(wf, kind)
        app = await run_in_threadpool(
            lambda: method(_person(request, principal), app_id, _text(body, "reason")))
        return {"application": app.to_dict()}

    return decide


# -- grants --------------------------------------------------------------------------

LIST_GRANTS = declare(
    "GET", "/grants", "The grants of the caller's department",
    Answer("As consumer or as provider (the security admin: all), each with its state now",
           s.wrapped("grants", s.array(s.GRANT_NOW))),
    query=(Param("resource", s.CODE), Param("active", s.BOOL, "only those in force now")))


async def list_grants(request: Request, principal: Any) -> Any:
    services = gateway_of(request).services
    wf = gateway_of(request).workflow
    q = LIST_GRANTS.params(request)
    active = q.get("active", False)
    found = await run_in_threadpool(lambda: wf.grants(resource=q.get("resource"),
                                                      active_only=active))
    providers = {r.code: r.provider
                 for r in await run_in_threadpool(gateway_of(request).catalogue.resources)}
    seen = await run_in_threadpool(sight, request, principal)
    found = [g for g in found if seen(g.consumer, providers.get(g.resource))]
    now = services.clock()
    return {"grants": [{**g.to_dict(), "state": g.state_at(now)} for g in found]}


REVOKE = declare("POST", "/grants/{id}/revoke", "Revoke a grant, with a reason",
                 Answer("The grant", s.wrapped("grant", s.GRANT)), access=WRITE,
                 path_params=(Param("id", s.ID, "the grant's number"),), refusals=(409,),
                 body=s.REASON_BODY, body_required=True)


async def revoke(request: Request, principal: Any) -> Any:
    body = await REVOKE.read_body(request)
    wf = gateway_of(request).workflow
    grant_id = _int(request.path_params["id"], "id")
    grant = await run_in_threadpool(
        lambda: wf.revoke(_person(request, principal), grant_id, _text(body, "reason")))
    return {"grant": grant.to_dict()}


ALLOWED_ENTRY = s.obj({
    "resource": s.TEXT, "name": s.TEXT, "provider": s.TEXT, "system": s.TEXT,
    "method": s.TEXT, "path": s.TEXT, "share_type": s.TEXT,
    # withheld: why the proxy leaves out this encrypted item (no usable key), as its
    # proxy_request record says
    "items": s.array(s.obj({"name": s.TEXT, "title": s.TEXT, "mask": s.NULLABLE_TEXT,
                            "encrypt": s.BOOL, "withheld": s.TEXT},
                           ["name", "title", "mask", "encrypt"])),
    # the end of the grant's last day (China time), as an instant
    "until": s.NULLABLE_TIME, "grants": s.array(s.INT), "purpose": s.NULLABLE_TEXT,
    "reason": s.NULLABLE_TEXT}, ["resource", "system", "method", "path", "items"])

ALLOWED = declare(
    "GET", "/allowed", "What the caller may call now, and until when",
    Answer("The caller's department and client, the time, and each resource it may call",
           s.obj({"department": s.NULLABLE_TEXT, "client": s.NULLABLE_TEXT, "at": s.TIME,
                  "allowed": s.array(ALLOWED_ENTRY)},
                 ["department", "client", "at", "allowed"])))


async def allowed(request: Request, principal: Any) -> Any:
    services = gateway_of(request).services
    caller = Caller(principal.department or None, principal.client_id, principal.username,
                    principal.client_department)
    now = services.clock()
    found = await run_in_threadpool(gateway_of(request).catalogue.allowed, caller, now)
    if any(i["encrypt"] for entry in found for i in entry["items"]):
        # the proxy's own reading of the client's keys: an encrypted item it would leave
        # out is said to be, not promised
        shaping = CatalogueShaping(services.engine, services.keys)
        why = await run_in_threadpool(shaping.withholds_encrypted, caller)
        if why is not None:
            for entry in found:
                for i in entry["items"]:
                    if i["encrypt"]:
                        i["withheld"] = why
    return {"department": caller.department, "client": caller.client_id,
            "at": now.isoformat(), "allowed": found}


OWN_READS.update(op.path for op in (LIST_APPLICATIONS, OVERDUE, GET_APPLICATION, LIST_GRANTS))


def routes() -> list[ApiRoute]:
    return [
        route(LIST_RESOURCES, list_resources),
        route(SAVE_RESOURCE, save_resource),
        route(GET_RESOURCE, get_resource),
        route(PUBLISH, publish),
        route(RETIRE, retire),
        route(DUPLICATES, duplicates),
        route(LIST_APPLICATIONS, list_applications),
        route(CREATE_APPLICATION, create_application),
        route(OVERDUE, overdue),
        route(GET_APPLICATION, get_application),
        route(APPROVE, approve),
        route(REJECT, _decide(REJECT, "reject")),
        route(ESCALATE, _decide(ESCALATE, "escalate")),
        route(CLOSE, _decide(CLOSE, "close")),
        route(LIST_GRANTS, list_grants),
        route(REVOKE, revoke),
        route(ALLOWED, allowed),
    ]
