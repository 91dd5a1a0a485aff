"""Real use (实绩) over HTTP, for scripts and the ``/portal/stats`` pages' readers:

    GET /api/v1/stats/overview?days=30|90          every system and resource the caller
                                                   may see, day by day; idle ones (90
                                                   days); grants never or rarely used;
                                                   duplicate collections (一数一源)
    GET /api/v1/stats/departments/{code}?days=30|90   one department's summary

Who may see what: ``gateway.web.real_use`` (auditors everything, admins and data
stewards their department's part); a bearer token also needs the scope
``stats:read``. Every call, refused ones included, is audited (``stats_query``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from audit import AuditError, AuditRecord
from gateway.errors import (
    AuditUnavailable,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationError,
)
from gateway.idp.scopes import STATS_READ, InsufficientScope, require
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.api import shapes as s
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation, Param
from gateway.web.api.problems import problem_json
from gateway.web.real_use import (
    WINDOWS,
    Scope,
    overview,
    overview_json,
    read_departments,
    read_sources,
    summary,
    summary_json,
    viewer_scope,
)
from texts import Text


def parse_days(params: Any) -> int:
    """``days`` (30 by default, or 90); ValidationError for anything else."""
    for key in params:
        if key not in ("days", "lang"):
            raise ValidationError(Text("stats.unknown_parameter", "unknown parameter {name!r}",
                                       name=key), field=key)
    raw = params.get("days") or str(WINDOWS[0])
    if raw not in {str(d) for d in WINDOWS}:
        raise ValidationError(Text("stats.days", "days must be one of {known}",
                                   known=", ".join(str(d) for d in WINDOWS)), field="days")
    return int(raw)


async def audit_stats_read(services: Services, principal: Any, request: Request, outcome: str,
                           status: int, reason: str, request_id: str | None = None,
                           **extra: Any) -> None:
    """The audit record of one real-use read (API or page)."""
    log = services.audit
    if log is None:
        raise AuditUnavailable("the audit log is not open")
    await log.append(AuditRecord(
        event_type="stats_query", outcome=outcome, status=status, reason=reason,
        actor_user=getattr(principal, "username", None),
        actor_client=getattr(principal, "client_id", None),
        department=getattr(principal, "department", None),
        source_ip=request.client.host if request.client else None,
        request_id=request_id or request.headers.get("x-request-id"),
        extra={"path": request.url.path, **extra}))


async def _begin(request: Request) -> tuple[Any, Scope | None, Response | None]:
    services = gateway_of(request).services
    try:
        principal = await gateway_of(request).authenticator.authenticate(request)
    except (Unauthorized, TooManyRequests) as exc:
        return None, None, problem_json(exc)
    refusal: Exception | None = None
    scope: Scope | None = None
    try:
        require(principal, STATS_READ)
    except InsufficientScope as exc:
        refusal = exc
    if refusal is None:
        departments = await asyncio.to_thread(read_departments, services.engine)
        scope = viewer_scope(principal.roles or (), principal.department, departments)
        if scope is None:
            refusal = Forbidden(Text("stats.who_reads", "real-use figures are for "
                                     "auditors, admins and data stewards"))
    if refusal is not None:
        try:
            await audit_stats_read(services, principal, request, "deny", 403, str(refusal))
        except (AuditError, AuditUnavailable) as exc:
            return None, None, problem_json(exc)
        return None, None, problem_json(refusal)
    return principal, scope, None


WHO = Access((STATS_READ,), roles="auditors (everything), admins and data stewards (their "
                                   "department's part)")
QUERY = (Param("days", {"type": "integer", "enum": list(WINDOWS)}, "the window, 30 or 90 days"),
         Param("lang", {"type": "string", "maxLength": 16}, "ignored (the pages' language)"))
TARGETS = s.array(s.obj({"code": s.TEXT}, ["code"]))
LIST = s.array(s.FREE)
DEPARTMENT = s.obj({"code": s.TEXT, "name": s.TEXT}, ["code", "name"])
UNKNOWN = "A query parameter it does not name is refused (400)."

OVERVIEW = Operation(
    "GET", "/api/v1/stats/overview", "Real use of everything the caller may see", "stats", WHO,
    {200: Answer("Use day by day, idle systems and resources, grants never or rarely used, "
                 "duplicate collections", s.obj({
                     "window": s.FREE, "total": s.FREE, "systems": TARGETS,
                     "resources": TARGETS, "idle": LIST, "idle_days": s.INT, "grants": LIST,
                     "rare_below": s.INT, "duplicates": LIST,
                     "departments": s.array(DEPARTMENT)},
                     ["window", "total", "systems", "resources", "idle", "grants",
                      "duplicates", "departments"]))},
    query=QUERY, description=UNKNOWN)


async def overview_api(request: Request) -> Response:
    principal, scope, refused = await _begin(request)
    if refused is not None or scope is None:
        return refused or problem_json(Forbidden())
    services = gateway_of(request).services
    try:
        OVERVIEW.check_params(request)
        days = parse_days(request.query_params)
    except ValidationError as exc:
        return problem_json(exc)
    now = services.clock()
    gateway = gateway_of(request)
    found = await asyncio.to_thread(lambda: overview(read_sources(gateway, now), scope, days))
    try:
        await audit_stats_read(services, principal, request, "success", 200,
                               "real-use overview read", days=days)
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse(overview_json(found))


DEPARTMENT_SUMMARY = Operation(
    "GET", "/api/v1/stats/departments/{code}", "One department's summary of real use",
    "stats", WHO,
    {200: Answer("What it provided and consumed, idle, grants, duplicates, its children",
                 s.obj({"department": DEPARTMENT, "window": s.FREE, "provided": s.FREE,
                        "systems": TARGETS, "resources": TARGETS, "consumed": s.FREE,
                        "consumed_resources": TARGETS, "idle": LIST, "grants": LIST,
                        "duplicates": LIST, "children": s.array(DEPARTMENT)},
                       ["department", "window", "provided", "consumed"]))},
    path_params=(Param("code", s.CODE, "the department's code"),), query=QUERY,
    description=UNKNOWN)


async def department_api(request: Request) -> Response:
    principal, scope, refused = await _begin(request)
    if refused is not None or scope is None:
        return refused or problem_json(Forbidden())
    services = gateway_of(request).services
    code = request.path_params["code"]
    try:
        DEPARTMENT_SUMMARY.check_params(request)
        days = parse_days(request.query_params)
    except ValidationError as exc:
        return problem_json(exc)
    now = services.clock()
    src = await asyncio.to_thread(read_sources, gateway_of(request), now)
    if code not in src.departments or not scope.covers(code):
        refusal: Exception = (Forbidden(Text(
                                  "stats.out_of_sight",
                                  "this department is outside what the caller may see"))
                              if code in src.departments else
                              NotFound(Text("stats.no_department", "no department {code!r}",
                                            code=code[:64])))
        out_of_scope = isinstance(refusal, Forbidden)
        try:
            await audit_stats_read(services, principal, request,
                                   "deny" if out_of_scope else "failure",
                                   403 if out_of_scope else 404, str(refusal),
                                   department_asked=code[:64])
        except (AuditError, AuditUnavailable) as exc:
            return problem_json(exc)
        return problem_json(refusal)
    found = await asyncio.to_thread(summary, src, code, days)
    try:
        await audit_stats_read(services, principal, request, "success", 200,
                               "department summary read", days=days, department_asked=code)
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse(summary_json(found))


def routes() -> list[ApiRoute]:
    return [OVERVIEW.route(overview_api), DEPARTMENT_SUMMARY.route(department_api)]
