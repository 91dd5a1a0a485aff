"""The delegation pages (委托, ``gateway.delegations``; docs/delegation.md).

    GET  /portal/delegations                  acting now (and stop), the people one may act
                                              for with their systems marked 代理 A, the
                                              request form, the approval queue (department
                                              heads), every delegation one gave, received
                                              or decides, with revoke
    POST /portal/delegations                  A asks (delegate, roles, systems, dates, reason)
    POST /portal/delegations/{id}/{action}    approve | reject | revoke | act (B chooses to
                                              act for A: the ``gg_act`` cookie)
    POST /portal/delegations/stop             B stops acting

Every form carries the CSRF token; a refusal is the page again with the reason in
the page's language (400, 403, 404, 409), and is audited by ``Delegations``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.delegation_moves import DISABLED
from gateway.delegations import APPROVED, REQUESTED, Delegation, Delegations
from gateway.errors import GovgateError, NotFound
from gateway.i18n import render as say
from gateway.org import ADMIN_ROLES, User
from gateway.proxy.acting import ACT_COOKIE, choice, chosen, chosen_id
from gateway.root import gateway_of
from gateway.web.delegation_common import acting_entries, codes, held_systems, person, when
from gateway.web.portal.admin_pages import local_time
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import (
    csrf_ok,
    page_lang,
    render,
    render_message,
    session_principal,
    to_sign_in,
)
from texts import message_of

BASE = "/portal/delegations"
ACTIONS = ("approve", "reject", "revoke", "act")


def ended_why(d: Delegation) -> tuple[str, dict[str, str]] | None:
    """Why a revoked or ended delegation is over, as a message key and its values: who
    revoked it (the delegator or another), or what ended it (``note``, written by
    ``gateway.delegation_moves``: a move, a disable, a 三员 role, the account gone);
    None for the others (their state says it all: an expiry is ``expired``)."""
    if d.state == "revoked" and d.revoked_by:
        if d.revoked_by == d.delegator:
            return "dlg_revoked_by_delegator", {"name": d.revoked_by}
        return "dlg_revoked_by", {"name": d.revoked_by}
    if d.state != "ended":
        return None
    who, _, move = (d.note or "").partition(": ")
    _was, _, now_in = move.partition(" -> ")
    if now_in == DISABLED:
        return "dlg_ended_disabled", {"who": who}
    if now_in.startswith("(") and now_in.endswith(")"):
        return "dlg_ended_admin_role", {"who": who, "role": now_in[1:-1]}
    if now_in in ("", "-"):
        return "dlg_ended_gone", {"who": who}
    return "dlg_ended_moved", {"who": who, "move": move}


def _page_data(request: Request, me: User, session_id: str | None) -> dict[str, Any]:
    gw = gateway_of(request)
    book = Delegations(gw.services)
    now = gw.services.clock()
    visible = book.visible_to(me)
    number = chosen_id(gw.services.keys, session_id,
                       chosen({"cookie": request.headers.get("cookie", "")}))
    acting = None
    if number is not None:
        try:
            d: Delegation | None = book.get(number)
        except NotFound:
            d = None
        live = d is not None and d.delegate == me.username and d.live_at(now)
        a = gw.services.live_users.get(d.delegator) if d is not None and live else None
        acting = {"id": number, "live": live, "username": d.delegator if d else "",
                  "name": a.name if a is not None else ""}
    held = sorted(held_systems(gw, me)) if not me.is_admin else []
    return {
        "waiting": _waiting(book, [d for d in visible if d.state_at(now) == REQUESTED],
                            page_lang(request)),
        "me": me,
        "acting": acting,
        "entries": acting_entries(gw, me.username),
        "queue": [d for d in visible if d.state_at(now) == REQUESTED and book.may_decide(me, d)],
        "rows": [(d, d.state_at(now)) for d in visible],
        "ended_why": {d.id: why for d in visible if (why := ended_why(d)) is not None},
        "may_revoke": {d.id for d in visible
                       if d.state_at(now) in (REQUESTED, APPROVED) and book.may_revoke(me, d)},
        "my_roles": sorted(me.roles - ADMIN_ROLES),
        "my_systems": held,
        "max_days": gw.services.settings.delegation_max_days,
    }


def _waiting(book: Delegations, pending: list[Delegation], lang: str
             ) -> dict[int, dict[str, Any]]:
    """For each request awaiting a decision: who may decide it, or, when nobody may,
    why (the department has no active head, or its only heads are A or B) and the
    heads who are party to it. A sole head asked to be a delegate otherwise waited
    with no word of why (walk of 2026-12-05, second)."""
    def names(people: list[User]) -> str:
        if lang == "zh":
            return "、".join(f"{u.name}（{u.username}）" for u in people)
        return ", ".join(f"{u.name} ({u.username})" for u in people)

    heads: dict[str, list[User]] = {}
    out = {}
    for d in pending:
        if d.department not in heads:
            heads[d.department] = book.heads(d.department)
        found = heads[d.department]
        out[d.id] = {"deciders": names(book.deciders(d, found)),
                     "party": names([u for u in found
                                     if u.username in (d.delegator, d.delegate)])}
    return out


async def _show(request: Request, me: User, status: int = 200, error: str = "",
                form: dict[str, Any] | None = None) -> Response:
    principal = session_principal(request)
    data = await run_in_threadpool(_page_data, request, me,
                                   principal.session_id if principal else None)
    t = Translator(page_lang(request))
    done, done_id = request.query_params.get("done"), request.query_params.get("id", "")
    info = None
    if done == "stop" or (done in ACTIONS and done_id.isdigit()):
        info = t(f"dlg_done_{done}", id=done_id)
    elif done == "request" and done_id.isdigit():
        waiting = data["waiting"].get(int(done_id)) if len(done_id) <= 9 else None
        if waiting is not None and not waiting["deciders"]:
            info = t("dlg_done_request_nobody", id=done_id)
        elif waiting is not None:
            info = t("dlg_done_request_by", id=done_id, names=waiting["deciders"])
        else:
            info = t("dlg_done_request", id=done_id)
    # Beijing time, as every other portal page shows times (it said UTC)
    return render(request, "delegations.html", status=status, error=error, info=info,
                  form=form or {}, local_time=local_time, **data)


def _me(request: Request) -> User | None:
    principal = session_principal(request)
    if principal is None:
        return None
    try:
        return person(gateway_of(request), principal)
    except GovgateError:
        return None


async def delegations_page(request: Request) -> Response:
    me = _me(request)
    if me is None:
        return to_sign_in(request)
    return await _show(request, me)


def _refused(request: Request, exc: Exception) -> str:
    return say(message_of(exc), page_lang(request))


async def request_submit(request: Request) -> Response:
    me = _me(request)
    if me is None:
        return to_sign_in(request)
    form = await request.form()
    if not csrf_ok(request, form):
        return render_message(request, "error", Translator(page_lang(request))("csrf"),
                              status=400)
    gw = gateway_of(request)
    values = {k: str(form.get(k) or "") for k in ("delegate", "starts_at", "ends_at", "reason")}

    def ask() -> int:
        now = gw.services.clock()
        made = Delegations(gw.services).request(
            me, delegate=values["delegate"].strip(),
            roles=codes(" ".join(str(v) for v in form.getlist("roles")), "roles"),
            systems=codes(" ".join(str(v) for v in form.getlist("systems")), "systems"),
            starts_at=when(values["starts_at"], "starts_at", end=False, now=now)
            if values["starts_at"].strip() else None,
            ends_at=when(values["ends_at"], "ends_at", end=True, now=now),
            reason=values["reason"], held_systems=lambda: held_systems(gw, me), via="portal")
        return made.id

    try:
        new_id = await run_in_threadpool(ask)
    except GovgateError as exc:
        return await _show(request, me, status=exc.status, error=_refused(request, exc),
                           form=values)
    return RedirectResponse(f"{BASE}?" + urlencode({"done": "request", "id": new_id}),
                            status_code=303)


async def action_submit(request: Request) -> Response:
    me = _me(request)
    if me is None:
        return to_sign_in(request)
    action = request.path_params["action"]
    raw = request.path_params["id"]
    if action not in ACTIONS or not raw.isdigit() or len(raw) > 9:
        return render_message(request, "error", status=404)
    number = int(raw)
    principal = session_principal(request)
    sid = principal.session_id if principal is not None and principal.session_id else ""
    form = await request.form()
    if not csrf_ok(request, form):
        return render_message(request, "error", Translator(page_lang(request))("csrf"),
                              status=400)
    gw = gateway_of(request)
    book = Delegations(gw.services)
    secure = gw.provider.secure_cookies

    def act() -> Response:
        if action == "approve":
            book.approve(me, number)
        elif action == "reject":
            book.reject(me, number, str(form.get("note") or ""))
        elif action == "revoke":
            book.revoke(me, number)
        else:
            d = book.start_acting(me, number)
            response = RedirectResponse("/portal", status_code=303)
            response.set_cookie(ACT_COOKIE, choice(gw.services.keys, sid, d.id), httponly=True,
                                samesite="lax", secure=secure, path="/")
            return response
        return RedirectResponse(f"{BASE}?" + urlencode({"done": action, "id": number}),
                                status_code=303)

    try:
        return await run_in_threadpool(act)
    except GovgateError as exc:
        return await _show(request, me, status=exc.status, error=_refused(request, exc))


async def stop_submit(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form):
        return render_message(request, "error", Translator(page_lang(request))("csrf"),
                              status=400)
    response = RedirectResponse(f"{BASE}?done=stop", status_code=303)
    response.delete_cookie(ACT_COOKIE, path="/")
    return response


def routes() -> list[BaseRoute]:
    return [
        Route(BASE, delegations_page, methods=["GET"]),
        Route(BASE, request_submit, methods=["POST"]),
        Route(f"{BASE}/stop", stop_submit, methods=["POST"]),
        Route(f"{BASE}/{{id}}/{{action}}", action_submit, methods=["POST"]),
    ]
