"""The security and audit administrators' API, under ``/api/v1/admin``.

Security administrator (安全管理员):

    GET  /policies?department=&subject=        the lines of the admin's departments (and *)
    POST /policies         {subject, department, object, action, effect?, ungoverned?} → 201
    POST /policies/{id}/remove
    GET  /policies/test?subject=&department=&system=&path=&method=
                           what the proxy decides, with the rule, reason and line
    GET  /grants?active=&resource=
    POST /grants/{id}/revoke   {reason}
    GET  /keys
    POST /keys/rotate      {uses?: [token|assertion|audit], now?: bool}  (province level)
    GET  /security-policy  the password and session policy (read-only: the settings)

Audit administrator (审计管理员):

    GET  /activity?since=&until=&user=&outcome=&text=&limit=&cursor=
                           the sysadmin and secadmin accounts' admin_change records

Rules and audit: ``gateway.admin.secadmin``, ``gateway.admin.activity``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from audit import AuditQueryError
from audit.query import MAX_LIMIT
from audit.record import OUTCOMES
from gateway.admin.activity import AuditAdmin
from gateway.admin.secadmin import SecAdmin
from gateway.errors import ValidationError
from gateway.web.api import shapes as s
from gateway.web.api.admin_common import declare, flag, route, text, text_list
from gateway.web.api.body import read_object
from gateway.web.api.operation import Answer, ApiRoute, Operation, Param
from keys.ring import USES

SEC = "the security administrator (安全管理员), within their departments"
AUD = "the audit administrator (审计管理员)"
CODE = {"type": "string", "pattern": "^[A-Za-z0-9*][A-Za-z0-9_.*-]{0,63}$"}
SHORT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": s.NOT_BLANK}


def sec_op(method: str, path: str, summary: str, answer: Answer, **more: Any) -> Operation:
    return declare(method, path, summary, answer, tag="admin-sec", roles=SEC, **more)


LINE = s.obj({"id": {"type": ["integer", "null"]}, "subject": s.TEXT, "department": s.TEXT,
              "object": s.TEXT, "action": s.TEXT, "effect": {"enum": ["allow", "deny"]},
              "ungoverned": s.NULLABLE_TEXT},
             ["id", "subject", "department", "object", "action", "effect"])

LIST_LINES = sec_op("GET", "/policies", "Policy lines of the admin's departments (and *)",
                    Answer("The lines", s.wrapped("lines", s.array(LINE))),
                    query=(Param("department", {"type": "string", "maxLength": 64}),
                           Param("subject", {"type": "string", "maxLength": 200})))


async def list_lines(request: Request, admin: SecAdmin) -> Any:
    q = LIST_LINES.params(request)
    return {"lines": await run_in_threadpool(lambda: admin.lines(
        department=q.get("department", ""), subject=q.get("subject", "")))}


ADD_LINE = sec_op(
    "POST", "/policies", "Add a policy line", Answer("The line", s.wrapped("line", LINE)),
    status=201, refusals=(404,), body_required=True,
    body=s.obj({"subject": SHORT, "department": SHORT, "object": SHORT,
                "action": {"type": "string", "minLength": 1, "maxLength": 20},
                "effect": {"enum": ["allow", "deny"]},
                "ungoverned": {"type": "string", "maxLength": 500}},
               ["subject", "department", "object", "action"], closed=True),
    rules="the line is not well formed (subject, department, object and action as the "
          "policies section of the state file has them) or would govern nothing")


async def add_line(request: Request, admin: SecAdmin) -> Any:
    body = await read_object(request)
    subject, department, obj, action = (text(body, k, required=True) for k in (
        "subject", "department", "object", "action"))
    effect = text(body, "effect") or "allow"
    ungoverned = text(body, "ungoverned") if "ungoverned" in body else None
    return {"line": await run_in_threadpool(admin.add_line, subject, department, obj, action,
                                            effect, ungoverned)}


REMOVE_LINE = sec_op("POST", "/policies/{id}/remove", "Remove a policy line",
                     Answer("The line removed", s.wrapped("removed", LINE)),
                     path_params=(Param("id", s.ID, "the line's number"),))


async def remove_line(request: Request, admin: SecAdmin) -> Any:
    line_id = int(request.path_params["id"])
    return {"removed": await run_in_threadpool(admin.remove_line, line_id)}


TEST_DECISION = sec_op(
    "GET", "/policies/test", "What the proxy decides for a subject calling a path",
    Answer("The decision, with the rule, the reason and the line", s.wrapped("decision", s.obj(
        {"allowed": s.BOOL, "rule": s.NULLABLE_TEXT, "reason": s.NULLABLE_TEXT,
         "line": {"type": ["object", "null"]}, "subjects": s.array(s.TEXT),
         "department": s.NULLABLE_TEXT, "object": s.TEXT, "method": s.TEXT,
         "owner": s.NULLABLE_TEXT, "resource": s.NULLABLE_TEXT},
        ["allowed", "rule", "reason"]))),
    query=(Param("subject", SHORT, "a username, role:{code} or client:{id}", required=True),
           Param("department", {"type": "string", "maxLength": 64}),
           Param("system", {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"},
                 required=True),
           Param("path", {"type": "string", "minLength": 1, "maxLength": 1000}, required=True),
           Param("method", {"enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                     "OPTIONS"]}, required=True),
           Param("client", {"type": "string", "minLength": 1, "maxLength": 128,
                            "pattern": s.NOT_BLANK},
                 "a user subject's token issued to this client: one of another "
                 "department (or of none) is decided for both, as the proxy does")),
    refusals=(404,),
    rules="the path cannot be read as a request target, or the subject is unknown")


async def test_decision(request: Request, admin: SecAdmin) -> Any:
    q = TEST_DECISION.params(request)
    return {"decision": await admin.test_decision(
        q["subject"], q.get("department", ""), q["system"], q["path"], q["method"],
        client=q.get("client"))}


GRANT = {**s.GRANT_NOW, "properties": {**s.GRANT_NOW["properties"],
                                        "provider": s.NULLABLE_TEXT}}
LIST_GRANTS = sec_op("GET", "/grants", "Grants given to or by the admin's departments",
                     Answer("Each with its state now and its provider",
                            s.wrapped("grants", s.array(GRANT))),
                     query=(Param("active", s.BOOL, "only those in force now"),
                            Param("resource", {"type": "string", "maxLength": 64})))


async def list_grants(request: Request, admin: SecAdmin) -> Any:
    q = LIST_GRANTS.params(request)
    return {"grants": await run_in_threadpool(lambda: admin.grants(
        active_only=q.get("active", False), resource=q.get("resource", "")))}


REVOKE_GRANT = sec_op("POST", "/grants/{id}/revoke", "Revoke a grant, with a reason",
                      Answer("The grant", s.wrapped("grant", GRANT)),
                      path_params=(Param("id", s.ID, "the grant's number"),), refusals=(409,),
                      body=s.REASON_BODY, body_required=True)


async def revoke_grant(request: Request, admin: SecAdmin) -> Any:
    body = await read_object(request)
    grant_id = int(request.path_params["id"])
    return {"grant": await run_in_threadpool(admin.revoke_grant, grant_id,
                                             text(body, "reason"))}


KEY = s.obj({"kid": s.TEXT, "use": s.TEXT, "alg": s.TEXT, "state": s.TEXT,
             "created_at": s.TIME, "activated_at": s.NULLABLE_TIME,
             "retired_at": s.NULLABLE_TIME, "destroyed_at": s.NULLABLE_TIME,
             "leaves_jwks_at": s.NULLABLE_TIME}, ["kid", "use", "alg", "state"])
LIST_KEYS = sec_op("GET", "/keys", "The signing keys and their states",
                   Answer("The keys", s.wrapped("keys", s.array(KEY))))


async def list_keys(request: Request, admin: SecAdmin) -> Any:
    return {"keys": await run_in_threadpool(admin.keys)}


ROTATE_KEYS = sec_op(
    "POST", "/keys/rotate", "Rotate signing keys (province level only)",
    Answer("The keys made", s.wrapped("rotated", s.array(KEY))),
    body=s.obj({"uses": s.array({"enum": list(USES)}, uniqueItems=True), "now": s.BOOL},
               closed=True), refusals=(409,),
    description="``now``: the new key signs at once instead of after pre-publication. "
                "409 while a key of that use is still pending.")


async def rotate_keys(request: Request, admin: SecAdmin) -> Any:
    body = await read_object(request)
    return {"rotated": await run_in_threadpool(admin.rotate_keys, text_list(body, "uses"),
                                               flag(body, "now"))}


SECURITY_POLICY = sec_op("GET", "/security-policy",
                         "The password and session policy (the settings; read-only)",
                         Answer("The policy", s.wrapped("policy", s.FREE)))


async def security_policy(request: Request, admin: SecAdmin) -> Any:
    return {"policy": admin.security_settings()}


ACTIVITY = declare(
    "GET", "/activity", "The system and security administrators' changes",
    Answer("A page of admin_change records, and the cursor of the next", s.obj(
        {"records": s.array(s.FREE), "next_cursor": s.NULLABLE_TEXT},
        ["records", "next_cursor"])),
    tag="admin-audit", roles=AUD,
    query=(Param("since", {"type": "string", "maxLength": 64}, "ISO 8601 or epoch ms"),
           Param("until", {"type": "string", "maxLength": 64}),
           Param("user", {"type": "string", "pattern": "^[A-Za-z0-9_.:@/+-]{1,128}$"}),
           Param("outcome", {"type": "string", "enum": sorted(OUTCOMES)}),
           Param("text", {"type": "string", "maxLength": 200}),
           Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
           Param("cursor", {"type": "string", "maxLength": 200})),
    rules="a time is neither ISO 8601 nor epoch milliseconds, ``until`` is not after "
          "``since``, the cursor is not one this API gave, or a parameter is unknown")


async def activity(request: Request, admin: AuditAdmin) -> Any:
    try:
        return await run_in_threadpool(admin.activity, dict(request.query_params))
    except AuditQueryError as exc:
        raise ValidationError(str(exc.description), problems=[exc.reason],
                              field=exc.field) from None


def routes() -> list[ApiRoute]:
    return [
        route(SecAdmin, LIST_LINES, list_lines),
        route(SecAdmin, ADD_LINE, add_line),
        route(SecAdmin, TEST_DECISION, test_decision),
        route(SecAdmin, REMOVE_LINE, remove_line),
        route(SecAdmin, LIST_GRANTS, list_grants),
        route(SecAdmin, REVOKE_GRANT, revoke_grant),
        route(SecAdmin, LIST_KEYS, list_keys),
        route(SecAdmin, ROTATE_KEYS, rotate_keys),
        route(SecAdmin, SECURITY_POLICY, security_policy),
        route(AuditAdmin, ACTIVITY, activity),
    ]
