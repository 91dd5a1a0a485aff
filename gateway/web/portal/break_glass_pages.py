"""The break-glass pages (docs/break-glass.md):

    GET  /portal/break-glass                 request one; one's own; for a security
                                             administrator every one, with approve / end
    POST /portal/break-glass                 the request form
    POST /portal/break-glass/{id}/approve    a security administrator
    POST /portal/break-glass/{id}/end        a security administrator, with a reason
    GET  /portal/break-glass/review          the audit administrator's review queue
    POST /portal/break-glass/{id}/review     close it with a finding

The same desk as ``/api/v1/break-glass`` (``gateway.break_glass.desk``): its role
rules and its audit records. A portal session and, on every form, the CSRF token;
errors as readable pages. While the person's break-glass is active every portal page
shows the red banner (``pages.render``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.break_glass.desk import (
    AUDITOR,
    SECADMIN,
    Actor,
    BreakGlassDesk,
    refusal_audited,
)
from gateway.errors import AuditUnavailable, ValidationError, is_problem
from gateway.request_id import new_request_id
from gateway.root import gateway_of
from gateway.tables import systems
from gateway.web.portal.admin_pages import error_page, local_time, say, t_of
from gateway.web.portal.pages import csrf_ok, render, session_principal, to_sign_in
from texts import Text

BASE = "/portal/break-glass"
BACK = (BASE, "bg_back")  # staff reach these pages; the console's link would refuse them
_ID = re.compile(r"^bg_[0-9a-f]{16}\Z")

Handler = Callable[[Request, BreakGlassDesk, Actor, Any], Awaitable[Response]]


def page(handler: Handler, step: str, *, post: bool = False
         ) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind the session and, on a post, the CSRF token; every refusal is
    audited (``step`` its reason), the page's own checks (the token, the id, the
    duration's digits) included."""
    async def run(request: Request) -> Response:
        principal = session_principal(request)
        if principal is None or not principal.username:
            return to_sign_in(request)
        actor = Actor(principal.username, principal.department or None,
                      frozenset(principal.roles or ()),
                      source_ip=request.client.host if request.client else None,
                      via="portal", request_id=new_request_id())
        desk = gateway_of(request).break_glass
        bg_id = request.path_params.get("id")
        form = await request.form() if post else None
        try:
            if post and not csrf_ok(request, form):
                await run_in_threadpool(desk.refused, actor, step, None, ValidationError(Text(
                    "bg.csrf", "the form's CSRF token is missing or wrong")))
                return render(request, "admin_error.html", status=400,
                              title=t_of(request)("adm_err_400"),
                              detail=t_of(request)("csrf"), problems=[], request_id=None,
                              back=BACK)
            if bg_id is not None and not _ID.match(bg_id):
                raise ValidationError(Text("bg.unknown", "no break-glass {id!r}", id=bg_id))
            return await handler(request, desk, actor, form)
        except Exception as exc:
            if not is_problem(exc):
                raise
            if not refusal_audited(exc):
                try:
                    await run_in_threadpool(desk.refused, actor, step,
                                            bg_id if bg_id and _ID.match(bg_id) else None, exc)
                except AuditUnavailable as down:
                    return error_page(request, down, back=BACK)
            return error_page(request, exc, back=BACK)

    return run



def _done(path: str, action: str, target: str) -> Response:
    return RedirectResponse(f"{path}?" + urlencode({"done": action, "target": target}),
                            status_code=303)


def _info(request: Request) -> str | None:
    t = t_of(request)
    done = request.query_params.get("done", "")
    key = f"bg_done_{done}"
    return t(key, target=request.query_params.get("target", "")[:40]) if t.knows(key) else None


def _field(form: Any, name: str) -> str:
    value = form.get(name) if form is not None else None
    return value.strip() if isinstance(value, str) else ""


async def overview(request: Request, desk: BreakGlassDesk, actor: Actor, form: Any) -> Response:
    def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Any]]:
        mine = desk.listing(username=actor.username)
        everyone = desk.listing(within=actor) if SECADMIN in actor.roles else []
        with desk.engine.connect() as conn:
            codes = conn.execute(sa.select(systems.c.code, systems.c.name)
                                 .order_by(systems.c.code)).all()
        return mine, everyone, list(codes)

    mine, everyone, codes = await run_in_threadpool(load)
    return render(request, "break_glass.html", mine=mine, everyone=everyone, systems=codes,
                  info=_info(request), is_secadmin=SECADMIN in actor.roles,
                  is_auditor=AUDITOR in actor.roles, me=actor.username,
                  max_hours=desk.max_seconds // 3600, local_time=local_time)


async def submit(request: Request, desk: BreakGlassDesk, actor: Actor, form: Any) -> Response:
    minutes = _field(form, "minutes")
    if not minutes.isdigit() or len(minutes) > 5:
        raise ValidationError(Text("bg.duration", "the duration must be 1 to {max} minutes",
                                   max=desk.max_seconds // 60))
    made = await run_in_threadpool(lambda: desk.request(
        actor, system=_field(form, "system"), resource=_field(form, "resource") or None,
        reason=_field(form, "reason"), duration_seconds=int(minutes) * 60))
    return _done(BASE, "requested", made["id"])


async def approve(request: Request, desk: BreakGlassDesk, actor: Actor, form: Any) -> Response:
    bg_id = request.path_params["id"]
    view = await run_in_threadpool(desk.approve, actor, bg_id)
    # one approval of two: say that it waits for another administrator
    return _done(BASE, "approved" if view["state"] == "active" else "approved_once", bg_id)


async def end(request: Request, desk: BreakGlassDesk, actor: Actor, form: Any) -> Response:
    bg_id = request.path_params["id"]
    await run_in_threadpool(desk.end, actor, bg_id, _field(form, "reason"))
    return _done(BASE, "ended", bg_id)


async def review(request: Request, desk: BreakGlassDesk, actor: Actor, form: Any) -> Response:
    def load() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return desk.queue(actor), desk.queue(actor, closed=True)

    queue, closed = await run_in_threadpool(load)
    t = t_of(request)
    return render(request, "break_glass_review.html", queue=queue, closed=closed,
                  info=_info(request), local_time=local_time, say=lambda x: say(t, x))


async def close(request: Request, desk: BreakGlassDesk, actor: Actor, form: Any) -> Response:
    bg_id = request.path_params["id"]
    await run_in_threadpool(desk.close, actor, bg_id, _field(form, "finding"))
    return _done(BASE + "/review", "reviewed", bg_id)


def routes() -> list[BaseRoute]:
    return [
        Route(BASE, page(overview, "break_glass_list"), methods=["GET"]),
        Route(BASE, page(submit, "break_glass_requested", post=True), methods=["POST"]),
        Route(BASE + "/review", page(review, "break_glass_queue"), methods=["GET"]),
        Route(BASE + "/{id}/approve", page(approve, "break_glass_approved", post=True),
              methods=["POST"]),
        Route(BASE + "/{id}/end", page(end, "break_glass_ended", post=True),
              methods=["POST"]),
        Route(BASE + "/{id}/review", page(close, "break_glass_reviewed", post=True),
              methods=["POST"]),
    ]
