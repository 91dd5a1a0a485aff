"""Portal pages of the data-sharing catalogue (共享目录), for staff and data stewards.

    GET  /portal/catalogue                         search form and results
    .../applications..., .../grants...             the applications and grants: see
                                                   gateway/web/portal/steward_pages.py
    GET  /portal/catalogue/{code}                  one resource: items, duplicate-collection
                                                   warnings, the department's grants, and
                                                   the application form
    POST /portal/catalogue/{code}/apply            file an application

Every page needs a portal session (else the sign-in page). Every change goes
through ``catalogue.Workflow``, which checks department and role exactly as the
API does and writes the audit record; its errors become readable pages: 400
(the form again, with the problems), 403, 404, 409. Every form carries the
portal's CSRF token (400 without it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue import CatalogueError, InvalidInput, Resource, UnknownObject
from catalogue.duplicates import overlaps_for
from catalogue.limits import MAX_LENGTH
from catalogue.model import (
    ADMIN_ROLES,
    CONDITIONAL,
    LEVELS,
    PUBLISHED,
    SENSITIVE_LEVEL,
    SHARE_TYPES,
)
from gateway.i18n import render as render_text
from gateway.request_id import new_request_id
from gateway.root import Gateway, gateway_of
from gateway.services import Services
from gateway.tables import clients, departments
from gateway.web.catalogue_sight import actor_of
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import (
    csrf_ok,
    page_lang,
    render,
    session_principal,
    to_sign_in,
)
from texts import Text

BASE = "/portal/catalogue"
STEWARD = "data_steward"
SECADMIN = "secadmin"
ACTIONS = ("approve", "reject", "escalate", "close")


# -- plumbing ---------------------------------------------------------------------------

def _services(request: Request) -> Services:
    return gateway_of(request).services


def _t(request: Request) -> Translator:
    return Translator(page_lang(request))


def _department_names(services: Services) -> dict[str, str]:

    with services.engine.connect() as conn:
        return dict(conn.execute(sa.select(departments.c.code, departments.c.name)).all())


def _department_clients(services: Services, department: str | None) -> list[dict[str, str]]:
    """The applying department's active clients (its systems): the only ones an
    application may bind its grant to (the workflow refuses another department's)."""
    if not department:
        return []
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(clients.c.client_id, clients.c.name).where(
            clients.c.department_code == department, clients.c.status == "active"
        ).order_by(clients.c.name, clients.c.client_id)).all()
    return [{"client_id": r.client_id, "name": r.name} for r in rows]


# the catalogue messages the portal words its own way (shorter, addressed to the
# person at the form): Text key → portal entry; any other text is rendered by its key
# (gateway.i18n.render), its English under en
PORTAL_WORDING: dict[str, str] = {
    "field.too_long": "cat_err_too_long",
    "cat.purpose_long": "cat_err_purpose_long",
    "field.date": "cat_err_bad_date",
    "field.from_after_until": "cat_err_from_after_until",
    "cat.needs_consumer": "cat_err_no_consumer",
    "cat.own_department": "cat_err_own_department",
    "cat.admin_applies": "cat_err_admin_applies",
    "cat.no_published": "cat_err_no_resource",
    "cat.no_resource": "cat_err_no_such_resource",
    "cat.provider_applies": "cat_err_provider_applies",
    "cat.unconditional": "cat_err_unconditional",
    "cat.one_item": "cat_err_no_items",
    "cat.not_shareable": "cat_err_not_shareable",
    "cat.purpose": "cat_err_purpose_required",
    "cat.until_past": "cat_err_until_past",
    "cat.until_before_from": "cat_err_until_before_from",
    "cat.not_a_client_of": "cat_err_foreign_client",
    "cat.application_rejected": "cat_err_application_rejected",
    "cat.approval_rejected": "cat_err_approval_rejected",
    "cat.no_application": "cat_err_no_application",
    "cat.resource_gone": "cat_err_resource_gone",
    "cat.steward_approves": "cat_err_steward_approves",
    "cat.steward_rejects": "cat_err_steward_rejects",
    "cat.secadmin_decides": "cat_err_secadmin_decides",
    "cat.secadmin_closes": "cat_err_secadmin_closes",
    "cat.escalates": "cat_err_consumer_escalates",
    "cat.application_state": "cat_err_application_state",
    "cat.share_type": "cat_err_share_type_state",
    "cat.narrow_items": "cat_err_narrow_items",
    "cat.approve_one": "cat_err_approve_one",
    "cat.no_longer_shareable": "cat_err_items_gone",
    "cat.shorten": "cat_err_shorten_only",
    "cat.reason_to_mark": "cat_err_reason_required",
    "cat.items_list": "cat_err_item_names",
    "portal.no_page": "cat_err_no_page",
    # the stewards' pages (gateway/web/portal/steward_pages.py)
    "cat.reason_to_refer": "cat_err_reason_required",
    "cat.reason_to_revoke": "cat_err_reason_required",
    "cat.steward_refers": "stw_err_steward_refers",
    "cat.referred_already": "stw_err_referred_already",
    "cat.no_head": "stw_err_no_head",
    "cat.no_such_items": "cat_err_no_such_items",
    "cat.revokes": "stw_err_revokes",
    "cat.revoked": "stw_err_revoked",
    "cat.no_grant": "stw_err_no_grant",
    "portal.not_your_application": "stw_err_not_yours",
    "cat.not_your_application": "stw_err_not_yours",
    "portal.not_deciding": "stw_err_not_deciding",
}


def say(t: Translator, text: str, names: dict[str, str] | None = None) -> str:
    """A catalogue message in the page's language: a :class:`~texts.Text` by its key
    (the portal's own wording where it has one, its parameters too where they are
    enumerated values (a field, a status, a share type) or a department (its name);
    else the library's translation, :func:`gateway.i18n.render`); any other text as it is."""
    if not isinstance(text, Text):
        return str(text)
    portal_key = PORTAL_WORDING.get(text.key)
    if portal_key is None:
        return render_text(text, t.lang)
    params: dict[str, Any] = dict(text.params)
    if "field" in params:
        params["field"] = t.value("cat_field_", str(params["field"]))
    if "status" in params:
        params["status"] = t.value("cat_app_", str(params["status"]))
    if "share_type" in params:
        params["share_type"] = t.value("cat_st_", str(params["share_type"]))
    if "department" in params and names:
        params["department"] = names.get(str(params["department"]), params["department"])
    return t(portal_key, **params)


def _error_page(request: Request, exc: CatalogueError) -> Response:
    t = _t(request)
    title = {403: t("cat_forbidden"), 404: t("cat_not_found"),
             409: t("cat_conflict")}.get(exc.status, t("cat_invalid"))
    names = _department_names(_services(request))
    request_id = new_request_id()
    response = render(request, "catalogue_error.html", status=exc.status, title=title,
                      detail=say(t, exc.description, names), request_id=request_id,
                      problems=[say(t, p, names) for p in exc.problems])
    response.headers["X-Request-ID"] = request_id
    return response


def _csrf_failed(request: Request) -> Response:
    return render(request, "catalogue_error.html", status=400, title=_t(request)("error"),
                  detail=_t(request)("csrf"), problems=[], request_id=None)


def _common(request: Request, principal: Any, names: dict[str, str]) -> dict[str, Any]:
    return {"principal": principal, "dept_names": names,
            "department_name": names.get(principal.department, principal.department),
            "max_length": MAX_LENGTH}


# -- search -----------------------------------------------------------------------------

async def search_page(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    services = _services(request)
    q = request.query_params
    filters = {
        "q": q.get("q", "").strip()[:100],
        "department": q.get("department", "").strip(),
        "share_type": q.get("share_type", "") if q.get("share_type") in SHARE_TYPES else "",
        "item": q.get("item", "").strip()[:64],
        "level": q.get("level", "") if q.get("level", "") in {str(x) for x in LEVELS} else "",
    }
    found = await run_in_threadpool(
        gateway_of(request).catalogue.search, q=filters["q"] or None,
        department=filters["department"] or None, share_type=filters["share_type"] or None,
        item=filters["item"] or None,
        level=int(filters["level"]) if filters["level"] else None)
    names = await run_in_threadpool(_department_names, services)
    return render(request, "catalogue_search.html", filters=filters, results=found,
                  share_types=SHARE_TYPES, levels=LEVELS,
                  **_common(request, principal, names))


# -- one resource -----------------------------------------------------------------------

def _resource_context(gateway: Gateway, principal: Any, code: str) -> dict[str, Any]:
    cat = gateway.catalogue
    resource = cat.get(code)
    overlaps = overlaps_for(resource, cat.resources())
    grants = gateway.workflow.grants(resource=code, consumer=principal.department)
    now = gateway.services.clock()
    return {
        "resource": resource,
        "overlaps": overlaps,
        "grants": [(g, g.state_at(now)) for g in grants],
        "can_apply": _can_apply(resource, principal),
    }


def _can_apply(resource: Resource, principal: Any) -> str:
    """'yes', or the text key saying why no application is possible."""
    if set(principal.roles or ()) & ADMIN_ROLES:
        return "cat_no_apply_admin"
    if resource.status != PUBLISHED:
        return "cat_no_apply_unpublished"
    if resource.provider == principal.department:
        return "cat_no_apply_provider"
    if resource.share_type != CONDITIONAL:
        return f"cat_no_apply_{resource.share_type}"
    return "yes"


async def _render_resource(request: Request, principal: Any, code: str, *, status: int = 200,
                           errors: list[str] | None = None,
                           form: dict[str, Any] | None = None) -> Response:
    services = _services(request)
    try:
        ctx = await run_in_threadpool(_resource_context, gateway_of(request), principal, code)
    except CatalogueError as exc:
        return _error_page(request, exc)
    names = await run_in_threadpool(_department_names, services)
    offered = await run_in_threadpool(_department_clients, services, principal.department)
    # nothing ticked: the applicant chooses what the purpose needs (最小必要)
    form = form or {"items": [], "purpose": "", "basis": "", "until": "", "client": ""}
    return render(request, "catalogue_resource.html", status=status, errors=errors or [],
                  form=form, sensitive=SENSITIVE_LEVEL, clients=offered, **ctx,
                  **_common(request, principal, names))


async def resource_page(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    return await _render_resource(request, principal, request.path_params["code"])


async def apply_submit(request: Request) -> Response:
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    code = request.path_params["code"]
    form = await request.form()
    if not csrf_ok(request, form):
        return _csrf_failed(request)
    items = [str(i) for i in form.getlist("items")]
    text = {k: str(form.get(k) or "").strip()
            for k in ("purpose", "basis", "until", "client")}
    wf = gateway_of(request).workflow
    offered = await run_in_threadpool(_department_clients, _services(request),
                                      principal.department)
    if text["client"] and text["client"] not in {c["client_id"] for c in offered}:
        # not one the form offered: another department's (the workflow says so too),
        # a disabled one, or one that is no client at all
        t = _t(request)
        return await _render_resource(request, principal, code, status=400, errors=[say(
            t, Text("cat.client_not_offered", "{client!r} is not one of your department's "
                    "systems", client=text["client"][:128]))], form={"items": items, **text})
    try:
        app = await run_in_threadpool(
            lambda: wf.apply(actor_of(request, principal), code, items=items,
                             purpose=text["purpose"], until=text["until"],
                             basis=text["basis"], client_id=text["client"] or None))
    except InvalidInput as exc:
        t = _t(request)
        return await _render_resource(request, principal, code, status=400,
                                      errors=[say(t, p) for p in
                                              exc.problems or [exc.description]],
                                      form={"items": items, **text})
    except CatalogueError as exc:
        return _error_page(request, exc)
    return RedirectResponse(f"{BASE}/applications?" + urlencode(
        {"done": "applied", "id": app.id}), status_code=303)


def _not_found(request: Request) -> CatalogueError:
    return UnknownObject(Text("portal.no_page", "no page {path}", path=request.url.path))


def routes() -> list[BaseRoute]:
    """The catalogue's pages; the steward's (``steward_pages``: /applications,
    /grants) are listed before these, as those paths are no resource codes."""
    return [
        Route(BASE, search_page, methods=["GET"]),
        Route(f"{BASE}/{{code}}", resource_page, methods=["GET"]),
        Route(f"{BASE}/{{code}}/apply", apply_submit, methods=["POST"]),
    ]
