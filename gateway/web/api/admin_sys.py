"""The system administrator's API (系统管理员), under ``/api/v1/admin``:

    GET  /users?department=&state=&role=&q=       accounts of the admin's departments
    POST /users            {username, name, department, roles?}
                           → 201 {user, initial_password} (shown once; changed at first sign-in)
    POST /users/{username}/{action}    disable | enable | unlock | reset-password | reset-totp
                           → {user} (reset-password: and temporary_password, shown once)
    GET  /departments
    POST /departments      {code, name, parent?, region?} → 201
    POST /departments/{code}/rename    {name}
    POST /departments/{code}/move      {parent}  ("" or null: the top of its region)
    GET  /systems
    POST /systems          {code, name, department, upstream, portal_path?,
                            identity_headers?, remote_user?} → 201
    GET  /systems/{code}
    POST /systems/{code}   any of name, department, upstream, portal_path,
                           identity_headers, remote_user
    GET  /clients
    POST /clients          {client_id, name, department, grant_types, redirect_uris?,
                            post_logout_redirect_uris?, scope?, token_endpoint_auth_method?,
                            jwks?, backchannel_logout_uri?}
                           → 201 {client, client_secret} (shown once)
    GET  /clients/{client_id}
    POST /clients/{client_id}          any of name, redirect_uris,
                                       post_logout_redirect_uris, scope, backchannel_logout_uri
    POST /clients/{client_id}/{action} disable | enable | rotate-secret
                                       (rotate-secret: and client_secret, shown once)

Rules and audit: ``gateway.admin.sysadmin``; plumbing: ``gateway.web.api.admin_common``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Route

from gateway.admin.sysadmin import CLIENT_ACTIONS, USER_ACTIONS, SysAdmin
from gateway.errors import NotFound, ValidationError
from gateway.web.api.admin_common import get, picked, post, text, text_list
from gateway.web.api.body import read_object
from texts import Text

SYSTEM_FIELDS = {"code": "text", "name": "text", "department": "text", "upstream": "text",
                 "portal_path": "text", "identity_headers": "text", "remote_user": "bool"}
CLIENT_FIELDS = {"client_id": "text", "name": "text", "department": "text",
                 "grant_types": "list", "redirect_uris": "list",
                 "post_logout_redirect_uris": "list", "scope": "text",
                 "token_endpoint_auth_method": "text", "backchannel_logout_uri": "text"}
CLIENT_CHANGES = ("name", "redirect_uris", "post_logout_redirect_uris", "scope",
                  "backchannel_logout_uri")


def no_action(request: Request) -> NotFound:
    return NotFound(Text("portal.no_page", "no page {path}", path=request.url.path))


# -- users ---------------------------------------------------------------------------

async def list_users(request: Request, admin: SysAdmin) -> Any:
    q = request.query_params
    found = await run_in_threadpool(lambda: admin.users(
        department=q.get("department", ""), state=q.get("state", ""),
        role=q.get("role", ""), q=q.get("q", "")[:100]))
    return {"users": found}


async def create_user(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    username, name = text(body, "username", required=True), text(body, "name", required=True)
    department = text(body, "department", required=True)
    roles = text_list(body, "roles")
    user, password = await run_in_threadpool(admin.create_user, username, name, department,
                                             roles)
    return {"user": user, "initial_password": password}


async def user_action(request: Request, admin: SysAdmin) -> Any:
    action = request.path_params["action"]
    if action not in USER_ACTIONS:
        raise no_action(request)
    user, password = await run_in_threadpool(admin.user_action,
                                             request.path_params["username"], action)
    return {"user": user, **({"temporary_password": password} if password else {})}


# -- departments -----------------------------------------------------------------------

async def list_departments(request: Request, admin: SysAdmin) -> Any:
    return {"departments": await run_in_threadpool(admin.departments)}


async def create_department(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    dept = await run_in_threadpool(
        admin.create_department, text(body, "code", required=True),
        text(body, "name", required=True), text(body, "parent") or None,
        text(body, "region") or None)
    return {"department": dept}


async def department_action(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    code, action = request.path_params["code"], request.path_params["action"]
    if action == "rename":
        dept = await run_in_threadpool(admin.rename_department, code,
                                       text(body, "name", required=True))
    elif action == "move":
        dept = await run_in_threadpool(admin.move_department, code,
                                       text(body, "parent") or None)
    else:
        raise no_action(request)
    return {"department": dept}


# -- systems ---------------------------------------------------------------------------

async def list_systems(request: Request, admin: SysAdmin) -> Any:
    return {"systems": await run_in_threadpool(admin.systems)}


async def get_system(request: Request, admin: SysAdmin) -> Any:
    return {"system": await run_in_threadpool(admin.system, request.path_params["code"])}


async def create_system(request: Request, admin: SysAdmin) -> Any:
    fields = picked(await read_object(request), SYSTEM_FIELDS)
    return {"system": await run_in_threadpool(admin.create_system, fields)}


async def update_system(request: Request, admin: SysAdmin) -> Any:
    fields = picked(await read_object(request), SYSTEM_FIELDS)
    fields.pop("code", None)
    return {"system": await run_in_threadpool(admin.update_system,
                                              request.path_params["code"], fields)}


# -- clients ---------------------------------------------------------------------------

async def list_clients(request: Request, admin: SysAdmin) -> Any:
    return {"clients": await run_in_threadpool(admin.clients)}


async def get_client(request: Request, admin: SysAdmin) -> Any:
    return {"client": await run_in_threadpool(admin.client,
                                              request.path_params["client_id"])}


async def create_client(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    entry = picked(body, CLIENT_FIELDS)
    if "jwks" in body:
        if not isinstance(body["jwks"], dict):
            raise ValidationError(Text("admin.field_jwks", "jwks must be a JWK set"))
        entry["jwks"] = body["jwks"]
    client, secret = await run_in_threadpool(admin.create_client, entry)
    return {"client": client, **({"client_secret": secret} if secret else {})}


async def update_client(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    changes = {k: v for k, v in picked(body, CLIENT_FIELDS).items() if k in CLIENT_CHANGES}
    return {"client": await run_in_threadpool(admin.update_client,
                                              request.path_params["client_id"], changes)}


async def client_action(request: Request, admin: SysAdmin) -> Any:
    action = request.path_params["action"]
    if action not in CLIENT_ACTIONS:
        raise no_action(request)
    client, secret = await run_in_threadpool(admin.client_action,
                                             request.path_params["client_id"], action)
    return {"client": client, **({"client_secret": secret} if secret else {})}


def routes() -> list[Route]:
    return [
        get(SysAdmin, "/users", list_users),
        post(SysAdmin, "/users", create_user, 201),
        post(SysAdmin, "/users/{username}/{action}", user_action),
        get(SysAdmin, "/departments", list_departments),
        post(SysAdmin, "/departments", create_department, 201),
        post(SysAdmin, "/departments/{code}/{action}", department_action),
        get(SysAdmin, "/systems", list_systems),
        post(SysAdmin, "/systems", create_system, 201),
        get(SysAdmin, "/systems/{code}", get_system),
        post(SysAdmin, "/systems/{code}", update_system),
        get(SysAdmin, "/clients", list_clients),
        post(SysAdmin, "/clients", create_client, 201),
        get(SysAdmin, "/clients/{client_id}", get_client),
        post(SysAdmin, "/clients/{client_id}", update_client),
        post(SysAdmin, "/clients/{client_id}/{action}", client_action),
    ]
