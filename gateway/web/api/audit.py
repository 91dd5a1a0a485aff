"""The auditors' HTTP API: ``GET /api/v1/audit/records`` and ``GET /api/v1/audit/stats``.

Only the ``auditor`` role (审计管理员) may read; every request, refused ones
included, is itself appended to the audit log (``audit_query``) before the
response leaves. Malformed filters get 400 problem details naming the field; if
the audit record cannot be written the answer is 503 (no audit, no access).
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audit import AuditError, AuditQueryError, AuditRecord
from audit.query import parse_filters, query_records
from audit.stats import DIMENSIONS, usage_stats
from gateway.errors import Forbidden, Unauthorized, ValidationError
from gateway.idp.scopes import AUDIT_READ, InsufficientScope, require
from gateway.root import gateway_of
from gateway.web.api.problems import problem_json
from texts import Text

AUDITOR = "auditor"
STATS_PARAMS = ("by", "since", "until", "system", "resource", "department", "event_type")


_problem = problem_json


def _invalid(exc: AuditQueryError) -> ValidationError:
    return ValidationError(f"invalid filter {exc.field!r}: {exc.description}",
                           problems=[exc.description], field=exc.field)


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

    async def audit(self, outcome: str, status: int, reason: str, **extra: Any) -> None:
        await self.services.audit.append(AuditRecord(
            event_type="audit_query", outcome=outcome, status=status, reason=reason,
            extra=extra, **self.base))


async def _begin(request: Request, what: str) -> tuple[_Call | None, Response | None]:
    try:
        principal = await gateway_of(request).authenticator.authenticate(request)
    except Unauthorized as exc:
        return None, _problem(exc)
    call = _Call(request, principal)
    try:
        require(principal, AUDIT_READ)
    except InsufficientScope as exc:
        try:
            await call.audit("deny", 403, f"{what}: the token lacks the scope {exc.scope}",
                             path=request.url.path)
        except AuditError as audit_exc:
            return None, _problem(audit_exc)
        return None, _problem(exc)
    if AUDITOR not in set(getattr(principal, "roles", ()) or ()):
        try:
            await call.audit("deny", 403, f"{what}: the auditor role is required",
                             path=request.url.path)
        except AuditError as exc:
            return None, _problem(exc)
        return None, _problem(Forbidden("the auditor role is required"))
    return call, None


async def list_records(request: Request) -> Response:
    """``GET /api/v1/audit/records``: filters as query parameters, newest first."""
    call, refused = await _begin(request, "audit records")
    if refused is not None or call is None:
        return refused or _problem(Forbidden())
    try:
        f = parse_filters(dict(request.query_params))
    except AuditQueryError as exc:
        try:
            await call.audit("failure", 400, f"malformed filter {exc.field}")
        except AuditError as aexc:
            return _problem(aexc)
        return _problem(_invalid(exc))
    try:
        page = await asyncio.to_thread(query_records, call.services.engine, f)
        await call.audit("success", 200, "audit records queried", filters=f.as_dict(),
                         returned=len(page.records))
    except AuditError as exc:
        return _problem(exc)
    return JSONResponse({"records": page.records, "next_cursor": page.next_cursor})


async def stats(request: Request) -> Response:
    """``GET /api/v1/audit/stats?by=day,system&since=YYYY-MM-DD&until=...``: usage counts
    of events that named a system or resource (``event_type=`` narrows further)."""
    call, refused = await _begin(request, "audit stats")
    if refused is not None or call is None:
        return refused or _problem(Forbidden())
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
        return _problem(_invalid(exc))
    try:
        await call.audit("success", 200, "usage figures queried",
                         filters={k: v for k, v in q.items()})
    except AuditError as exc:
        return _problem(exc)
    return JSONResponse({"by": by, "rows": rows})


def routes() -> list[Route]:
    return [
        Route("/api/v1/audit/records", list_records, methods=["GET"]),
        Route("/api/v1/audit/stats", stats, methods=["GET"]),
    ]
