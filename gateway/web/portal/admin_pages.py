"""The admin consoles' pages (``/portal/admin/...``): plumbing shared by the system
administrator's (``admin_sys_pages``), the security administrator's
(``admin_sec_pages``) and the audit administrator's page here.

    GET  /portal/admin            the console of the signed-in admin's role
    GET  /portal/admin/activity   what the sysadmin and secadmin accounts did (审计管理员)

Every page needs a portal session (else the sign-in page) and its console's role:
the others, and every business user, get a 403 page, and the refusal is audited
(``gateway.admin.console``). Every form posts its CSRF token (400 without it). Each
page does what its ``/api/v1/admin/...`` endpoint does, through the same console
operation; errors become readable pages (400 with the problems, 403, 404, 409)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.model import CST
from gateway.admin.activity import AuditAdmin
from gateway.admin.console import AUDITOR, SECADMIN, SYSADMIN, Console
from gateway.admin.trail import Trail
from gateway.errors import Forbidden, is_problem
from gateway.i18n import render as render_text
from gateway.org import ADMIN_ROLES
from gateway.root import gateway_of
from gateway.services import Services
from gateway.tables import departments
from gateway.web.admin_access import admin_of, send_logouts
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import csrf_ok, page_lang, render, session_principal, to_sign_in
from texts import Text

BASE = "/portal/admin"
# each console's pages, in the order of its navigation
NAV: dict[str, list[tuple[str, str]]] = {
    SYSADMIN: [("users", "adm_nav_users"), ("departments", "adm_nav_departments"),
               ("systems", "adm_nav_systems"), ("clients", "adm_nav_clients")],
    SECADMIN: [("policies", "adm_nav_policies"), ("grants", "adm_nav_grants"),
               ("keys", "adm_nav_keys"), ("security", "adm_nav_security")],
    AUDITOR: [("activity", "adm_nav_activity")],
}
ADMINS_ONLY = Text("admin.admins_only",
                   "the admin consoles are the three administrators' (三员分立)")

Form = Any
Handler = Callable[[Request, Any, Form], Awaitable[Response]]


def _services(request: Request) -> Services:
    return gateway_of(request).services


def t_of(request: Request) -> Translator:
    return Translator(page_lang(request))


def say(t: Translator, text: str) -> str:
    """A library text in the page's language (by its key), anything else as it is."""
    return render_text(text, t.lang) if isinstance(text, Text) else str(text)


def local_time(value: Any) -> str:
    """An ISO time or datetime as Beijing time, ``YYYY-MM-DD HH:MM``."""
    if not value:
        return ""
    at = datetime.fromisoformat(str(value).replace("Z", "+00:00")) \
        if not isinstance(value, datetime) else value
    return at.astimezone(CST).strftime("%Y-%m-%d %H:%M")


def department_names(services: Services) -> dict[str, str]:

    with services.engine.connect() as conn:
        return dict(conn.execute(sa.select(departments.c.code, departments.c.name)).all())


def error_page(request: Request, exc: Exception, *,
               back: tuple[str, str] | None = None) -> Response:
    """The refusal as a page; ``back``: (path, text key) of the page the person came
    from, for pages that are not a console's (the console's link refuses them)."""
    t = t_of(request)
    status = int(getattr(exc, "status", 500))
    title = {400: "adm_err_400", 403: "adm_err_403", 404: "adm_err_404",
             409: "adm_err_409", 503: "adm_err_503"}.get(status, "adm_err_other")
    detail = getattr(exc, "description", None) or str(exc)
    problems = list(getattr(exc, "problems", None) or [])
    return render(request, "admin_error.html", status=status, title=t(title),
                  detail=say(t, detail), problems=[say(t, p) for p in problems],
                  request_id=request.headers.get("x-request-id"), back=back)


def show(request: Request, console: Console, template: str, status: int = 200,
         **context: Any) -> Response:
    """A console page: its navigation, the admin and their scope, and ``context``."""
    role = console.ROLE
    done, target = request.query_params.get("done", ""), request.query_params.get("target", "")
    t = t_of(request)
    info = t("adm_done_" + done, target=target[:200]) if t.knows("adm_done_" + done) else None
    return render(request, template, status=status, nav=NAV[role], base=BASE,
                  here=request.url.path, me=console.admin, province=console.scope.province,
                  dept_names=department_names(console.services), info=info,
                  local_time=local_time, say=lambda text: say(t, text), **context)


def done(path: str, action: str, target: str = "") -> Response:
    """After a change: back to the page, which says what was done (303, so a reload
    does not post again)."""
    return RedirectResponse(f"{BASE}/{path}?" + urlencode({"done": action, "target": target}),
                            status_code=303)


def page(console: type[Console], handler: Handler, *, post: bool = False
         ) -> Callable[[Request], Awaitable[Response]]:
    """``handler(request, console, form)`` behind the session, the CSRF check of a
    ``post`` and ``console``'s role; any error as a page."""

    async def run(request: Request) -> Response:
        principal = session_principal(request)
        if principal is None:
            return to_sign_in(request)
        form = None
        if post:
            form = await request.form()
            if not csrf_ok(request, form):
                return render(request, "admin_error.html", status=400,
                              title=t_of(request)("adm_err_400"),
                              detail=t_of(request)("csrf"), problems=[], request_id=None)
        try:
            admin = await run_in_threadpool(admin_of, request, principal, "portal")
            what = f"{request.method} {request.url.path}"
            it = await run_in_threadpool(console, gateway_of(request), admin, what)
            response = await handler(request, it, form)
            send_logouts(request, it)
            return response
        except Exception as exc:
            if is_problem(exc):
                return error_page(request, exc)
            raise

    return run


async def index(request: Request) -> Response:
    """The signed-in admin's console; anyone else a 403 page (audited)."""
    principal = session_principal(request)
    if principal is None:
        return to_sign_in(request)
    roles = set(principal.roles or ()) & ADMIN_ROLES
    if not roles:
        def refuse() -> None:
            admin = admin_of(request, principal, "portal")
            Trail(_services(request), admin).refused(f"GET {BASE}", ADMINS_ONLY)

        try:
            await run_in_threadpool(refuse)
        except Exception as exc:
            if is_problem(exc):
                return error_page(request, exc)
            raise
        return error_page(request, Forbidden(ADMINS_ONLY))
    first = NAV[sorted(roles)[0]][0][0]
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"{BASE}/{first}{query}", status_code=303)


# -- the audit administrator ----------------------------------------------------------

async def activity_page(request: Request, console: AuditAdmin, form: Form) -> Response:
    q = request.query_params
    filters = {k: q.get(k, "").strip()[:200] for k in ("user", "outcome", "since", "until",
                                                        "text", "cursor")}
    params = {k: v for k, v in filters.items() if v}
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", params.get("until", "")):
        # a date picked as "until" includes that day (9999-12-31 has no day after
        # it: the filter goes as typed)
        with contextlib.suppress(ValueError, OverflowError):
            params["until"] = (date.fromisoformat(params["until"]) + timedelta(days=1)
                               ).isoformat()
    found = await run_in_threadpool(console.activity, params)
    watched = await run_in_threadpool(console.watched)
    more = None
    if found["next_cursor"]:
        more = "?" + urlencode({**{k: v for k, v in filters.items() if v and k != "cursor"},
                                "cursor": found["next_cursor"]})
    return show(request, console, "admin_activity.html", filters=filters, watched=watched,
                records=found["records"], more=more)


def get(console: type[Console], path: str, handler: Handler) -> Route:
    return Route(BASE + path, page(console, handler), methods=["GET"])


def post(console: type[Console], path: str, handler: Handler) -> Route:
    return Route(BASE + path, page(console, handler, post=True), methods=["POST"])


def own_routes() -> list[BaseRoute]:
    """The console index and the audit administrator's page (the other two consoles'
    pages are ``admin_sys_pages`` and ``admin_sec_pages``; ``admin_routes`` joins them)."""
    return [
        Route(BASE, index, methods=["GET"]),
        get(AuditAdmin, "/activity", activity_page),
    ]
