"""The system administrator's pages (系统管理员):

    GET  /portal/admin/users                     accounts (filters), the new-account form
    POST /portal/admin/users                     create → the first password, shown once
    POST /portal/admin/users/{username}/{action} disable | enable | unlock | reset-password
                                                 (→ the temporary password, shown once) |
                                                 reset-totp
    GET  /portal/admin/departments               the tree, new / rename / move forms
    POST /portal/admin/departments               create
    POST /portal/admin/departments/{code}/{action}   rename | move
    GET  /portal/admin/systems                   the systems, the new-system form
    POST /portal/admin/systems                   create
    GET  /portal/admin/systems/{code}            the edit form
    POST /portal/admin/systems/{code}            save
    POST /portal/admin/systems/{code}/release    what its CAS services and SAML SP receive
    POST /portal/admin/systems/{code}/sign-on    its CAS service addresses, its SAML SP
    GET  /portal/admin/clients                   the clients, the new-client form
    POST /portal/admin/clients                   create → the secret, shown once
    GET  /portal/admin/clients/{client_id}       the edit form, disable / enable / new secret
    POST /portal/admin/clients/{client_id}/{action}  save | disable | enable | rotate-secret

The operations and their rules: ``gateway.admin.sysadmin``."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.admin.sysadmin import (
    CLIENT_ACTIONS,
    GRANTABLE_ROLES,
    USER_ACTIONS,
    USER_STATES,
    SysAdmin,
)
from gateway.admin.systems import PROTOCOLS
from gateway.errors import NotFound, ValidationError
from gateway.proxy.identity_headers import MODES
from gateway.statefile import AUTH_METHODS, GRANT_TYPES
from gateway.tables import regions
from gateway.web.portal.admin_pages import (
    Form,
    done,
    error_page,
    get,
    post,
    say,
    show,
    t_of,
)
from texts import Text


def _field(form: Form, key: str, limit: int = 1000) -> str:
    return str(form.get(key) or "").strip()[:limit]


def _lines(form: Form, key: str) -> list[str]:
    """A textarea of one value per line."""
    return [line.strip() for line in _field(form, key, 20000).splitlines() if line.strip()]


def _no_page(request: Request) -> NotFound:
    return NotFound(Text("portal.no_page", "no page {path}", path=request.url.path))


# -- users ------------------------------------------------------------------------------

async def users_page(request: Request, console: SysAdmin, form: Form = None, *,
                     status: int = 200, errors: list[str] | None = None,
                     typed: dict[str, Any] | None = None) -> Response:
    q = request.query_params
    filters = {k: q.get(k, "").strip()[:100] for k in ("q", "department", "state", "role")}
    found = await run_in_threadpool(lambda: console.users(**filters))
    departments = await run_in_threadpool(console.departments)
    return show(request, console, "admin_users.html", status=status, users=found,
                filters=filters, departments=departments, states=USER_STATES,
                roles=GRANTABLE_ROLES, errors=errors or [],
                typed=typed or {"username": "", "name": "", "department": "",
                                "roles": ["staff"]})


async def create_user(request: Request, console: SysAdmin, form: Form) -> Response:
    typed: dict[str, Any] = {
        "username": _field(form, "username", 64), "name": _field(form, "name", 200),
        "department": _field(form, "department", 64),
        "roles": [str(r) for r in form.getlist("roles")][:10]}
    try:
        user, password = await run_in_threadpool(
            console.create_user, typed["username"], typed["name"], typed["department"],
            typed["roles"])
    except ValidationError as exc:
        t = t_of(request)
        return await users_page(request, console, status=400, typed=typed,
                                errors=[say(t, p) for p in exc.problems or [exc.description]])
    return show(request, console, "admin_once.html", title_key="adm_user_created",
                subject=user["username"], secret=password, shown_key="adm_first_password",
                note_key="adm_must_change", back="users")


async def user_action(request: Request, console: SysAdmin, form: Form) -> Response:
    action, username = request.path_params["action"], request.path_params["username"]
    if action not in USER_ACTIONS:
        return error_page(request, _no_page(request))
    _, password = await run_in_threadpool(console.user_action, username, action)
    if password:
        return show(request, console, "admin_once.html", title_key="adm_password_reset",
                    subject=username, secret=password, shown_key="adm_temp_password",
                    note_key="adm_must_change", back="users")
    return done("users", "user_" + action.replace("-", "_"), username)


# -- departments ------------------------------------------------------------------------

async def departments_page(request: Request, console: SysAdmin, form: Form = None) -> Response:

    def region_rows() -> list[tuple[str, str]]:
        with console.services.engine.connect() as conn:
            return [(r.code, r.name) for r in conn.execute(
                sa.select(regions.c.code, regions.c.name).order_by(regions.c.code))]

    found = await run_in_threadpool(console.departments)
    return show(request, console, "admin_departments.html", departments=found,
                regions=await run_in_threadpool(region_rows))


async def create_department(request: Request, console: SysAdmin, form: Form) -> Response:
    code = _field(form, "code", 64)
    await run_in_threadpool(console.create_department, code, _field(form, "name", 200),
                            _field(form, "parent", 64) or None,
                            _field(form, "region", 64) or None)
    return done("departments", "department_created", code)


async def department_action(request: Request, console: SysAdmin, form: Form) -> Response:
    code, action = request.path_params["code"], request.path_params["action"]
    if action == "rename":
        await run_in_threadpool(console.rename_department, code, _field(form, "name", 200))
    elif action == "move":
        await run_in_threadpool(console.move_department, code,
                                _field(form, "parent", 64) or None)
    else:
        return error_page(request, _no_page(request))
    return done("departments", "department_" + action, code)


# -- systems ----------------------------------------------------------------------------

def _system_fields(form: Form) -> dict[str, Any]:
    return {"name": _field(form, "name", 200), "department": _field(form, "department", 64),
            "upstream": _field(form, "upstream", 500),
            "portal_path": _field(form, "portal_path", 500) or "/",
            "launch_url": _field(form, "launch_url", 2049).strip(),
            "identity_headers": _field(form, "identity_headers", 16) or "assertion",
            "remote_user": form.get("remote_user") == "on"}


async def systems_page(request: Request, console: SysAdmin, form: Form = None) -> Response:
    found = await run_in_threadpool(console.systems)
    departments = await run_in_threadpool(console.departments)
    return show(request, console, "admin_systems.html", systems=found,
                departments=departments, modes=MODES)


async def create_system(request: Request, console: SysAdmin, form: Form) -> Response:
    fields = {"code": _field(form, "code", 64), **_system_fields(form)}
    await run_in_threadpool(console.create_system, fields)
    return done("systems", "system_created", fields["code"])


async def system_page(request: Request, console: SysAdmin, form: Form = None, *,
                      status: int = 200, release_errors: list[str] | None = None,
                      sign_on_errors: list[str] | None = None) -> Response:
    found = await run_in_threadpool(console.system, request.path_params["code"])
    departments = await run_in_threadpool(console.departments)
    release = await run_in_threadpool(console.release, request.path_params["code"])
    sign_on = await run_in_threadpool(console.sign_on, request.path_params["code"])
    return show(request, console, "admin_system.html", status=status, system=found,
                departments=departments, modes=MODES, release=release,
                release_errors=release_errors or [], sign_on=sign_on,
                sign_on_errors=sign_on_errors or [])


def _addresses(form: Form, key: str) -> list[str]:
    return [x.strip() for x in _field(form, key, 50 * 2100).splitlines() if x.strip()]


async def update_sign_on(request: Request, console: SysAdmin, form: Form) -> Response:
    """The service addresses as the box holds them (empty: no CAS), new metadata only
    when pasted, the NameID format and the assertions' encryption when there is (or
    will be) an SP."""
    code = request.path_params["code"]
    one = {key: [_field(form, name, 2100)] for key, name in (
        ("cas_services_add", "cas_add"), ("cas_services_remove", "cas_remove"))
        if form is not None and name in form}
    if one:  # one address added or removed (its own small form), the others as stored
        return await _system_change(request, console, console.set_sign_on, code, one,
                                    "sign_on_errors", "system_sign_on_changed")
    current = await run_in_threadpool(console.sign_on, code)
    listed = _addresses(form, "cas_services")
    changes: dict[str, Any] = {}
    if form is None or "cas_services_shown" not in form \
            or listed != _field(form, "cas_services_shown", 50 * 2100).split():
        # the box is the page's copy: sent back untouched it would undo an address
        # added or removed meanwhile (the one-by-one forms', another operator's)
        changes["cas_services"] = listed
    metadata = _field(form, "saml_metadata", 256 * 1024).strip()
    if form is not None and form.get("remove_saml"):
        changes["saml_metadata"] = ""
    else:
        if metadata:
            changes["saml_metadata"] = metadata
        if metadata or current["saml"] is not None:
            changes["saml_name_id"] = _field(form, "saml_name_id", 20)
            changes["saml_release_username"] = (form is not None and
                                                form.get("saml_release_username") == "1")
            changes["saml_encryption"] = _field(form, "saml_encryption", 20) or "metadata"
    if not changes:  # the box untouched and no SP: nothing to set
        return done(f"systems/{quote(code, safe='')}", "system_sign_on_changed", code)
    return await _system_change(request, console, console.set_sign_on, code, changes,
                                "sign_on_errors", "system_sign_on_changed")


async def update_release(request: Request, console: SysAdmin, form: Form) -> Response:
    """The ticked attributes of each protocol the form showed (none ticked: the
    identifier alone)."""
    code = request.path_params["code"]
    shown = [str(p) for p in form.getlist("protocol") if p in PROTOCOLS] if form else []
    lists = {p: [str(a)[:40] for a in form.getlist(p)][:10] for p in shown} if form else {}
    return await _system_change(request, console, console.set_release, code, lists,
                                "release_errors", "system_release_changed")


async def _system_change(request: Request, console: SysAdmin, change: Any, code: str,
                         value: Any, errors: str, changed: str) -> Response:
    """One of a system's settings changed through ``change``: back to its page, or the
    page again with the refusal's problems under ``errors`` (400)."""
    try:
        await run_in_threadpool(change, code, value)
    except ValidationError as exc:
        t = t_of(request)
        return await system_page(request, console, status=400, **{errors: [
            say(t, p) for p in exc.problems or [exc.description]]})
    return done(f"systems/{quote(code, safe='')}", changed, code)


async def update_system(request: Request, console: SysAdmin, form: Form) -> Response:
    code = request.path_params["code"]
    await run_in_threadpool(console.update_system, code, _system_fields(form))
    return done("systems", "system_changed", code)


# -- clients ----------------------------------------------------------------------------

async def clients_page(request: Request, console: SysAdmin, form: Form = None) -> Response:
    found = await run_in_threadpool(console.clients)
    departments = await run_in_threadpool(console.departments)
    return show(request, console, "admin_clients.html", clients=found,
                departments=departments, grant_types=sorted(GRANT_TYPES),
                methods=sorted(AUTH_METHODS - {"private_key_jwt"}))


async def create_client(request: Request, console: SysAdmin, form: Form) -> Response:
    entry: dict[str, Any] = {
        "client_id": _field(form, "client_id", 128), "name": _field(form, "name", 200),
        "department": _field(form, "department", 64),
        "grant_types": [str(g) for g in form.getlist("grant_types")][:5],
        "redirect_uris": _lines(form, "redirect_uris"),
        "post_logout_redirect_uris": _lines(form, "post_logout_redirect_uris"),
        "scope": _field(form, "scope", 500) or "openid profile",
        "token_endpoint_auth_method": _field(form, "token_endpoint_auth_method", 64)
        or "client_secret_basic", "require_pkce": "require_pkce" in form,
        "dpop_bound": "dpop_bound" in form}
    client, secret = await run_in_threadpool(console.create_client, entry)
    if secret:
        return show(request, console, "admin_once.html", title_key="adm_client_created",
                    subject=client["client_id"], secret=secret, shown_key="adm_client_secret",
                    note_key="adm_secret_note", back="clients")
    return done("clients", "client_created", client["client_id"])


async def client_page(request: Request, console: SysAdmin, form: Form = None) -> Response:
    found = await run_in_threadpool(console.client, request.path_params["client_id"])
    return show(request, console, "admin_client.html", client=found)


async def client_action(request: Request, console: SysAdmin, form: Form) -> Response:
    client_id, action = request.path_params["client_id"], request.path_params["action"]
    if action == "save":
        changes = {"name": _field(form, "name", 200),
                   "redirect_uris": _lines(form, "redirect_uris"),
                   "post_logout_redirect_uris": _lines(form, "post_logout_redirect_uris"),
                   "scope": _field(form, "scope", 500),
                   "dpop_bound": "dpop_bound" in form}
        # a box the page did not show (admin_client_uris.html) is not an unticked one:
        # the stored value stays
        shown = await run_in_threadpool(console.client, client_id)
        if "authorization_code" in shown["grant_types"]:
            changes["require_pkce"] = "require_pkce" in form
        if shown["token_endpoint_auth_method"] == "private_key_jwt":  # noqa: S105
            changes["lenient_assertion_audience"] = "lenient_assertion_audience" in form
        kind = None
        if shown["grant_types"] == ["client_credentials"]:
            kind = _field(form, "static_credential", 16) or "off"
            if kind != "api_key" or shown["static_credential"] != "api_key":
                changes["static_credential"] = kind
        if "consent_required" in form:
            changes["consent_required"] = {"1": True, "0": False}.get(
                _field(form, "consent_required", 1))
        if "id_token_signed_response_alg" in form:
            changes["id_token_signed_response_alg"] = \
                _field(form, "id_token_signed_response_alg", 16) or None
        await run_in_threadpool(console.update_client, client_id, changes)
        if kind == "api_key" and shown["static_credential"] != "api_key":
            # switched to a key: one is made now and shown once (a save that keeps
            # api_key keeps the key; "New API key" replaces it)
            return await _new_api_key(request, console, client_id)
        return done("clients", "client_changed", client_id)
    if action == "api-key":
        return await _new_api_key(request, console, client_id)
    if action not in CLIENT_ACTIONS:
        return error_page(request, _no_page(request))
    _, secret = await run_in_threadpool(console.client_action, client_id, action)
    if secret:
        return show(request, console, "admin_once.html", title_key="adm_secret_rotated",
                    subject=client_id, secret=secret, shown_key="adm_client_secret",
                    note_key="adm_secret_note", back="clients")
    return done("clients", "client_" + action.replace("-", "_"), client_id)


async def _new_api_key(request: Request, console: SysAdmin, client_id: str) -> Response:
    _, key = await run_in_threadpool(console.new_api_key, client_id)
    return show(request, console, "admin_once.html", title_key="adm_api_key_made",
                subject=client_id, secret=key, shown_key="adm_api_key",
                note_key="adm_secret_note", back="clients")


def routes() -> list[BaseRoute]:
    return [
        get(SysAdmin, "/users", users_page),
        post(SysAdmin, "/users", create_user),
        post(SysAdmin, "/users/{username}/{action}", user_action),
        get(SysAdmin, "/departments", departments_page),
        post(SysAdmin, "/departments", create_department),
        post(SysAdmin, "/departments/{code}/{action}", department_action),
        get(SysAdmin, "/systems", systems_page),
        post(SysAdmin, "/systems", create_system),
        get(SysAdmin, "/systems/{code}", system_page),
        post(SysAdmin, "/systems/{code}", update_system),
        post(SysAdmin, "/systems/{code}/release", update_release),
        post(SysAdmin, "/systems/{code}/sign-on", update_sign_on),
        get(SysAdmin, "/clients", clients_page),
        post(SysAdmin, "/clients", create_client),
        get(SysAdmin, "/clients/{client_id}", client_page),
        post(SysAdmin, "/clients/{client_id}/{action}", client_action),
    ]
