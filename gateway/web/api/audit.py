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

from audit import AuditError, AuditLog, AuditQueryError, AuditRecord
from audit.position import record_position
from audit.query import EXACT, MAX_LIMIT, parse_filters, query_records
from audit.record import OUTCOMES
from audit.stats import DIMENSIONS, usage_stats
from gateway.errors import (
    AuditUnavailable,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationError,
)
from gateway.idp.scopes import AUDIT_READ, InsufficientScope, require
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.api import shapes as s
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation, Param
from gateway.web.api.problems import problem_json
from gateway.web.api.schema_check import JSON
from gateway.web.audit_console import (
    EXPORT_TYPES,
    PROVINCE_ONLY,
    Reach,
    checked_checkpoints,
    export_chunks,
    is_auditor,
    log_reach,
    parse_page,
    parse_range,
    prepare_export,
    report_dict,
    verify_range,
)
from texts import Text

STATS_PARAMS = ("by", "since", "until", "system", "resource", "department", "event_type")
WHO = Access((AUDIT_READ,), roles="auditors (审计管理员)")
TIME_RULE = ("a time is neither ISO 8601 nor epoch milliseconds, or ``until`` is not after "
             "``since``")


def declare(path: str, summary: str, answer: Answer, **more: Any) -> Operation:
    return Operation("GET", "/api/v1/audit" + path, summary, "audit", WHO, {200: answer},
                     **more)


#: audit.query._NAME, in ASCII (the names and codes filtered on are)
NAME: JSON = {"type": "string", "pattern": "^[A-Za-z0-9_.:@/+-]{1,128}$"}
TIME_PARAMS = (Param("since", {"type": "string", "maxLength": 64},
                     "from this time (ISO 8601, naive is UTC; or epoch ms), inclusive"),
               Param("until", {"type": "string", "maxLength": 64}, "before this time"))
FILTERS = (*TIME_PARAMS,
           *(Param(k, {"type": "string", "enum": sorted(OUTCOMES)} if k == "outcome" else NAME,
                   "the record's user, or the delegate who acted for them (委托; each "
                   "record's matched_as says which)" if k == "user" else "")
             for k in EXACT),
           Param("text", {"type": "string", "maxLength": 200},
                 "a substring of the reason, purpose or extra fields, without case"))
RECORD = s.obj({"id": s.INT, "chain_id": s.TEXT, "seq": s.INT, "ts": s.INT, "time": s.TIME,
                "event_type": s.TEXT, "outcome": s.TEXT, "items": s.array(s.TEXT),
                "extra": s.FREE, "hash": s.TEXT, "prev_hash": s.TEXT,
                # with the user filter: the user is the record's (user) or acted for
                # its user as a delegate (delegate: extra.act.sub, 委托)
                "matched_as": {"enum": ["user", "delegate"]}},
               ["id", "chain_id", "seq", "ts", "time", "event_type", "outcome"])




def _invalid(exc: AuditQueryError) -> ValidationError:
    return ValidationError(Text("audit.invalid_filter", "invalid filter {field!r}: {problem}",
                                field=exc.field, problem=exc.description),
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
        self.reach = Reach(frozenset(), frozenset())  # nothing until _begin says

    async def audit(self, outcome: str, status: int, reason: str, *,
                    event_type: str = "audit_query", **extra: Any) -> None:
        await _log(self.services).append(AuditRecord(
            event_type=event_type, outcome=outcome, status=status, reason=reason,
            extra=extra, **self.base))


async def _begin(request: Request, what: str, *, whole: bool = False
                 ) -> tuple[_Call | None, Response | None]:
    """The call of an auditor (refused and audited otherwise) with their reach; ``whole``:
    what covers every record (verify, checkpoints, figures), a province-level auditor's."""
    try:
        principal = await gateway_of(request).authenticator.authenticate(request)
    except (Unauthorized, TooManyRequests) as exc:
        return None, problem_json(exc)
    call = _Call(request, principal)
    try:
        require(principal, AUDIT_READ)
    except InsufficientScope as exc:
        return None, await _refuse(call, request, exc,
                                   f"{what}: the token lacks the scope {exc.scope}")
    if not is_auditor(principal):
        return None, await _refuse(call, request, Forbidden(Text(
            "audit.auditor_only", "the auditor role is required")),
                                   f"{what}: the auditor role is required")
    call.reach = await asyncio.to_thread(log_reach, call.services.engine, principal)
    if whole and not call.reach.everything:
        return None, await _refuse(call, request, Forbidden(PROVINCE_ONLY),
                                   f"{what}: {PROVINCE_ONLY}")
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


async def _declared(call: _Call, request: Request, op: Operation, what: str,
                    event_type: str = "audit_query") -> Response | None:
    """The 400 (audited) when the parameters do not match ``op``'s declaration."""
    try:
        op.check_params(request)
    except ValidationError as exc:
        try:
            await call.audit("failure", 400, f"{what}: malformed parameters",
                             event_type=event_type)
        except (AuditError, AuditUnavailable) as aexc:
            return problem_json(aexc)
        return problem_json(exc)
    return None


RECORDS = declare(
    "/records", "Audit records, newest first, a page at a time",
    Answer("A page, and the cursor of the next (null: the last page)",
           s.obj({"records": s.array(RECORD), "next_cursor": s.NULLABLE_TEXT},
                 ["records", "next_cursor"])),
    query=(*FILTERS, Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                           "records per page (100)"),
           Param("cursor", {"type": "string", "maxLength": 200},
                 "``next_cursor`` of the previous page")),
    rules=TIME_RULE + ", or the cursor is not one this API gave, or a parameter is unknown")


async def list_records(request: Request) -> Response:
    """``GET /api/v1/audit/records``: filters as query parameters, newest first."""
    call, refused = await _begin(request, "audit records")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    if bad := await _declared(call, request, RECORDS, "audit records"):
        return bad
    try:
        f = call.reach.within(parse_filters(dict(request.query_params)))
    except AuditQueryError as exc:
        return await _bad_input(call, exc, "audit records")
    try:
        await asyncio.to_thread(call.services.settle_audit)
        page = await asyncio.to_thread(query_records, call.services.engine, f)
        await call.audit("success", 200, "audit records queried", filters=f.as_dict(),
                         returned=len(page.records))
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse({"records": page.records, "next_cursor": page.next_cursor})


NEIGHBOUR = {"type": ["object", "null"], "properties": {
    "id": s.INT, "seq": s.INT, "hash": s.TEXT, "prev_hash": s.TEXT}}
ONE_RECORD = declare(
    "/records/{id}", "One record and its place in its chain",
    Answer("The record, its writer, its hash recomputed, its neighbours, the checkpoint "
           "that covers it", s.obj({
               "record": RECORD, "writer": s.NULLABLE_TEXT, "hash_name": s.TEXT,
               "hash_ok": s.BOOL, "previous": NEIGHBOUR, "prev_ok": {"type": ["boolean", "null"]},
               "next": NEIGHBOUR, "next_ok": {"type": ["boolean", "null"]},
               "checkpoint": {"type": ["object", "null"]}}, ["record", "hash_ok"])),
    path_params=(Param("id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                       "the record's number"),))


async def one_record(request: Request) -> Response:
    """``GET /api/v1/audit/records/{id}``: the record, its writer, hash and links."""
    call, refused = await _begin(request, "audit record")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    if bad := await _declared(call, request, ONE_RECORD, "audit record"):
        return bad
    raw = request.path_params["id"]
    position = (await asyncio.to_thread(record_position, call.services.engine, int(raw))
                if raw.isdigit() and len(raw) < 19 else None)
    if position is not None and not call.reach.holds(position.record):
        position = None  # outside the reader's reach: as if there were none
    try:
        await call.audit("success" if position else "failure", 200 if position else 404,
                         "audit record read", record=raw[:40])
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    if position is None:
        return problem_json(NotFound(Text("audit.no_record", "no audit record {id}",
                                              id=raw[:40])))
    return JSONResponse(position.to_dict())


EXPORT = declare(
    "/export", "Every record of a filter, as one file",
    Answer("The file (CSV with a BOM, one JSON document, or JSON lines)",
           media=tuple(t.split(";")[0] for t in EXPORT_TYPES.values()),
           headers={"Content-Disposition": {"required": True, "schema": s.TEXT},
                    "X-Record-Count": {"required": True, "schema": s.TEXT}}),
    query=(Param("format", {"type": "string", "enum": sorted(EXPORT_TYPES)}, "csv (default)"),
           *FILTERS),
    rules=TIME_RULE + ", or the filter matches more records than one export holds "
                      "(100 000), or a parameter is unknown")


async def export(request: Request) -> Response:
    """``GET /api/v1/audit/export``: every record of the filter, as a file."""
    call, refused = await _begin(request, "audit export")
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    if bad := await _declared(call, request, EXPORT, "audit export", "audit_export"):
        return bad
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
                                           services.clock(), call.reach)
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


VERIFY = declare(
    "/verify", "Check hashes, links and checkpoint signatures",
    Answer("The report", s.obj({
        "intact": s.BOOL, "unanchored": s.BOOL, "summary": s.TEXT, "records": s.INT,
        "chains": s.INT,
        "checkpoints": s.INT, "first_time": s.NULLABLE_TIME, "last_time": s.NULLABLE_TIME,
        "problems": s.array(s.obj({"kind": s.TEXT, "where": s.TEXT, "detail": s.TEXT},
                                  ["kind", "where", "detail"]))},
        ["intact", "summary", "records", "problems"])),
    query=TIME_PARAMS, rules=TIME_RULE + ", or a parameter is unknown")


async def verify(request: Request) -> Response:
    """``GET /api/v1/audit/verify?since=&until=``: the range (or the whole log) checked."""
    call, refused = await _begin(request, "audit verify", whole=True)
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    if bad := await _declared(call, request, VERIFY, "audit verify", "audit_verify"):
        return bad
    q = request.query_params
    try:
        for key in q:
            if key not in ("since", "until"):
                raise AuditQueryError(key, Text("audit.unknown_filter", "unknown filter"))
        since, until = parse_range(q)
    except AuditQueryError as exc:
        return await _bad_input(call, exc, "audit verify", "audit_verify")
    services = call.services
    rep = await asyncio.to_thread(
        verify_range, services.engine, services.keys, since, until,
        journal=services.settings.audit_journal_path,
        checkpoint_seconds=services.settings.audit_checkpoint_seconds)
    body = report_dict(rep)
    try:
        await call.audit("success" if rep.intact else "failure", 200, "audit log verified",
                         event_type="audit_verify", since=since, until=until,
                         intact=rep.intact, unanchored=rep.unanchored, records=rep.records,
                         problems=len(rep.problems))
    except (AuditError, AuditUnavailable) as exc:
        return problem_json(exc)
    return JSONResponse(body)


CHECKPOINTS = declare(
    "/checkpoints", "Signed checkpoints, newest first, signatures checked",
    Answer("A page, and where the next one starts (null: the last page)", s.obj({
        "checkpoints": s.array(s.obj({
            "seq": s.INT, "ts": s.INT, "time": s.TIME, "hash": s.TEXT, "prev_hash": s.TEXT,
            "hash_name": s.TEXT, "payload": s.TEXT, "kid": s.TEXT, "signature": s.TEXT,
            "writer": s.TEXT, "signature_ok": s.BOOL}, ["seq", "ts", "signature_ok"])),
        "next_before": {"type": ["integer", "null"]}}, ["checkpoints", "next_before"])),
    query=(Param("before", {"type": "integer", "minimum": 0, "maximum": 10**15},
                 "checkpoints numbered below this"),
           Param("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "50")),
    description="A query parameter it does not name is refused (400).")


async def checkpoints(request: Request) -> Response:
    """``GET /api/v1/audit/checkpoints?before=&limit=``: newest first, signatures checked."""
    call, refused = await _begin(request, "audit checkpoints", whole=True)
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    if bad := await _declared(call, request, CHECKPOINTS, "audit checkpoints"):
        return bad
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


STATS = declare(
    "/stats", "Usage counts of events that named a system or resource",
    Answer("One row per combination of the dimensions, with its count", s.obj({
        "by": s.array({"type": "string", "enum": list(DIMENSIONS)}),
        "rows": s.array(s.obj({"count": s.INT}, ["count"]))}, ["by", "rows"])),
    query=(Param("by", {"type": "string", "maxLength": 200, "pattern":
                        "^ *({d})? *(, *({d})? *)*$".format(d="|".join(DIMENSIONS))},
                 "dimensions, comma-separated (day,system,resource,department)"),
           Param("since", s.DATE, "from this day (UTC), inclusive"),
           Param("until", s.DATE, "to this day, inclusive"),
           Param("system", NAME), Param("resource", NAME), Param("department", NAME),
           Param("event_type", NAME)),
    rules="``until`` is before ``since``, or a parameter is unknown")


async def stats(request: Request) -> Response:
    """``GET /api/v1/audit/stats?by=day,system&since=YYYY-MM-DD&until=...``: usage counts
    of events that named a system or resource (``event_type=`` narrows further)."""
    call, refused = await _begin(request, "audit stats", whole=True)
    if refused is not None or call is None:
        return refused or problem_json(Forbidden())
    if bad := await _declared(call, request, STATS, "audit stats"):
        return bad
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


def routes() -> list[ApiRoute]:
    return [RECORDS.route(list_records), ONE_RECORD.route(one_record), EXPORT.route(export),
            VERIFY.route(verify), CHECKPOINTS.route(checkpoints), STATS.route(stats)]
