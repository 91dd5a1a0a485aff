"""The auditors' HTTP API (the auditor console's, ``gateway.web.audit_console``):

    GET /api/v1/audit/records              filters as query parameters, newest first, a page
    GET /api/v1/audit/records/{id}         one record and its place in its chain
    GET /api/v1/audit/export?format=csv|json|jsonl&<filters>   the whole filter as a file
    GET /api/v1/audit/verify?since=&until= hashes, links and checkpoint signatures checked
    GET /api/v1/audit/checkpoints?before=&limit=   signed checkpoints, newest first
    GET /api/v1/audit/stats                usage counts of events naming a system or resource

Only the ``auditor`` role (审计管理员) may read (a bearer token also needs the scope
``audit:read``); every request, refused ones included, is itself appended to the
audit log before the response leaves. Malformed filters get 400 problem details
naming the field; if the audit record cannot be written the answer is 503 (no
audit, no access).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from audit import AuditError, AuditLog, AuditQueryError, AuditRecord
from audit.position import record_position
from audit.query import parse_filters, query_records
from audit.stats import DIMENSIONS, usage_stats
from gateway.errors import (
    AuditUnavailable,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationError,
)
from gateway.idp.scopes import AUDIT_READ, InsufficientScope, require
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.api.problems import problem_json
from gateway.web.audit_console import (
    checked_checkpoints,
    export_chunks,
    is_auditor,
    parse_page,
    parse_range,
    prepare_export,
    report_dict,
    verify_range,
)
from texts import Text

STATS_PARAMS = ("by", "since", "until", "system", "resource", "department", "event_type")



def _invalid(exc: AuditQueryError) -> ValidationError:
    return ValidationError(f"invalid filter {exc.field!r}: {exc.description}",
                           problems=[exc.description], field=exc.field)


def _log(services: Services) -> AuditLog:
    """The audit log the console's own records go to."""
    return services.audit


class _Call:
    """One API call: who, from where, and how to audit it."""

    def __init__(self, request: Request, principal: Any) -> None:
        self.services = gateway_of(request).services
        self.base: dict[str, Any] = {
            "actor_user": getattr(principal, "username", None),
            "actor_client": getattr(principal, "client_id", None),
            "department": getattr(principal, "department", None),
            "source_ip": request.client.host if request.client else None,
            "request_id": request.headers.get("x-request-id"),
        }

    async def audit(self, outcome: str, status: int, reason: str, *,
                    event_type: str = "audit_query", **extra: Any) -> None:
        await _log(self.services).append(AuditRecord(
            event_type=event_type, outcome=outcome, status=status, reason=reason,
            extra=extra, **self.base))


async def _begin(request: Request, what: str) -> tuple[_Call | None, Response | None]:
    try:
        principal = await gateway_of(request).authenticator.authenticate(request)
    except Unauthorized as exc:
        return None, problem_json(exc)
    call = _Call(request, principal)
    try:
        require(principal, AUDIT_READ)
    except InsufficientScope as exc:
        return None, await _refuse(call, request, exc,
                                   f"{what}: the token lacks the scope {exc.scope}")
    if not is_auditor(principal):
        return None, await _refuse(call, request, Forbidden("the auditor role is required"),
                                   f"{what}: the auditor role is required")
    return call, None


async def _refuse(call: _Call, request: Request, exc: Exception, reason: str) -> Response:
    try:
        await call.audit("deny", 403, reason, path=request.url.path)
    except (AuditError, AuditUnavailable) as audit_exc:
        return problem_json(audit_exc)
    return problem_json(exc)


async def _bad_input(call: _Call, exc: AuditQueryError, what: str,
                     event_type: str = "audit_query") -> Response:
    try:
        await call.audit("failure", 400, f"{what}: malformed {exc.field}",
                         event_type=event_type)
    except (AuditError, AuditUnavailable) as aexc:
        return problem_json(aexc)
    return problem_json(_invalid(exc))


async def list_records(request: Request) -> Response:
    """``GET /api/v1/audit/records``: filters as query parameters, newest first."""
    call, refused = await _begin(request, "audit records")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    try:
        f = parse_filters(dict(request.query_params))
    except AuditQueryError as exc:
        return await _bad_input(call, exc, "audit records")
    try:
        page = await asyncio.to_thread(query_records, call.services.engine, f)
        await call.audit("success", 200, "audit records queried", filters=f.as_dict(),
                         returned=len(page.records))
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse({"records": page.records, "next_cursor": page.next_cursor})


async def one_record(request: Request) -> Response:
    """``GET /api/v1/audit/records/{id}``: the record, its writer, hash and links."""
    call, refused = await _begin(request, "audit record")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    raw = request.path_params["id"]
    position = (await asyncio.to_thread(record_position, call.services.engine, int(raw))
                if raw.isdigit() and len(raw) < 19 else None)
    try:
        await call.audit("success" if position else "failure", 200 if position else 404,
                         "audit record read", record=raw[:40])
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    if position is None:
        return problem_json(NotFound(Text("audit.no_record", "no audit record {id}",
                                              id=raw[:40])))
    return JSONResponse(position.to_dict())


async def export(request: Request) -> Response:
    """``GET /api/v1/audit/export``: every record of the filter, as a file."""
    call, refused = await _begin(request, "audit export")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    return await export_response(call, dict(request.query_params), _export_problem)


def _export_problem(exc: Exception) -> Response:
    return problem_json(_invalid(exc) if isinstance(exc, AuditQueryError) else exc)


async def export_response(call: Any, params: dict[str, str],
                          bad: Callable[[Exception], Response]) -> Response:
    """The export of ``params`` audited then streamed; ``bad(exc)`` answers a malformed
    filter (an ``AuditQueryError``) or an audit log that cannot take the record:
    problem details for the API, a page for the portal."""
    services = call.services
    try:
        prepared = await asyncio.to_thread(prepare_export, services.engine, params,
                                           services.clock())
    except AuditQueryError as exc:
        try:
            await call.audit("failure", 400, f"audit export refused: {exc.field}",
                             event_type="audit_export", params=params)
        except (AuditError, AuditUnavailable) as aexc:
            return bad(aexc)
        return bad(exc)
    try:
        await call.audit("success", 200, "audit records exported", event_type="audit_export",
                         **prepared.audit_extra())
    except (AuditError, AuditUnavailable) as exc:
        return bad(exc)
    engine = services.engine
    return StreamingResponse(
        iterate_in_threadpool(export_chunks(engine, prepared)),
        media_type=prepared.media_type,
        headers={"Content-Disposition": f'attachment; filename="{prepared.filename()}"',
                 "X-Record-Count": str(prepared.count), "Cache-Control": "no-store"})


async def verify(request: Request) -> Response:
    """``GET /api/v1/audit/verify?since=&until=``: the range (or the whole log) checked."""
    call, refused = await _begin(request, "audit verify")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    q = request.query_params
    try:
        for key in q:
            if key not in ("since", "until"):
                raise AuditQueryError(key, Text("audit.unknown_filter", "unknown filter"))
        since, until = parse_range(q)
    except AuditQueryError as exc:
        return await _bad_input(call, exc, "audit verify", "audit_verify")
    services = call.services
    rep = await asyncio.to_thread(verify_range, services.engine, services.keys, since, until)
    body = report_dict(rep)
    try:
        await call.audit("success" if rep.ok else "failure", 200, "audit log verified",
                         event_type="audit_verify", since=since, until=until,
                         intact=rep.ok, records=rep.records, problems=len(rep.problems))
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse(body)


async def checkpoints(request: Request) -> Response:
    """``GET /api/v1/audit/checkpoints?before=&limit=``: newest first, signatures checked."""
    call, refused = await _begin(request, "audit checkpoints")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    try:
        before, limit = parse_page(request.query_params)
    except AuditQueryError as exc:
        return await _bad_input(call, exc, "audit checkpoints")
    services = call.services
    found = await asyncio.to_thread(lambda: checked_checkpoints(
        services.engine, services.keys, before=before, limit=limit))
    try:
        await call.audit("success", 200, "audit checkpoints listed", returned=len(found))
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    more = len(found) == limit and found[-1].checkpoint.seq > 1
    return JSONResponse({"checkpoints": [c.to_dict() for c in found],
                         "next_before": found[-1].checkpoint.seq if more else None})


async def stats(request: Request) -> Response:
    """``GET /api/v1/audit/stats?by=day,system&since=YYYY-MM-DD&until=...``: usage counts
    of events that named a system or resource (``event_type=`` narrows further)."""
    call, refused = await _begin(request, "audit stats")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    q = request.query_params
    try:
        for key in q:
            if key not in STATS_PARAMS:
                raise AuditQueryError(key, "unknown parameter")
        by = [d.strip() for d in (q.get("by") or "day,system,resource,department").split(",")
              if d.strip()]
        for d in by:
            if d not in DIMENSIONS:
                raise AuditQueryError("by", Text("audit.not_one_of",
                                                 "{value!r} is not one of {known}",
                                                  value=d, known=", ".join(DIMENSIONS)))
        engine = call.services.engine
        rows = await asyncio.to_thread(
            lambda: usage_stats(
                engine, group_by=by, since_day=q.get("since") or None,
                until_day=q.get("until") or None, system=q.get("system") or None,
                resource=q.get("resource") or None, department=q.get("department") or None,
                event_type=q.get("event_type") or None))
    except AuditQueryError as exc:
        return problem_json(_invalid(exc))
    try:
        await call.audit("success", 200, "usage figures queried",
                         filters={k: v for k, v in q.items()})
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse({"by": by, "rows": rows})


def routes() -> list[Route]:
    return [
        Route("/api/v1/audit/records", list_records, methods=["GET"]),
        Route("/api/v1/audit/records/{id}", one_record, methods=["GET"]),
        Route("/api/v1/audit/export", export, methods=["GET"]),
        Route("/api/v1/audit/verify", verify, methods=["GET"]),
        Route("/api/v1/audit/checkpoints", checkpoints, methods=["GET"]),
        Route("/api/v1/audit/stats", stats, methods=["GET"]),
    ]
