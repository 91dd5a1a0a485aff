"""Break-glass (紧急授权) under ``/api/v1/break-glass`` (docs/break-glass.md):

    GET  /api/v1/break-glass?state=          one's own; a security or audit
                                             administrator sees everyone's
    POST /api/v1/break-glass                 {system, resource?, reason, minutes} → 201
    GET  /api/v1/break-glass/review?closed=  the audit administrator's review queue,
                                             each with every audit record of its id
    GET  /api/v1/break-glass/{id}
    POST /api/v1/break-glass/{id}/approve    a security administrator (not the requester)
    POST /api/v1/break-glass/{id}/end        {reason}: a security administrator
    POST /api/v1/break-glass/{id}/review     {finding}: the audit administrator closes it

Who: a person (a portal session, or a bearer token with the ``account`` or ``admin``
scope; approving, ending and reviewing need ``admin`` on a token). Roles are the
desk's rule (``gateway.break_glass.desk``); every step and every refusal is audited.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.break_glass.desk import (
    MAX_FINDING,
    MAX_REASON,
    Actor,
    BreakGlassDesk,
    refusal_audited,
)
from gateway.errors import AuditUnavailable, Forbidden, is_problem
from gateway.idp.authenticator import Principal
from gateway.idp.scopes import ACCOUNT, ADMIN, require
from gateway.request_id import new_request_id
from gateway.root import gateway_of
from gateway.web.api import shapes as s
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation, Param
from gateway.web.api.problems import problem_json
from texts import Text

PREFIX = "/api/v1/break-glass"
TAG = "break-glass"
ANYONE = Access((ACCOUNT, ADMIN), person=True,
                roles="a person, for their own; security and audit administrators: all")
SEC = Access((ADMIN,), person=True, roles="a security administrator other than the "
             "requester (安全管理员)")
AUD = Access((ADMIN,), person=True, roles="the audit administrator (审计管理员)")
STATES = ["pending", "active", "expired", "ended", "refused", "lapsed"]
_ID = re.compile(r"^bg_[0-9a-f]{16}\Z")
ID = Param("id", {"type": "string", "pattern": "^bg_[0-9a-f]{16}$"}, "the break-glass id")

BG: dict[str, Any] = s.obj({
    "id": s.TEXT, "username": s.TEXT, "department": s.NULLABLE_TEXT, "system": s.TEXT,
    "resource": s.NULLABLE_TEXT, "reason": s.TEXT, "duration_seconds": s.INT,
    "state": {"enum": STATES}, "requested_at": s.TIME,
    "approvals": s.array(s.obj({"approver": s.TEXT, "at": s.TIME}, ["approver", "at"])),
    "activated_at": s.NULLABLE_TIME, "ends_at": s.NULLABLE_TIME,
    "ended_at": s.NULLABLE_TIME, "ended_by": s.NULLABLE_TEXT, "end_reason": s.NULLABLE_TEXT,
    "first_used_at": s.NULLABLE_TIME, "in_review": s.BOOL, "reviewed_at": s.NULLABLE_TIME,
    "reviewed_by": s.NULLABLE_TEXT, "finding": s.NULLABLE_TEXT,
}, ["id", "username", "system", "reason", "state", "approvals", "in_review"])
RECORD = s.obj({"id": s.INT, "time": s.TEXT, "event_type": s.TEXT, "outcome": s.TEXT,
                "status": {"type": ["integer", "null"]}, "actor": s.NULLABLE_TEXT,
                "system": s.NULLABLE_TEXT, "resource": s.NULLABLE_TEXT,
                "reason": s.NULLABLE_TEXT, "use": s.BOOL},
               ["id", "time", "event_type", "outcome", "use"])
REVIEWED = {**BG, "properties": {**BG["properties"], "records": s.array(RECORD),
                                 "uses": s.INT}}

Handler = Callable[[Request, BreakGlassDesk, Actor], Awaitable[Any]]


def _op(method: str, path: str, summary: str, answer: Answer, access: Access,
        status: int = 200, **more: Any) -> Operation:
    return Operation(method, PREFIX + path, summary, TAG, access, {status: answer}, **more)


def _actor(request: Request, principal: Principal | None) -> Actor:
    """The caller as the desk and its audit records name them (no one yet: before the
    credentials were read)."""
    return Actor(principal.username or "" if principal else "",
                 principal.department or None if principal else None,
                 frozenset(principal.roles or ()) if principal else frozenset(),
                 source_ip=request.client.host if request.client else None, via="api",
                 request_id=request.headers.get("x-request-id") or new_request_id())


def _allowed(principal: Principal, *, admin: bool) -> None:
    """Forbidden unless a person acts for themselves with the operation's scope: a
    system's token has no person, and neither a delegated token (a system acting for
    the person) nor a delegation (委托: someone acting for them) may take a step whose
    point is who takes it (dual control, the reviewer)."""
    if admin:
        require(principal, ADMIN)
    else:
        require(principal, ACCOUNT, ADMIN)
    if not principal.username:
        raise Forbidden(Text("admin.person_only",
                             "administration needs a person's sign-in, not a system's token"))
    if principal.actor is not None or principal.delegate is not None:
        raise Forbidden(Text("bg.in_person", "break-glass is asked for, approved and "
                             "reviewed in person: not with a delegated token or a "
                             "delegation"))


def endpoint(op: Operation, handler: Handler, step: str, *, admin: bool = False
             ) -> Callable[[Request], Awaitable[Response]]:
    """The operation's handler behind the caller's check; every refusal is audited
    (``step`` its reason), the ones the desk never saw included: no or bad credentials,
    a missing scope, a parameter or body the schema refuses."""
    status = next(iter(op.answers))

    async def run(request: Request) -> Response:
        desk = gateway_of(request).break_glass
        principal: Principal | None = None
        try:
            principal = await gateway_of(request).authenticator.authenticate(request)
            _allowed(principal, admin=admin)
            await op.check(request)
            result = await handler(request, desk, _actor(request, principal))
        except Exception as exc:
            if not is_problem(exc):
                raise
            if not refusal_audited(exc):
                bg_id = request.path_params.get("id")
                try:
                    await run_in_threadpool(
                        desk.refused, _actor(request, principal), step,
                        bg_id if isinstance(bg_id, str) and _ID.match(bg_id) else None, exc)
                except AuditUnavailable as down:
                    return problem_json(down)
            return problem_json(exc)
        return JSONResponse(result, status_code=status)

    return run


LIST = _op("GET", "", "Break-glass accesses: one's own, or all for the administrators",
           Answer("Newest first", s.wrapped("break_glass", s.array(BG))), ANYONE,
           query=(Param("state", {"enum": STATES}),))


async def listing(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    state = LIST.params(request).get("state")
    admin = bool(actor.roles & {"secadmin", "auditor"})
    return {"break_glass": await run_in_threadpool(
        lambda: desk.listing(username=None if admin else actor.username, state=state,
                             within=actor if admin else None))}


REQUEST = _op(
    "POST", "", "Request a break-glass for oneself (two security administrators approve)",
    Answer("The request, pending", s.wrapped("break_glass", BG)), ANYONE, status=201,
    refusals=(404, 409), body_required=True,
    body=s.obj({"system": s.CODE, "resource": {"type": ["string", "null"], **{
        k: v for k, v in s.CODE.items() if k != "type"}},
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON,
                   "pattern": s.NOT_BLANK},
        "minutes": {"type": "integer", "minimum": 1, "maximum": 24 * 60}},
        ["system", "reason", "minutes"], closed=True),
    rules="the duration is longer than the operator's maximum (break_glass_max_hours, "
          "default 4 h); the system or the resource on it does not exist")


async def request_(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    body = await REQUEST.read_body(request)
    return {"break_glass": await run_in_threadpool(
        lambda: desk.request(actor, system=body["system"], resource=body.get("resource"),
                             reason=body["reason"], duration_seconds=body["minutes"] * 60))}


QUEUE = _op("GET", "/review", "The audit administrator's break-glass review queue",
            Answer("Each break-glass used or ended, with every audit record of its id",
                   s.wrapped("queue", s.array(REVIEWED))), AUD,
            query=(Param("closed", s.BOOL, "the reviewed ones instead (read-only)"),))


async def queue(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    closed = bool(QUEUE.params(request).get("closed", False))
    return {"queue": await run_in_threadpool(lambda: desk.queue(actor, closed=closed))}


GET = _op("GET", "/{id}", "One break-glass", Answer("It", s.wrapped("break_glass", BG)),
          ANYONE, path_params=(ID,))


async def get(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    return {"break_glass": await run_in_threadpool(
        desk.visible_to, actor, request.path_params["id"])}


APPROVE = _op("POST", "/{id}/approve", "Approve (the second different security "
              "administrator activates it)", Answer("It", s.wrapped("break_glass", BG)), SEC,
              path_params=(ID,), refusals=(409,))


async def approve(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    return {"break_glass": await run_in_threadpool(desk.approve, actor,
                                                   request.path_params["id"])}


END = _op("POST", "/{id}/end", "End it early (or refuse a pending one)",
          Answer("It", s.wrapped("break_glass", BG)), SEC, path_params=(ID,),
          refusals=(409,), body_required=True,
          body=s.obj({"reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON,
                                 "pattern": s.NOT_BLANK}}, ["reason"], closed=True))


async def end(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    body = await END.read_body(request)
    return {"break_glass": await run_in_threadpool(desk.end, actor, request.path_params["id"],
                                                   body["reason"])}


CLOSE = _op("POST", "/{id}/review", "Close its review with a written finding",
            Answer("It, reviewed", s.wrapped("break_glass", BG)), AUD, path_params=(ID,),
            refusals=(409,), body_required=True,
            body=s.obj({"finding": {"type": "string", "minLength": 1,
                                    "maxLength": MAX_FINDING, "pattern": s.NOT_BLANK}},
                       ["finding"], closed=True))


async def close(request: Request, desk: BreakGlassDesk, actor: Actor) -> Any:
    body = await CLOSE.read_body(request)
    return {"break_glass": await run_in_threadpool(desk.close, actor,
                                                   request.path_params["id"],
                                                   body["finding"])}


def break_glass_routes() -> list[ApiRoute]:
    # /review before /{id}: the literal path wins
    return [LIST.route(endpoint(LIST, listing, "break_glass_list")),
            REQUEST.route(endpoint(REQUEST, request_, "break_glass_requested")),
            QUEUE.route(endpoint(QUEUE, queue, "break_glass_queue", admin=True)),
            GET.route(endpoint(GET, get, "break_glass_read")),
            APPROVE.route(endpoint(APPROVE, approve, "break_glass_approved", admin=True)),
            END.route(endpoint(END, end, "break_glass_ended", admin=True)),
            CLOSE.route(endpoint(CLOSE, close, "break_glass_reviewed", admin=True))]
