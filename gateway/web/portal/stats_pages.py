"""Real use (实绩): what the digital systems actually deliver, measured by use.

    GET /portal/stats?days=30|90                  every system and resource the viewer
                                                  may see, charted day by day; idle ones;
                                                  grants never or rarely used; duplicate
                                                  collections (一数一源); department links
    GET /portal/stats/departments/{code}?days=    one department on one page, to print (A4)

Who sees what is ``gateway.web.real_use``'s rule (auditors everything, admins and
data stewards their department's part); anyone else signed in gets the 403 page,
audited. Every page read is audited (``stats_query``). The charts are inline SVG
drawn here (``svg_chart``): no script, no external file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from audit import AuditError
from gateway.errors import AuditUnavailable, ValidationError
from gateway.request_id import new_request_id
from gateway.root import gateway_of
from gateway.web.api.stats import audit_stats_read, parse_days
from gateway.web.portal.console_pages import (
    CST,
    error_page,
    services_of,
    shown_day,
    unavailable,
)
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import page_lang, render, session_principal, to_sign_in
from gateway.web.portal.svg_chart import bar_chart
from gateway.web.real_use import (
    IDLE_DAYS,
    RARE_BELOW,
    WINDOWS,
    Scope,
    UnusedGrant,
    overview,
    read_departments,
    read_sources,
    summary,
    viewer_scope,
)

BASE = "/portal/stats"
MEASURES = ("calls", "departments", "users", "items")


def revoke_url(grant: UnusedGrant) -> str:
    """Where the data steward revokes a grant: the resource's catalogue page, which
    lists its grants."""
    return f"/portal/catalogue/{quote(grant.grant.resource, safe='')}#grant-{grant.grant.id}"


async def _open(request: Request) -> tuple[Any, Scope | None, str, Response | None]:
    """The viewer and what they may see, or the answer: sign-in, 403 (audited)."""
    principal = session_principal(request)
    request_id = new_request_id()
    if principal is None:
        return None, None, request_id, to_sign_in(request)
    services = services_of(request)
    departments = await run_in_threadpool(read_departments, services.engine)
    scope = viewer_scope(principal.roles or (), principal.department, departments)
    if scope is None:
        try:
            await audit_stats_read(services, principal, request, "deny", 403,
                                   "real-use figures are for auditors, admins and data "
                                   "stewards", request_id)
        except (AuditError, AuditUnavailable):
            return None, None, request_id, unavailable(request)
        return None, None, request_id, error_page(request, 403, request_id)
    return principal, scope, request_id, None


def _days(request: Request) -> int:
    try:
        return parse_days(request.query_params)
    except ValidationError:
        return WINDOWS[0]


def _chart(t: Any) -> Any:
    def chart(days: Any, measure: str, label: str = "") -> Any:
        values = [int(getattr(d, measure)) for d in days]
        return bar_chart(values, [d.day for d in days],
                         title=(label + " · " if label else "") + t("use_m_" + measure),
                         css_class=f"chart-{measure}")
    return chart


def _context(request: Request, principal: Any, days: int) -> dict[str, Any]:

    t = Translator(page_lang(request))
    return {"principal": principal, "days": days, "windows": WINDOWS, "measures": MEASURES,
            "chart": _chart(t), "shown_day": shown_day, "revoke_url": revoke_url,
            "idle_days": IDLE_DAYS, "rare_below": RARE_BELOW}


async def overview_page(request: Request) -> Response:
    principal, scope, request_id, refused = await _open(request)
    if refused is not None or scope is None:
        return refused or to_sign_in(request)
    services = services_of(request)
    days = _days(request)
    now = services.clock()
    src = await run_in_threadpool(read_sources, gateway_of(request), now)
    found = await run_in_threadpool(overview, src, scope, days)
    try:
        await audit_stats_read(services, principal, request, "success", 200,
                               "real-use overview read (portal)", request_id, days=days)
    except (AuditError, AuditUnavailable):
        return unavailable(request)
    names = {code: d.name for code, d in src.departments.items()}
    return render(request, "stats_overview.html", o=found, dept_names=names,
                  system_names={s.code: s.name for s in src.systems},
                  **_context(request, principal, days))


async def department_page(request: Request) -> Response:
    principal, scope, request_id, refused = await _open(request)
    if refused is not None or scope is None:
        return refused or to_sign_in(request)
    services = services_of(request)
    code = request.path_params["code"]
    days = _days(request)
    now = services.clock()
    src = await run_in_threadpool(read_sources, gateway_of(request), now)
    allowed = code in src.departments and scope.covers(code)
    try:
        await audit_stats_read(
            services, principal, request, "success" if allowed else (
                "deny" if code in src.departments else "failure"),
            200 if allowed else (403 if code in src.departments else 404),
            "department summary read (portal)", request_id, days=days,
            department_asked=code[:64])
    except (AuditError, AuditUnavailable):
        return unavailable(request)
    if not allowed:
        return error_page(request, 403 if code in src.departments else 404, request_id)
    found = await run_in_threadpool(summary, src, code, days)
    names = {c: d.name for c, d in src.departments.items()}
    generated = now.astimezone(CST).strftime("%Y-%m-%d %H:%M")
    return render(request, "stats_department.html", s=found, dept_names=names,
                  system_names={x.code: x.name for x in src.systems}, generated=generated,
                  **_context(request, principal, days))


def routes() -> list[BaseRoute]:
    return [
        Route(BASE, overview_page, methods=["GET"]),
        Route(f"{BASE}/departments/{{code}}", department_page, methods=["GET"]),
    ]
