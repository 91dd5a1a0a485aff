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
from starlette.routing import Route

from catalogue import Workflow
from catalogue import store as catalogue_store
from gateway.errors import Forbidden
from gateway.referrals.rounds import channels
from gateway.root import gateway_of
from gateway.steward_views import decides, inbox, provided_grants, usage
from gateway.web.api.body import read_object
from gateway.web.api.catalogue import PREFIX, _int, _person, _sees_all, _text, endpoint


def _workflow(request: Request) -> Workflow:
    return gateway_of(request).workflow


def _provided(request: Request, principal: Any) -> set[str] | None:
    """The codes of the caller's department's resources; None: every resource."""
    if _sees_all(principal):
        return None
    return {r.code for r in gateway_of(request).catalogue.resources()
            if r.provider == principal.department}


def _deciding(principal: Any) -> None:
    if not decides(principal):
        raise Forbidden("for data stewards, department heads and the security admin")


async def get_inbox(request: Request, principal: Any) -> Any:
    _deciding(principal)
    now = gateway_of(request).services.clock()
    found = await run_in_threadpool(inbox, _workflow(request), principal, now)
    return {"applications": [e.to_dict() for e in found]}


async def refer(request: Request, principal: Any) -> Any:

    body = await read_object(request)
    app_id = _int(request.path_params["id"], "id")
    wf = _workflow(request)
    settings = gateway_of(request).services.settings
    app = await run_in_threadpool(
        lambda: wf.refer(_person(principal), app_id, _text(body, "reason"), channels(settings)))
    return {"application": app.to_dict()}


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


async def get_calendar(request: Request, principal: Any) -> Any:
    year = request.query_params.get("year")
    wanted = _int(year, "year") if year else None

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


def routes() -> list[Route]:
    p = PREFIX
    return [
        Route(f"{p}/inbox", endpoint(get_inbox), methods=["GET"]),
        Route(f"{p}/applications/{{id}}/refer", endpoint(refer, write=True), methods=["POST"]),
        Route(f"{p}/grants/provided", endpoint(grants_provided), methods=["GET"]),
        Route(f"{p}/calendar", endpoint(get_calendar), methods=["GET"]),
    ]
