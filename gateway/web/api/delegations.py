"""``/api/v1/delegations`` (委托, docs/delegation.md): the portal's delegation pages as
an API, for a portal session or a person's bearer token with the ``account`` scope.

    GET  /api/v1/delegations                those the caller gave, received or decides
    POST /api/v1/delegations                {delegate, roles, systems, ends_at, reason,
                                            starts_at?}: A asks (201)
    POST /api/v1/delegations/{id}/approve   a department head of A's department
    POST /api/v1/delegations/{id}/reject    {note?}: the same
    POST /api/v1/delegations/{id}/revoke    A, a department head of it, a system admin

Refusals are problem+json (400 bad input, 403 not yours to decide, 404, 409 not in a
state for it); each is also an audited ``delegation_refused``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gateway.delegations import Delegations
from gateway.idp.scopes import ACCOUNT
from gateway.root import gateway_of
from gateway.web.api import shapes as s
from gateway.web.api.catalogue import route
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation, Param
from gateway.web.delegation_common import codes, held_systems, person, when

PREFIX = "/api/v1/delegations"
ACCESS = Access((ACCOUNT,), person=True, roles="every person; deciding: the department "
                                                "head (dept_head) of the delegator's "
                                                "department")
ID = Param("id", s.ID, "the delegation's number", required=True)
DELEGATION = s.obj({
    "id": s.INT, "delegator": s.TEXT, "delegate": s.TEXT, "department": s.TEXT,
    "roles": s.array(s.TEXT), "systems": s.array(s.TEXT), "starts_at": s.TIME,
    "ends_at": s.TIME, "reason": s.TEXT,
    "state": {"enum": ["requested", "approved", "rejected", "revoked", "expired", "ended"]},
    "live": s.BOOL, "requested_at": s.TIME, "decided_by": s.NULLABLE_TEXT,
    "decided_at": s.NULLABLE_TIME, "note": s.NULLABLE_TEXT, "revoked_by": s.NULLABLE_TEXT,
    "revoked_at": s.NULLABLE_TIME,
}, ["id", "delegator", "delegate", "state", "starts_at", "ends_at"])
ONE = Answer("The delegation", s.wrapped("delegation", DELEGATION))
TAG = "delegation"


def _op(method: str, path: str, summary: str, answer: Answer, status: int = 200,
        **more: Any) -> Operation:
    return Operation(method, PREFIX + path, summary, TAG, ACCESS, {status: answer}, **more)


LIST = _op("GET", "", "Delegations the caller gave, received or decides",
           Answer("Newest first", s.wrapped("delegations", s.array(DELEGATION))))
REQUEST = _op(
    "POST", "", "Ask to let a colleague act for you (委托)", ONE, status=201,
    refusals=(400,), body_required=True,
    body=s.obj({"delegate": s.CODE, "roles": s.array(s.CODE), "systems": s.array(s.CODE),
                "starts_at": {"type": "string"}, "ends_at": {"type": "string"},
                "reason": {"type": "string", "maxLength": 500}},
               ["delegate", "ends_at", "reason"], closed=True),
    rules="the delegate is an active colleague of your department; roles you hold (never "
          "sysadmin, secadmin, auditor) and systems you may open, at least one; the end "
          "after the start and now, at most delegation_max_days (30) later; dates are "
          "2026-12-31 (China time) or a date-time with its offset")
APPROVE = _op("POST", "/{id}/approve", "Approve a requested delegation", ONE,
              path_params=(ID,), refusals=(403, 409))
REJECT = _op("POST", "/{id}/reject", "Reject a requested delegation", ONE,
             path_params=(ID,), refusals=(403, 409),
             body=s.obj({"note": {"type": "string", "maxLength": 500}}, closed=True))
REVOKE = _op("POST", "/{id}/revoke", "End a delegation now", ONE, path_params=(ID,),
             refusals=(403, 409))


async def list_delegations(request: Request, principal: Any) -> Any:
    gw = gateway_of(request)

    def read() -> list[dict[str, Any]]:
        now = gw.services.clock()
        return [d.to_dict(now) for d in Delegations(gw.services).visible_to(
            person(gw, principal))]

    return {"delegations": await run_in_threadpool(read)}


async def request_delegation(request: Request, principal: Any) -> Any:
    body = await REQUEST.read_body(request)
    gw = gateway_of(request)

    def ask() -> dict[str, Any]:
        me = person(gw, principal)
        now = gw.services.clock()
        start = body.get("starts_at")
        made = Delegations(gw.services).request(
            me, delegate=str(body["delegate"]), roles=codes(body.get("roles"), "roles"),
            systems=codes(body.get("systems"), "systems"),
            starts_at=when(start, "starts_at", end=False, now=now) if start else None,
            ends_at=when(str(body["ends_at"]), "ends_at", end=True, now=now),
            reason=str(body["reason"]), held_systems=lambda: held_systems(gw, me), via="api")
        return made.to_dict(now)

    return {"delegation": await run_in_threadpool(ask)}


def _step(op: Operation, step: str) -> Any:
    async def handler(request: Request, principal: Any) -> Any:
        body = await op.read_body(request) if op.body is not None else {}
        gw = gateway_of(request)
        number = int(request.path_params["id"])

        def act() -> dict[str, Any]:
            me = person(gw, principal)
            book = Delegations(gw.services)
            if step == "approve":
                done = book.approve(me, number, via="api")
            elif step == "reject":
                done = book.reject(me, number, str(body.get("note") or ""), via="api")
            else:
                done = book.revoke(me, number, via="api")
            return done.to_dict(gw.services.clock())

        return {"delegation": await run_in_threadpool(act)}

    return handler


def routes() -> list[ApiRoute]:
    return [route(LIST, list_delegations), route(REQUEST, request_delegation),
            route(APPROVE, _step(APPROVE, "approve")), route(REJECT, _step(REJECT, "reject")),
            route(REVOKE, _step(REVOKE, "revoke"))]
