"""The auditor console (审计控制台): pages over the audit log for the audit administrator.

    GET  /portal/audit                   filters, results newest first, pages (keyset)
    GET  /portal/audit/records/{id}      one record in full and its place in its chain
    GET  /portal/audit/export?format=csv|json&<filters>   the current filter as a file
    GET  /portal/audit/verify            the verification form
    POST /portal/audit/verify            verification of a range, its progress streamed
                                         into the page as it runs, then its result
    GET  /portal/audit/checkpoints       signed checkpoints, each signature checked

Only the ``auditor`` role; anyone else signed in gets the 403 page, and the refusal
is audited. Every page's read is audited like the API's (``gateway.web.audit_console``).
Times are shown and typed in China Standard Time (a time typed without a zone is
+08:00). Nothing needs JavaScript: the verification page is one response the
server writes as the check goes (a ``<progress>`` bar per step; the stylesheet shows
the last), and the result at its end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from audit import AuditError, AuditQueryError, AuditRecord
from audit.position import record_position
from audit.query import EXACT, parse_filters, query_records
from audit.record import OUTCOMES
from audit.tables import records
from gateway.errors import AuditUnavailable
from gateway.i18n import render as render_text
from gateway.request_id import new_request_id
from gateway.services import Services
from gateway.tables import departments, systems
from gateway.web.api.audit import export_response
from gateway.web.audit_console import (
    PROVINCE_ONLY,
    Reach,
    checked_checkpoints,
    count_in_range,
    is_auditor,
    log_reach,
    parse_page,
    parse_range,
    verify_range,
)
from gateway.web.portal.console_pages import (
    error_page,
    services_of,
    shown_time,
    unavailable,
)
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import (
    SECURITY_HEADERS,
    TEMPLATES,
    csrf_cookie_name,
    csrf_ok,
    page_lang,
    render,
    session_principal,
    to_sign_in,
)

BASE = "/portal/audit"
PAGE_SIZES = ("20", "50", "100")
FILTERS = ("since", "until", *EXACT, "text", "limit")
_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?\Z")


# -- plumbing -------------------------------------------------------------------------------

def _log(request: Request) -> Any:
    """The audit log the console's own records go to."""
    log = services_of(request).audit
    if log is None:
        raise AuditUnavailable("the audit log is not open")
    return log


class _Page:
    """One page view by a signed-in person: audits it under a request id."""

    def __init__(self, request: Request, principal: Any) -> None:
        self.request = request
        self.principal = principal
        self.request_id = new_request_id()
        self.services = services_of(request)
        self.reach = Reach(frozenset(), frozenset())  # nothing until _open says

    async def audit(self, outcome: str, status: int, reason: str, *,
                    event_type: str = "audit_query", **extra: Any) -> None:
        r = self.request
        await _log(r).append(AuditRecord(
            event_type=event_type, outcome=outcome, status=status, reason=reason,
            actor_user=self.principal.username, department=self.principal.department,
            source_ip=r.client.host if r.client else None, request_id=self.request_id,
            extra={"path": r.url.path, **extra}))


async def _open(request: Request, what: str, *, whole: bool = False
                ) -> tuple[_Page | None, Response | None]:
    """The page for an auditor, with their reach, or the answer for anyone else
    (sign-in, 403); ``whole``: what covers every record (verify, checkpoints), a
    province-level auditor's."""
    principal = session_principal(request)
    if principal is None:
        return None, to_sign_in(request)
    page = _Page(request, principal)
    engine = services_of(request).engine
    if is_auditor(principal):
        page.reach = await run_in_threadpool(log_reach, engine, principal)
        if page.reach.everything or not whole:
            return page, None
    why = PROVINCE_ONLY if is_auditor(principal) else "the auditor role is required"
    try:
        await page.audit("deny", 403, f"{what}: {why}")
    except (AuditError, AuditUnavailable):
        return None, unavailable(request)
    return None, error_page(request, 403, page.request_id)


def _t(request: Request) -> Translator:
    return Translator(page_lang(request))


def local_time(value: str) -> str:
    """A time typed in the page: without a zone it is China Standard Time."""
    value = value.strip()
    if _LOCAL_TIME.match(value):
        return (value if "T" in value else value + "T00:00") + "+08:00"
    return value


def _filter_params(request: Request) -> dict[str, str]:
    """The query's filters, as the audit query takes them (times made CST)."""
    q = request.query_params
    out = {k: q[k] for k in (*FILTERS, "cursor") if q.get(k)}
    for key in ("since", "until"):
        if key in out:
            out[key] = local_time(out[key])
    return out


def _choices(services: Services) -> dict[str, Any]:
    """What the filter's lists offer: departments, systems, event types seen."""

    with services.engine.connect() as conn:
        names = dict(conn.execute(sa.select(departments.c.code, departments.c.name)).all())
        system_names = dict(conn.execute(sa.select(systems.c.code, systems.c.name)).all())
        events = [r[0] for r in conn.execute(
            sa.select(records.c.event_type).distinct().order_by(records.c.event_type))]
    return {"dept_names": names, "system_names": system_names, "event_types": events}


# the audit query's messages the console words its own way (addressed to the person at
# the form, without the API's parameter names): Text key → portal entry
PORTAL_WORDING = {
    "audit.not_a_time": "aud_err_time",
    "audit.after_since": "aud_err_after_since",
    "audit.bad_value": "aud_err_bad_value",
    "audit.not_a_cursor": "aud_err_cursor",
    "audit.not_one_of": "aud_err_not_one_of",
    "audit.text_length": "aud_err_text_length",
    "audit.export_too_many": "aud_err_too_many",
}


def _field_error(request: Request, exc: AuditQueryError) -> str:
    """``field: problem`` in the page's language."""
    t = _t(request)
    text = exc.reason
    key = PORTAL_WORDING.get(getattr(text, "key", ""))
    problem = (t(key, **getattr(text, "params", {})) if key
               else render_text(text, t.lang))
    return f"{t.value('aud_f_', exc.field)}: {problem}"


def _common(page: _Page) -> dict[str, Any]:
    return {"principal": page.principal, "shown_time": shown_time, "say": _say(page.request)}


def _say(request: Request) -> Any:
    lang = page_lang(request)
    return lambda text: render_text(text, lang)


# -- search ---------------------------------------------------------------------------------

async def search_page(request: Request) -> Response:
    page, refused = await _open(request, "audit console")
    if page is None:
        return refused or to_sign_in(request)
    q = request.query_params
    form = {k: q.get(k, "") for k in FILTERS}
    form["limit"] = form["limit"] if form["limit"] in PAGE_SIZES else PAGE_SIZES[0]
    params = {**_filter_params(request), "limit": form["limit"]}
    error: str | None = None
    found: Any = None
    try:
        f = page.reach.within(parse_filters(params))
        await run_in_threadpool(page.services.settle_audit)
        found = await run_in_threadpool(query_records, page.services.engine, f)
        await page.audit("success", 200, "audit records queried (portal)",
                         filters=f.as_dict(), returned=len(found.records))
    except AuditQueryError as exc:
        error = _field_error(request, exc)
        try:
            await page.audit("failure", 400, f"audit records: malformed {exc.field}")
        except (AuditError, AuditUnavailable):
            return unavailable(request)
    except (AuditError, AuditUnavailable):
        return unavailable(request)
    kept = {k: v for k, v in form.items() if v}
    next_url = (f"{BASE}?" + urlencode({**kept, "cursor": found.next_cursor})
                if found is not None and found.next_cursor else None)
    export_query = urlencode({k: v for k, v in kept.items() if k != "limit"})
    choices = await run_in_threadpool(_choices, page.services)
    return render(request, "audit_search.html", status=400 if error else 200, form=form,
                  error=error, rows=found.records if found else [], next_url=next_url,
                  first_url=f"{BASE}?" + urlencode(kept) if q.get("cursor") else None,
                  export_query=export_query, outcomes=sorted(OUTCOMES),
                  page_sizes=PAGE_SIZES, **choices, **_common(page))


# -- one record -----------------------------------------------------------------------------

async def record_page(request: Request) -> Response:
    page, refused = await _open(request, "audit record")
    if page is None:
        return refused or to_sign_in(request)
    raw = request.path_params["id"]
    position = (await run_in_threadpool(record_position, page.services.engine, int(raw))
                if raw.isdigit() and len(raw) < 19 else None)
    if position is not None and not page.reach.holds(position.record):
        position = None  # outside the reader's reach: as if there were none
    try:
        await page.audit("success" if position else "failure", 200 if position else 404,
                         "audit record read (portal)", record=raw[:40])
    except (AuditError, AuditUnavailable):
        return unavailable(request)
    if position is None:
        return error_page(request, 404, page.request_id)
    choices = await run_in_threadpool(_choices, page.services)
    return render(request, "audit_record.html", p=position, r=position.record, **choices,
                  **_common(page))


# -- export ---------------------------------------------------------------------------------

async def export_file(request: Request) -> Response:
    page, refused = await _open(request, "audit export")
    if page is None:
        return refused or to_sign_in(request)
    params = _filter_params(request)
    params.pop("cursor", None)
    params.pop("limit", None)
    if request.query_params.get("format"):
        params["format"] = request.query_params["format"]

    def bad(exc: Exception) -> Response:
        if not isinstance(exc, AuditQueryError):
            return unavailable(request)
        back = {k: v for k, v in request.query_params.items() if k != "format"}
        return render(request, "audit_message.html", status=400,
                      title_key="aud_export_refused", lines=[_field_error(request, exc)],
                      back=f"{BASE}?" + urlencode(back), **_common(page))

    return await export_response(page, params, bad)


# -- verify ---------------------------------------------------------------------------------

async def verify_form(request: Request) -> Response:
    page, refused = await _open(request, "audit verify", whole=True)
    if page is None:
        return refused or to_sign_in(request)
    return render(request, "audit_verify.html", form={"since": "", "until": ""}, error=None,
                  **_common(page))


async def verify_run(request: Request) -> Response:
    page, refused = await _open(request, "audit verify", whole=True)
    if page is None:
        return refused or to_sign_in(request)
    form_data = await request.form()
    form = {k: str(form_data.get(k) or "").strip() for k in ("since", "until")}
    t = _t(request)
    if not csrf_ok(request, form_data):
        return render(request, "audit_verify.html", status=400, form=form, error=t("csrf"),
                      **_common(page))
    try:
        since, until = parse_range({k: local_time(v) for k, v in form.items() if v})
    except AuditQueryError as exc:
        return render(request, "audit_verify.html", status=400, form=form,
                      error=_field_error(request, exc),
                      **_common(page))
    services = page.services
    total = await run_in_threadpool(count_in_range, services.engine, since, until)
    lang = page_lang(request)
    context = {"t": t, "lang": lang, "csrf": request.cookies.get(csrf_cookie_name(request), ""),
               "lang_query": urlencode({"lang": "en" if lang == "zh" else "zh"}),
               "form": form, "total": total, "since": shown_time(since),
               "until": shown_time(until), **_common(page)}
    head, _, rest = TEMPLATES.get_template("audit_verify_run.html").render(
        **context).partition("<!--progress-->")
    middle, _, tail = rest.partition("<!--result-->")
    fragment: Any = TEMPLATES.get_template("audit_verify_parts.html").module

    async def body() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        steps: asyncio.Queue[int] = asyncio.Queue()

        def progress(n: int) -> None:
            loop.call_soon_threadsafe(steps.put_nowait, n)

        yield head.encode()
        yield fragment.step(t, 0, total).encode()
        task = asyncio.ensure_future(asyncio.to_thread(
            verify_range, services.engine, services.keys, since, until, progress,
            journal=services.settings.audit_journal_path,
            checkpoint_seconds=services.settings.audit_checkpoint_seconds))
        while not task.done():
            getter = asyncio.ensure_future(steps.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield fragment.step(t, getter.result(), total).encode()
            else:
                getter.cancel()
        rep = task.result()
        try:
            await page.audit("success" if rep.intact else "failure", 200,
                             "audit log verified (portal)", event_type="audit_verify",
                             since=since, until=until, intact=rep.intact,
                             unanchored=rep.unanchored, records=rep.records,
                             problems=len(rep.problems))
            audited = True
        except (AuditError, AuditUnavailable):
            audited = False
        yield fragment.step(t, rep.records, max(total, rep.records), True).encode()
        yield middle.encode()
        yield fragment.result(t, rep, audited, _say(request)).encode()
        yield tail.encode()

    return StreamingResponse(body(), media_type="text/html; charset=utf-8", headers={
        **SECURITY_HEADERS, "X-Accel-Buffering": "no", "X-Request-ID": page.request_id})


# -- checkpoints ----------------------------------------------------------------------------

async def checkpoints_page(request: Request) -> Response:
    page, refused = await _open(request, "audit checkpoints", whole=True)
    if page is None:
        return refused or to_sign_in(request)
    try:
        before, limit = parse_page(request.query_params, max_limit=200)
    except AuditQueryError:
        before, limit = None, 50
    services = page.services
    found = await run_in_threadpool(lambda: checked_checkpoints(
        services.engine, services.keys, before=before, limit=limit))
    try:
        await page.audit("success", 200, "audit checkpoints listed (portal)",
                         returned=len(found))
    except (AuditError, AuditUnavailable):
        return unavailable(request)
    more = len(found) == limit and found[-1].checkpoint.seq > 1
    return render(request, "audit_checkpoints.html", found=found,
                  next_url=f"{BASE}/checkpoints?" + urlencode(
                      {"before": found[-1].checkpoint.seq}) if more else None,
                  **_common(page))


def routes() -> list[BaseRoute]:
    return [
        Route(BASE, search_page, methods=["GET"]),
        Route(f"{BASE}/records/{{id}}", record_page, methods=["GET"]),
        Route(f"{BASE}/export", export_file, methods=["GET"]),
        Route(f"{BASE}/verify", verify_form, methods=["GET"]),
        Route(f"{BASE}/verify", verify_run, methods=["POST"]),
        Route(f"{BASE}/checkpoints", checkpoints_page, methods=["GET"]),
    ]
