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
from starlette.routing import Route

from audit import AuditQueryError
from gateway.admin.activity import AuditAdmin
from gateway.admin.secadmin import SecAdmin
from gateway.errors import ValidationError
from gateway.web.api.admin_common import flag, get, number, post, text, text_list
from gateway.web.api.body import read_object


async def list_lines(request: Request, admin: SecAdmin) -> Any:
    q = request.query_params
    return {"lines": await run_in_threadpool(lambda: admin.lines(
        department=q.get("department", ""), subject=q.get("subject", "")))}


async def add_line(request: Request, admin: SecAdmin) -> Any:
    body = await read_object(request)
    subject, department, obj, action = (text(body, k, required=True) for k in (
        "subject", "department", "object", "action"))
    effect = text(body, "effect") or "allow"
    ungoverned = text(body, "ungoverned") if "ungoverned" in body else None
    return {"line": await run_in_threadpool(admin.add_line, subject, department, obj, action,
                                            effect, ungoverned)}


async def remove_line(request: Request, admin: SecAdmin) -> Any:
    line_id = number(request.path_params["id"], "id")
    return {"removed": await run_in_threadpool(admin.remove_line, line_id)}


async def test_decision(request: Request, admin: SecAdmin) -> Any:
    q = request.query_params
    missing = [k for k in ("subject", "system", "path", "method") if not q.get(k)]
    if missing:
        raise ValidationError("subject, system, path and method are required",
                              problems=[f"missing {k!r}" for k in missing])
    return {"decision": await admin.test_decision(
        q["subject"][:200], q.get("department", "")[:64], q["system"][:64], q["path"][:1000],
        q["method"][:10])}


async def list_grants(request: Request, admin: SecAdmin) -> Any:
    q = request.query_params
    active = q.get("active", "").lower() in ("1", "true", "yes")
    return {"grants": await run_in_threadpool(lambda: admin.grants(
        active_only=active, resource=q.get("resource", "")))}


async def revoke_grant(request: Request, admin: SecAdmin) -> Any:
    body = await read_object(request)
    grant_id = number(request.path_params["id"], "id")
    return {"grant": await run_in_threadpool(admin.revoke_grant, grant_id,
                                             text(body, "reason"))}


async def list_keys(request: Request, admin: SecAdmin) -> Any:
    return {"keys": await run_in_threadpool(admin.keys)}


async def rotate_keys(request: Request, admin: SecAdmin) -> Any:
    body = await read_object(request)
    return {"rotated": await run_in_threadpool(admin.rotate_keys, text_list(body, "uses"),
                                               flag(body, "now"))}


async def security_policy(request: Request, admin: SecAdmin) -> Any:
    return {"policy": admin.security_settings()}


async def activity(request: Request, admin: AuditAdmin) -> Any:
    try:
        return await run_in_threadpool(admin.activity, dict(request.query_params))
    except AuditQueryError as exc:
        raise ValidationError(str(exc.description), problems=[exc.reason],
                              field=exc.field) from None


def routes() -> list[Route]:
    return [
        get(SecAdmin, "/policies", list_lines),
        post(SecAdmin, "/policies", add_line, 201),
        get(SecAdmin, "/policies/test", test_decision),
        post(SecAdmin, "/policies/{id}/remove", remove_line),
        get(SecAdmin, "/grants", list_grants),
        post(SecAdmin, "/grants/{id}/revoke", revoke_grant),
        get(SecAdmin, "/keys", list_keys),
        post(SecAdmin, "/keys/rotate", rotate_keys),
        get(SecAdmin, "/security-policy", security_policy),
        get(AuditAdmin, "/activity", activity),
    ]
