"""The data stewards' API, beside the catalogue's (``/api/v1/catalogue``).

    GET  /inbox                          what the caller decides, overdue first, with the
                                         time limit in working days (stewards, department
                                         heads: their department's; security admin: escalated)
    POST /applications/{id}/refer        {reason}: a steward hands a submitted application
                                         to the department head (负责人); notices follow
    GET  /grants/provided                grants on the caller's department's resources
                                         (security admin: all), each with its use
    GET  /calendar?year=                 the imported holiday calendar

Same rules as the portal pages (gateway/web/portal/steward_pages.py); an application's
timeline is ``history`` of ``GET /applications/{id}``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from catalogue import Workflow
from catalogue import store as catalogue_store
from gateway.errors import Forbidden
from gateway.referrals.rounds import channels
from gateway.root import gateway_of
from gateway.steward_views import decides, inbox, provided_grants, usage
from gateway.web.api import shapes as s
from gateway.web.api.catalogue import (
    ID_PARAM,
    OWN_READS,
    READ,
    WRITE,
    _int,
    _person,
    _text,
    declare,
    route,
)
from gateway.web.api.operation import Access, Answer, ApiRoute, Param
from gateway.web.catalogue_sight import deciding, sight
from texts import Text


def _workflow(request: Request) -> Workflow:
    return gateway_of(request).workflow


def _provided(request: Request, principal: Any) -> set[str] | None:
    """The codes of the resources of the caller's department (a security admin: of
    the departments within reach)."""
    seen = sight(request, principal)
    return {r.code for r in gateway_of(request).catalogue.resources() if seen(r.provider)}


def _deciding(principal: Any) -> None:
    if not decides(principal):
        raise Forbidden(Text("portal.not_deciding", "for data stewards, department heads "
                             "and the security admin"))


DECIDERS = Access(READ.scopes, roles="data stewards, department heads, the security admin")

INBOX = declare("GET", "/inbox", "What the caller decides, overdue first",
                Answer("Open applications with their time limit in working days",
                       s.wrapped("applications", s.array(s.INBOX_ENTRY))),
                access=DECIDERS, tag="steward")


async def get_inbox(request: Request, principal: Any) -> Any:
    _deciding(principal)
    now = gateway_of(request).services.clock()
    found = await run_in_threadpool(
        lambda: inbox(_workflow(request), principal, now, deciding(request, principal)))
    return {"applications": [e.to_dict() for e in found]}


REFER = declare("POST", "/applications/{id}/refer",
                "Refer a submitted application to the department head (负责人)",
                Answer("The application", s.wrapped("application", s.APPLICATION)),
                access=WRITE, tag="steward", path_params=(ID_PARAM,), refusals=(409,),
                body=s.REASON_BODY, body_required=True)


async def refer(request: Request, principal: Any) -> Any:
    body = await REFER.read_body(request)
    app_id = _int(request.path_params["id"], "id")
    wf = _workflow(request)
    settings = gateway_of(request).services.settings
    app = await run_in_threadpool(
        lambda: wf.refer(_person(request, principal), app_id, _text(body, "reason"),
                          channels(settings)))
    return {"application": app.to_dict()}


PROVIDED = declare(
    "GET", "/grants/provided", "Grants on the caller's department's resources, with use",
    Answer("Each grant with its state now and its use (calls, last use)",
           s.wrapped("grants", s.array({**s.GRANT_NOW, "properties": {
               **s.GRANT_NOW["properties"], "usage": s.USAGE}}))),
    access=DECIDERS, tag="steward")


async def grants_provided(request: Request, principal: Any) -> Any:
    _deciding(principal)
    services = gateway_of(request).services
    now = services.clock()

    def read() -> list[dict[str, Any]]:
        found = provided_grants(_workflow(request), _provided(request, principal))
        used = usage(services.engine, found, now)
        return [{**g.to_dict(), "state": g.state_at(now), "usage": used[g.id].to_dict()}
                for g in found]

    return {"grants": await run_in_threadpool(read)}


HOLIDAY = s.obj({"name": s.TEXT, "from": s.DATE, "to": s.DATE,
                 "workdays": s.array(s.DATE)}, ["name", "from"])
CALENDAR = declare(
    "GET", "/calendar", "The imported holiday calendar (working days for time limits)",
    Answer("The years imported", s.wrapped("years", s.array(s.obj(
        {"year": s.INT, "source": s.TEXT, "holidays": s.array(HOLIDAY)},
        ["year", "holidays"])))),
    tag="steward", query=(Param("year", {"type": "integer", "minimum": 1, "maximum": 9999},
                                "one year only"),))


async def get_calendar(request: Request, principal: Any) -> Any:
    wanted = CALENDAR.params(request).get("year")

    def read() -> list[dict[str, Any]]:
        with gateway_of(request).services.engine.connect() as conn:
            years = catalogue_store.load_calendar(conn)
        return [_jsonable(y.to_entry()) for y in years if wanted is None or y.year == wanted]

    return {"years": await run_in_threadpool(read)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else value


OWN_READS.update(op.path for op in (INBOX, PROVIDED))


def routes() -> list[ApiRoute]:
    return [
        route(INBOX, get_inbox),
        route(REFER, refer),
        route(PROVIDED, grants_provided),
        route(CALENDAR, get_calendar),
    ]
