"""Portal pages of the applications and grants (共享申请, 授权), for applicants, data
stewards, department heads and the security admin.

    GET  /portal/catalogue/applications              the inbox (what the caller decides,
                                                     overdue first, time limits in working
                                                     days), the department's own
                                                     applications, those for its resources
    GET  /portal/catalogue/applications/{id}         one application: its facts, what was
                                                     granted, the decisions open to the
                                                     caller, and its whole timeline
    POST /portal/catalogue/applications/{id}/{action}   approve | reject | refer | escalate
                                                     | close
    GET  /portal/catalogue/grants                    our grants: the grants on the
                                                     department's resources, with their use
    POST /portal/catalogue/grants/{id}/revoke        revoke, with the reason

Every change goes through ``catalogue.Workflow`` (the API's rules, audited); its
refusals are readable pages (400 the form again with the problems, 403, 404, 409).
Every form carries the portal's CSRF token. The same data is on the API
(gateway/web/api/steward.py, gateway/web/api/catalogue.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue import Catalogue, CatalogueError, InvalidInput, NotAllowed, Workflow
from catalogue.model import (
    APPROVED,
    CST,
    DATA_STEWARD,
    ESCALATED,
    OPEN_STATES,
    REJECTED,
    SENSITIVE_LEVEL,
    SUBMITTED,
    Application,
    Grant,
)
from gateway.referrals.rounds import channels
from gateway.root import gateway_of
from gateway.services import Services
from gateway.steward_views import Deadline, decides, inbox, provided_grants, usage
from gateway.web.catalogue_sight import actor_of, audit_refusal, covering, deciding, sight
from gateway.web.portal.catalogue_pages import (
    BASE,
    _common,
    _csrf_failed,
    _department_names,
    _error_page,
    _not_found,
    _t,
    say,
)
from gateway.web.portal.pages import csrf_ok, render, session_principal, to_sign_in
from texts import Text

ACTIONS = ("approve", "reject", "refer", "escalate", "close")


# -- collaborators (one place each) ------------------------------------------------------

def _services(request: Request) -> Services:
    return gateway_of(request).services


def _workflow(request: Request) -> Workflow:
    return gateway_of(request).workflow


def _catalogue(request: Request) -> Catalogue:
    return gateway_of(request).catalogue


def _channels(request: Request) -> list[str]:

    return channels(_services(request).settings)


# -- what a row shows --------------------------------------------------------------------

def granted(app: Application, grants: dict[int, Grant]) -> tuple[list[str], list[str]] | None:
    """An approved application's items as decided: (granted, not granted); None before."""
    if app.status != APPROVED:
        return None
    approval = app.approval()
    if approval is not None and "items" in approval.detail:
        given = list(approval.detail["items"])
    elif app.grant_id in grants:
        given = list(grants[app.grant_id].items)
    else:
        return None
    return given, [i for i in app.items if i not in given]


def _resources(request: Request) -> dict[str, Any]:
    return {r.code: r for r in _catalogue(request).resources()}


# -- the list ----------------------------------------------------------------------------

def _applications_context(request: Request, principal: Any) -> dict[str, Any]:
    wf = _workflow(request)
    now = _services(request).clock()
    dept = principal.department
    review = inbox(wf, principal, now, deciding(request, principal)) \
        if decides(principal) else []
    reviewing = {e.application.id for e in review}
    ours = sorted(wf.applications(consumer=dept), key=lambda a: -a.id) if dept else []
    provided = sorted((a for a in wf.applications(provider=dept) if a.id not in reviewing),
                      key=lambda a: -a.id) if dept else []
    calendar = wf.calendar()
    deadlines = {a.id: Deadline.of(a, now, calendar) for a in [*ours, *provided]
                 if a.status in OPEN_STATES}
    deadlines.update({e.application.id: e.deadline for e in review})
    grants = {g.id: g for g in wf.grants()} if any(
        a.status == APPROVED for a in [*ours, *provided]) else {}
    return {
        "review": review, "ours": ours, "provided": provided, "deadlines": deadlines,
        "decided": {a.id: granted(a, grants) for a in [*ours, *provided]},
        "resources": _resources(request), "decides": decides(principal),
    }


async def applications_page(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    info = None
    done, app_id = request.query_params.get("done"), request.query_params.get("id", "")
    if done == "applied" and app_id.isdigit():
        info = _t(request)("cat_done_applied", id=app_id)
    ctx = await run_in_threadpool(_applications_context, request, principal)
    names = await run_in_threadpool(_department_names, _services(request))
    return render(request, "catalogue_applications.html", info=info, cst=CST, **ctx,
                  **_common(request, principal, names), main_class="wide")


# -- one application ---------------------------------------------------------------------

def _application_context(request: Request, principal: Any, app_id: int) -> dict[str, Any]:
    wf = _workflow(request)
    app = wf.get(app_id)
    resources = _resources(request)
    resource = resources.get(app.resource)
    provider = resource.provider if resource else ""
    roles = set(principal.roles or ())
    dept = principal.department
    if not covering(request, principal)(app):
        raise NotAllowed(Text("portal.not_your_application",
                              "application {id} is neither your department's nor for its "
                              "resources", id=app_id))
    actor = actor_of(request, principal)
    now = _services(request).clock()
    grant = None
    if app.grant_id is not None:
        found = [g for g in wf.grants(resource=app.resource) if g.id == app.grant_id]
        grant = found[0] if found else None
    return {
        "app": app, "resource": resource, "provider": provider,
        "deadline": Deadline.of(app, now, wf.calendar()) if app.status in OPEN_STATES
        else None,
        "decided": granted(app, {grant.id: grant} if grant else {}),
        "grant": grant, "grant_state": grant.state_at(now) if grant else None,
        "can_decide": app.applicant != actor.name and (
            (app.status == SUBMITTED and actor.decides_for(provider))
            or (app.status == ESCALATED and actor.is_secadmin_of(provider))),
        "can_refer": app.status == SUBMITTED and DATA_STEWARD in roles and dept == provider
        and app.head_escalated_at is None,
        "can_close": app.status == ESCALATED and actor.is_secadmin_of(provider),
        "can_escalate": app.status == REJECTED and (
            dept == app.consumer or actor.is_secadmin_of(provider, app.consumer)),
        "sensitive": SENSITIVE_LEVEL,
    }


async def _render_application(request: Request, principal: Any, app_id: int, *,
                              status: int = 200, errors: list[str] | None = None,
                              info: str | None = None) -> Response:
    try:
        ctx = await run_in_threadpool(_application_context, request, principal, app_id)
    except CatalogueError as exc:
        return await _refused_page(request, principal, exc)
    names = await run_in_threadpool(_department_names, _services(request))
    return render(request, "catalogue_application.html", status=status, errors=errors or [],
                  info=info, cst=CST, **ctx, **_common(request, principal, names),
                  main_class="wide")


def _path_id(request: Request) -> int:
    """The {id} of the address; -1 (no such object) when it is no number, or one past the
    INTEGER column (PostgreSQL would refuse the query: a 500)."""
    try:
        found = int(request.path_params["id"])
    except ValueError:
        return -1
    return found if 0 < found < 2**31 else -1


async def application_page(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    app_id = _path_id(request)
    if app_id < 0:
        return _error_page(request, _not_found(request))
    info = None
    done = request.query_params.get("done")
    if done in ACTIONS:
        key = "stw_done_refer" if done == "refer" else f"cat_done_{done}"
        info = _t(request)(key, id=app_id)
    return await _render_application(request, principal, app_id, info=info)


async def decide_submit(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    action = request.path_params["action"]
    app_id = _path_id(request)
    if action not in ACTIONS or app_id < 0:
        return _error_page(request, _not_found(request))
    form = await request.form()
    if not csrf_ok(request, form):
        return _csrf_failed(request)
    wf = _workflow(request)
    reason = str(form.get("reason") or "")

    def run() -> None:
        actor = actor_of(request, principal)
        if action == "approve":
            wf.approve(actor, app_id, items=[str(i) for i in form.getlist("items")],
                       until=str(form.get("until") or "").strip() or None,
                       note=str(form.get("note") or "").strip())
        elif action == "refer":
            wf.refer(actor, app_id, reason, _channels(request))
        else:
            getattr(wf, action)(actor, app_id, reason)

    try:
        await run_in_threadpool(run)
    except InvalidInput as exc:
        t = _t(request)
        return await _render_application(request, principal, app_id, status=400,
                                         errors=[say(t, p) for p in
                                                 exc.problems or [exc.description]])
    except CatalogueError as exc:
        return await _refused_page(request, principal, exc)
    return RedirectResponse(f"{BASE}/applications/{app_id}?" + urlencode({"done": action}),
                            status_code=303)


# -- our grants --------------------------------------------------------------------------

def _grants_context(request: Request, principal: Any) -> dict[str, Any]:
    services = _services(request)
    resources = _resources(request)
    seen = sight(request, principal)
    provided = {code for code, r in resources.items() if seen(r.provider)}
    found = provided_grants(_workflow(request), provided)
    now = services.clock()
    return {"grants": found, "usage": usage(services.engine, found, now),
            "states": {g.id: g.state_at(now) for g in found}, "resources": resources}


async def _render_grants(request: Request, principal: Any, *, status: int = 200,
                         errors: list[str] | None = None, info: str | None = None) -> Response:
    if not decides(principal):
        return _error_page(request, NotAllowed(Text(
            "portal.not_deciding", "for data stewards, department heads and the security "
            "admin")))
    ctx = await run_in_threadpool(_grants_context, request, principal)
    names = await run_in_threadpool(_department_names, _services(request))
    return render(request, "catalogue_grants.html", status=status, errors=errors or [],
                  info=info, cst=CST, **ctx, **_common(request, principal, names),
                  main_class="wide")


async def grants_page(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    info = None
    if request.query_params.get("done") == "revoke" and request.query_params.get(
            "id", "").isdigit():
        info = _t(request)("stw_done_revoke", id=request.query_params["id"])
    return await _render_grants(request, principal, info=info)


async def revoke_submit(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    grant_id = _path_id(request)
    if grant_id < 0:
        return _error_page(request, _not_found(request))
    form = await request.form()
    if not csrf_ok(request, form):
        return _csrf_failed(request)
    wf = _workflow(request)
    try:
        await run_in_threadpool(lambda: wf.revoke(actor_of(request, principal), grant_id,
                                                  str(form.get("reason") or "")))
    except InvalidInput as exc:
        t = _t(request)
        return await _render_grants(request, principal, status=400, errors=[
            f"#{grant_id}: {say(t, p)}" for p in exc.problems or [exc.description]])
    except CatalogueError as exc:
        return await _refused_page(request, principal, exc)
    return RedirectResponse(f"{BASE}/grants?" + urlencode({"done": "revoke", "id": grant_id}),
                            status_code=303)


async def _refused_page(request: Request, principal: Any, exc: CatalogueError) -> Response:
    """The error page; a step the caller may not take is audited as the API's are."""
    if isinstance(exc, NotAllowed):
        await run_in_threadpool(audit_refusal, request, principal, exc)
    return _error_page(request, exc)


def routes() -> list[BaseRoute]:
    return [
        Route(f"{BASE}/applications", applications_page, methods=["GET"]),
        Route(f"{BASE}/applications/{{id}}", application_page, methods=["GET"]),
        Route(f"{BASE}/applications/{{id}}/{{action}}", decide_submit, methods=["POST"]),
        Route(f"{BASE}/grants", grants_page, methods=["GET"]),
        Route(f"{BASE}/grants/{{id}}/revoke", revoke_submit, methods=["POST"]),
    ]
