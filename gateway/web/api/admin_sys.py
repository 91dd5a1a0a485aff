"""The system administrator's API (系统管理员), under ``/api/v1/admin``:

    GET  /users?department=&state=&role=&q=       accounts of the admin's departments
    POST /users            {username, name, department, roles?}
                           → 201 {user, initial_password} (shown once; changed at first sign-in)
    POST /users/{username}/disable | enable | unlock | reset-password | reset-totp
                           → {user} (reset-password: and temporary_password, shown once;
                           unlock lifts the account lock and the codes' lock,
                           ``factor_locked``)
    GET  /departments
    POST /departments      {code, name, parent?, region?} → 201
    POST /departments/{code}/rename    {name}
    POST /departments/{code}/move      {parent?}  ("" or null: the top of its region)
    GET  /systems
    POST /systems          {code, name, department, upstream, portal_path?,
                            identity_headers?, remote_user?, launch_url?} → 201
    GET  /systems/{code}
    POST /systems/{code}   any of name, department, upstream, portal_path,
                           identity_headers, remote_user, launch_url ("": removed)
    GET  /systems/{code}/release       what its CAS services, SAML SP and forward-auth's
                                       answer receive
    PUT  /systems/{code}/release       {cas?: [name...], saml?: [name...],
                                       forward_auth?: [name|region...]} ([]: the
                                       identifier alone; a list not named stays)
    GET  /systems/{code}/sign-on       its CAS service addresses and SAML SP
    PUT  /systems/{code}/sign-on       {cas_services?: [url...] | cas_services_add?: [url...],
                                       cas_services_remove?: [url...], saml_metadata?: xml,
                                       saml_name_id?: persistent|transient,
                                       saml_release_username?: bool,
                                       saml_encryption?: metadata|always|never} ([] / "":
                                       removed; a field not named stays)
    GET  /clients
    POST /clients          {client_id, name, department, grant_types, redirect_uris?,
                            post_logout_redirect_uris?, scope?, token_endpoint_auth_method?,
                            jwks?, backchannel_logout_uri?, require_pkce? (default true),
                            dpop_bound?, lenient_assertion_audience? (private_key_jwt)}
                           → 201 {client, client_secret} (shown once)
    GET  /clients/{client_id}
    POST /clients/{client_id}          any of name, redirect_uris,
                                       post_logout_redirect_uris, scope, backchannel_logout_uri,
                                       require_pkce, dpop_bound,
                                       lenient_assertion_audience,
                                       static_credential (off|basic|api_key),
                                       id_token_signed_response_alg, consent_required
    POST /clients/{client_id}/disable | enable | rotate-secret
                                       (rotate-secret: and client_secret, shown once)
    POST /clients/{client_id}/api-key  → {client, api_key} (shown once): a new key for
                                       X-Api-Key at /s/, static_credential api_key

Rules and audit: ``gateway.admin.sysadmin``; plumbing: ``gateway.web.api.admin_common``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from gateway.admin.sysadmin import (
    CLIENT_ACTIONS,
    GRANTABLE_ROLES,
    USER_ACTIONS,
    USER_STATES,
    SysAdmin,
)
from gateway.admin.systems import ENCRYPTIONS
from gateway.errors import ValidationError
from gateway.idp.attribute_release import ATTRIBUTES, FORWARD_AUTH
from gateway.idp.oauth2.oidc import ID_TOKEN_ALGS
from gateway.idp.saml.sps import NAME_IDS
from gateway.limits import MAX_LENGTH
from gateway.proxy.identity_headers import MODES as IDENTITY_MODES
from gateway.statefile import AUTH_METHODS, GRANT_TYPES, STATIC_CREDENTIALS
from gateway.web.api import shapes as s
from gateway.web.api.admin_common import declare, picked, route, text, text_list
from gateway.web.api.body import read_object
from gateway.web.api.operation import Answer, ApiRoute, Operation, Param
from gateway.web.api.schema_check import JSON
from texts import Text

SYSTEM_FIELDS = {"code": "text", "name": "text", "department": "text", "upstream": "text",
                 "portal_path": "text", "identity_headers": "text", "remote_user": "bool",
                 "launch_url": "text"}
CLIENT_FIELDS = {"client_id": "text", "name": "text", "department": "text",
                 "grant_types": "list", "redirect_uris": "list",
                 "post_logout_redirect_uris": "list", "scope": "text",
                 "token_endpoint_auth_method": "text", "backchannel_logout_uri": "text",
                 "require_pkce": "bool", "dpop_bound": "bool",
                 "lenient_assertion_audience": "bool", "static_credential": "text",
                 "id_token_signed_response_alg": "text", "consent_required": "bool"}
CLIENT_CHANGES = ("name", "redirect_uris", "post_logout_redirect_uris", "scope",
                  "backchannel_logout_uri", "require_pkce", "dpop_bound",
                  "lenient_assertion_audience", "static_credential",
                  "id_token_signed_response_alg", "consent_required")
WHO = "the system administrator (系统管理员), within their departments"
TAG = "admin-sys"

#: gateway.org.CODE_RE, USERNAME_RE; gateway.tables.SYSTEM_RE
CODE: JSON = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{0,63}$"}
USERNAME: JSON = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]{1,63}$"}
CLIENT_ID: JSON = {"type": "string", "minLength": 1, "maxLength": 128}
NAME: JSON = {"type": "string", "maxLength": MAX_LENGTH["name"], "pattern": s.NOT_BLANK}
URL: JSON = {"type": "string", "maxLength": 500, "pattern": "^https?://"}


def sys_op(method: str, path: str, summary: str, answer: Answer, **more: Any) -> Operation:
    return declare(method, path, summary, answer, tag=TAG, roles=WHO, **more)


# -- users ---------------------------------------------------------------------------

USER = s.obj({"username": s.TEXT, "name": s.TEXT, "department": s.TEXT,
              "roles": s.array(s.TEXT), "status": s.TEXT, "state": {"enum": list(USER_STATES)},
              "locked_until": s.NULLABLE_TIME, "has_totp": s.BOOL, "must_change": s.BOOL,
              "admin": s.BOOL,
              # the second factor's codes locked after mfa_failure_limit wrong ones in a
              # row (lifted by unlock or reset-totp), and the count in a row
              "factor_locked": s.BOOL, "factor_failures": s.INT},
             ["username", "name", "department", "roles", "state"])

LIST_USERS = sys_op(
    "GET", "/users", "Accounts of the admin's departments",
    Answer("The users", s.wrapped("users", s.array(USER))),
    query=(Param("department", CODE), Param("state", {"type": "string",
                                                      "enum": list(USER_STATES)}),
           Param("role", {"type": "string", "maxLength": 64}),
           Param("q", {"type": "string", "maxLength": 100}, "part of the username or name")))


async def list_users(request: Request, admin: SysAdmin) -> Any:
    q = LIST_USERS.params(request)
    found = await run_in_threadpool(lambda: admin.users(
        department=q.get("department", ""), state=q.get("state", ""),
        role=q.get("role", ""), q=q.get("q", "")))
    return {"users": found}


CREATE_USER = sys_op(
    "POST", "/users", "Create a user", status=201, refusals=(404, 409),
    answer=Answer("The user and the initial password (shown once; to change at first "
                  "sign-in)", s.obj({"user": USER, "initial_password": s.TEXT},
                                    ["user", "initial_password"])),
    body=s.obj({"username": USERNAME, "name": NAME, "department": CODE,
                "roles": s.array({"type": "string", "maxLength": 64},
                                 description="of " + ", ".join(GRANTABLE_ROLES))},
               ["username", "name", "department"], closed=True), body_required=True,
    rules="a role is unknown (an admin role: 403), or the username's password rule fails")


async def create_user(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    username, name = text(body, "username", required=True), text(body, "name", required=True)
    department = text(body, "department", required=True)
    roles = text_list(body, "roles")
    user, password = await run_in_threadpool(admin.create_user, username, name, department,
                                             roles)
    return {"user": user, "initial_password": password}


def _user_action(action: str) -> tuple[Operation, Any]:
    op = sys_op("POST", f"/users/{{username}}/{action}", f"{action} a user",
                Answer("The user (reset-password: and the temporary password, shown once)",
                       s.obj({"user": USER, "temporary_password": s.TEXT}, ["user"])),
                path_params=(Param("username", USERNAME),), refusals=(409,),
                rules=("the user's password is kept by the directory (a directory user)"
                       if action == "reset-password" else ""))

    async def act(request: Request, admin: SysAdmin) -> Any:
        user, password = await run_in_threadpool(admin.user_action,
                                                 request.path_params["username"], action)
        return {"user": user, **({"temporary_password": password} if password else {})}

    return op, act


# -- departments -----------------------------------------------------------------------

DEPARTMENT = s.obj({"code": s.TEXT, "name": s.TEXT, "region": s.NULLABLE_TEXT,
                    "parent": s.NULLABLE_TEXT, "depth": s.INT}, ["code", "name"])
ONE_DEPARTMENT = Answer("The department", s.wrapped("department", DEPARTMENT))
DEPT_CODE = (Param("code", CODE, "the department's code"),)
NULLABLE_CODE = {**CODE, "type": ["string", "null"], "pattern": "^([a-z0-9][a-z0-9_.-]{0,63})?$"}

LIST_DEPARTMENTS = sys_op("GET", "/departments", "The admin's departments, as a tree",
                          Answer("Each with its depth", s.wrapped("departments",
                                                                  s.array(DEPARTMENT))))


async def list_departments(request: Request, admin: SysAdmin) -> Any:
    return {"departments": await run_in_threadpool(admin.departments)}


CREATE_DEPARTMENT = sys_op(
    "POST", "/departments", "Create a department", ONE_DEPARTMENT, status=201,
    refusals=(404, 409),
    body=s.obj({"code": CODE, "name": NAME, "parent": NULLABLE_CODE, "region": NULLABLE_CODE},
               ["code", "name"], closed=True), body_required=True,
    rules="a department at the top names no region")


async def create_department(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    dept = await run_in_threadpool(
        admin.create_department, text(body, "code", required=True),
        text(body, "name", required=True), text(body, "parent") or None,
        text(body, "region") or None)
    return {"department": dept}


RENAME_DEPARTMENT = sys_op(
    "POST", "/departments/{code}/rename", "Rename a department", ONE_DEPARTMENT,
    path_params=DEPT_CODE, body=s.obj({"name": NAME}, ["name"], closed=True),
    body_required=True)


async def rename_department(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    return {"department": await run_in_threadpool(
        admin.rename_department, request.path_params["code"], text(body, "name"))}


MOVE_DEPARTMENT = sys_op(
    "POST", "/departments/{code}/move", "Move a department under another (or to the top)",
    ONE_DEPARTMENT, path_params=DEPT_CODE, refusals=(409,),
    body=s.obj({"parent": NULLABLE_CODE}, closed=True),
    rules="the move would make a cycle or cross regions")


async def move_department(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    return {"department": await run_in_threadpool(
        admin.move_department, request.path_params["code"], text(body, "parent") or None)}


# -- systems ---------------------------------------------------------------------------

SYSTEM = s.obj({"code": s.TEXT, "name": s.TEXT, "department": s.TEXT, "upstream": s.TEXT,
                "portal_path": s.TEXT, "identity_headers": s.TEXT, "remote_user": s.BOOL,
                "tls": s.BOOL, "cas": s.BOOL,
                # where the portal's launcher opens it (null: its own rule)
                "launch_url": s.NULLABLE_TEXT},
               ["code", "name", "department", "upstream"])
ONE_SYSTEM = Answer("The system", s.wrapped("system", SYSTEM))
SYSTEM_CODE = (Param("code", CODE, "the system's code"),)
SYSTEM_PROPS = {"name": NAME, "department": CODE, "upstream": URL,
                "portal_path": {"type": "string", "maxLength": 500, "pattern": "^/"},
                "identity_headers": {"enum": sorted(IDENTITY_MODES)}, "remote_user": s.BOOL,
                # no pattern: the refusal says why (https, loopback http, no javascript:)
                "launch_url": {"type": "string", "maxLength": 2048}}
SYSTEM_RULES = ("the upstream is not a usable http(s) origin, the department is not the "
                "admin's, or the launch_url is not https (http only on a loopback host; "
                "\"\" removes it)")

LIST_SYSTEMS = sys_op("GET", "/systems", "The systems of the admin's departments",
                      Answer("The systems", s.wrapped("systems", s.array(SYSTEM))))


async def list_systems(request: Request, admin: SysAdmin) -> Any:
    return {"systems": await run_in_threadpool(admin.systems)}


GET_SYSTEM = sys_op("GET", "/systems/{code}", "One system", ONE_SYSTEM,
                    path_params=SYSTEM_CODE)


async def get_system(request: Request, admin: SysAdmin) -> Any:
    return {"system": await run_in_threadpool(admin.system, request.path_params["code"])}


CREATE_SYSTEM = sys_op(
    "POST", "/systems", "Register a system behind the gateway", ONE_SYSTEM, status=201,
    refusals=(404, 409), body=s.obj({"code": CODE, **SYSTEM_PROPS},
                                    ["code", "name", "department", "upstream"], closed=True),
    body_required=True, rules=SYSTEM_RULES)


async def create_system(request: Request, admin: SysAdmin) -> Any:
    fields = picked(await read_object(request), SYSTEM_FIELDS)
    return {"system": await run_in_threadpool(admin.create_system, fields)}


UPDATE_SYSTEM = sys_op("POST", "/systems/{code}", "Change a system", ONE_SYSTEM,
                       path_params=SYSTEM_CODE, body=s.obj(SYSTEM_PROPS, closed=True),
                       rules=SYSTEM_RULES)


async def update_system(request: Request, admin: SysAdmin) -> Any:
    fields = picked(await read_object(request), SYSTEM_FIELDS)
    fields.pop("code", None)
    return {"system": await run_in_threadpool(admin.update_system,
                                              request.path_params["code"], fields)}


RELEASE_NAMES = {"type": "array", "items": {"enum": list(ATTRIBUTES)},
                 "maxItems": len(ATTRIBUTES), "uniqueItems": True}
FORWARD_NAMES = {"type": "array", "items": {"enum": list(FORWARD_AUTH)},
                 "maxItems": len(FORWARD_AUTH), "uniqueItems": True}
RELEASE = s.obj({"cas": {**RELEASE_NAMES, "type": ["array", "null"]},
                 "saml": {**RELEASE_NAMES, "type": ["array", "null"]},
                 "forward_auth": FORWARD_NAMES,
                 "attributes": s.array(s.TEXT), "forward_auth_attributes": s.array(s.TEXT)},
                ["cas", "saml", "forward_auth", "attributes", "forward_auth_attributes"])
ONE_RELEASE = Answer("What its CAS services (cas) and its SAML service provider (saml) "
                     "receive besides the user's identifier, null where the system speaks "
                     "neither; what forward-auth's 200 adds to the user, department and "
                     "roles it always carries (forward_auth: name as X-Govgate-Name, "
                     "region as X-Govgate-Region); attributes, forward_auth_attributes: "
                     "the names each may list",
                     s.wrapped("release", RELEASE))

GET_RELEASE = sys_op("GET", "/systems/{code}/release",
                     "What a system's CAS services, SAML SP and forward-auth answer "
                     "release", ONE_RELEASE,
                     path_params=SYSTEM_CODE)


async def get_release(request: Request, admin: SysAdmin) -> Any:
    return {"release": await run_in_threadpool(admin.release, request.path_params["code"])}


SET_RELEASE = sys_op(
    "PUT", "/systems/{code}/release",
    "Set what a system's CAS services, SAML SP and forward-auth answer release",
    ONE_RELEASE, path_params=SYSTEM_CODE, body_required=True,
    body=s.obj({"cas": RELEASE_NAMES, "saml": RELEASE_NAMES,
                "forward_auth": FORWARD_NAMES}, closed=True),
    rules="no list is named, or one is named for a protocol the system does not "
          "speak (no cas_services, no saml_sp: the state file registers them); each list "
          "named replaces that protocol's, [] releases the identifier alone, one not named "
          "stays")


async def set_release(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    if not body:  # a PUT that names nothing would answer as if it had set something
        raise ValidationError(Text("admin.release_empty",
                                   "name the list of cas, saml or forward_auth (or more)"))
    return {"release": await run_in_threadpool(admin.set_release,
                                               request.path_params["code"], dict(body))}


# -- clients ---------------------------------------------------------------------------

CLIENT = s.obj({"client_id": s.TEXT, "name": s.TEXT, "department": s.TEXT,
                "grant_types": s.array(s.TEXT), "redirect_uris": s.array(s.TEXT),
                "post_logout_redirect_uris": s.array(s.TEXT), "has_jwks": s.BOOL,
                # RFC 8693, set by the CLI and the state file (docs/delegation.md)
                "token_exchange": s.BOOL, "require_pkce": s.BOOL,
                # RFC 9449: its token requests must carry a DPoP proof (docs/sso.md)
                "dpop_bound": s.BOOL,
                # its assertions may name the token endpoint (docs/sso.md)
                "lenient_assertion_audience": s.BOOL,
                # an old system's fixed credential at /s/ (docs/proxy.md)
                "static_credential": {"enum": list(STATIC_CREDENTIALS)},
                # its ID tokens' algorithm; null the token key's (docs/sso.md)
                "id_token_signed_response_alg": {"enum": [*ID_TOKEN_ALGS, None]},
                # true: every person consents first; false: none; null: by the rule, a
                # person of another department (docs/sso.md, "Consent")
                "consent_required": {"type": ["boolean", "null"]}},
               ["client_id", "redirect_uris", "post_logout_redirect_uris", "has_jwks"])
WITH_SECRET = Answer("The client (and its secret, shown once, when it has one)",
                     s.obj({"client": CLIENT, "client_secret": s.TEXT}, ["client"]))
CLIENT_PARAM = (Param("client_id", CLIENT_ID, "the client's id"),)
URIS = s.array(URL, maxItems=50)
CLIENT_CHANGE_PROPS: dict[str, JSON] = {
    "name": NAME, "redirect_uris": URIS, "post_logout_redirect_uris": URIS,
    "scope": {"type": "string", "maxLength": MAX_LENGTH["scope"]},
    "backchannel_logout_uri": URL,
    # PKCE (S256) required of its authorization requests; true for a new client
    "require_pkce": s.BOOL, "dpop_bound": s.BOOL,
    # a private_key_jwt client's assertions may still name the token endpoint or several
    # audiences (the rule before draft-ietf-oauth-rfc7523bis; govgate compliance names it)
    "lenient_assertion_audience": s.BOOL,
    # a client of client_credentials alone may call /s/ with HTTP Basic or X-Api-Key
    # (docs/proxy.md; govgate compliance names it); api_key works once a key is made
    # (POST /clients/{client_id}/api-key)
    "static_credential": {"enum": list(STATIC_CREDENTIALS)},
    # its ID tokens' algorithm (RS256 for a relying party that verifies nothing else);
    # null or "" the token key's
    "id_token_signed_response_alg": {"enum": [*ID_TOKEN_ALGS, "", None]},
    # Keycloak's "Consent required": true every person, false none (docs/sso.md)
    "consent_required": s.BOOL}
CLIENT_RULES = ("the grant types, redirect URIs, scope and authentication method do not go "
                "together, or the department is not the admin's")

LIST_CLIENTS = sys_op("GET", "/clients", "The OAuth clients of the admin's departments",
                      Answer("The clients", s.wrapped("clients", s.array(CLIENT))))


async def list_clients(request: Request, admin: SysAdmin) -> Any:
    return {"clients": await run_in_threadpool(admin.clients)}


GET_CLIENT = sys_op("GET", "/clients/{client_id}", "One client",
                    Answer("The client", s.wrapped("client", CLIENT)),
                    path_params=CLIENT_PARAM)


async def get_client(request: Request, admin: SysAdmin) -> Any:
    return {"client": await run_in_threadpool(admin.client,
                                              request.path_params["client_id"])}


CREATE_CLIENT = sys_op(
    "POST", "/clients", "Register an OAuth client", WITH_SECRET, status=201,
    refusals=(404, 409), body_required=True, rules=CLIENT_RULES,
    body=s.obj({"client_id": CLIENT_ID, "department": CODE,
                "grant_types": s.array({"enum": sorted(GRANT_TYPES)}, minItems=1),
                "token_endpoint_auth_method": {"enum": sorted(AUTH_METHODS)},
                "jwks": s.obj({"keys": s.array(s.FREE)}, ["keys"]),
                **CLIENT_CHANGE_PROPS},
               ["client_id", "name", "department", "grant_types"], closed=True))


async def create_client(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    entry = picked(body, CLIENT_FIELDS)
    if "jwks" in body:
        entry["jwks"] = body["jwks"]
    client, secret = await run_in_threadpool(admin.create_client, entry)
    return {"client": client, **({"client_secret": secret} if secret else {})}


UPDATE_CLIENT = sys_op("POST", "/clients/{client_id}", "Change a client",
                       Answer("The client", s.wrapped("client", CLIENT)),
                       path_params=CLIENT_PARAM, body=s.obj(CLIENT_CHANGE_PROPS, closed=True),
                       rules=CLIENT_RULES)


async def update_client(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    changes = {k: v for k, v in picked(body, CLIENT_FIELDS).items() if k in CLIENT_CHANGES}
    return {"client": await run_in_threadpool(admin.update_client,
                                              request.path_params["client_id"], changes)}


def _client_action(action: str) -> tuple[Operation, Any]:
    op = sys_op("POST", f"/clients/{{client_id}}/{action}", f"{action} a client", WITH_SECRET,
                path_params=CLIENT_PARAM, refusals=(409,))

    async def act(request: Request, admin: SysAdmin) -> Any:
        client, secret = await run_in_threadpool(admin.client_action,
                                                 request.path_params["client_id"], action)
        return {"client": client, **({"client_secret": secret} if secret else {})}

    return op, act


NEW_API_KEY = sys_op(
    "POST", "/clients/{client_id}/api-key",
    "Make a client's API key for X-Api-Key at /s/ (shown once; the one before stops)",
    Answer("The client and its new API key, shown once",
           s.obj({"client": CLIENT, "api_key": s.TEXT}, ["client", "api_key"])),
    path_params=CLIENT_PARAM,
    rules="the client is not of the client_credentials grant alone")


async def new_api_key(request: Request, admin: SysAdmin) -> Any:
    client, key = await run_in_threadpool(admin.new_api_key,
                                          request.path_params["client_id"])
    return {"client": client, "api_key": key}


USER_ACTION_OPS = [_user_action(a) for a in USER_ACTIONS]
CLIENT_ACTION_OPS = [_client_action(a) for a in CLIENT_ACTIONS]


SIGN_ON = s.obj({
    "cas_services": s.array(s.TEXT),
    "saml": {"type": ["object", "null"], "properties": {
        "entity_id": s.TEXT, "name_id": {"enum": list(NAME_IDS)},
        # its assertions also carry uid, the username (saml_sp.release_username)
        "release_username": s.BOOL,
        "encryption": {"enum": list(ENCRYPTIONS)}, "encrypted": {"type": "boolean"},
        "metadata": s.TEXT},
        "required": ["entity_id", "name_id", "release_username", "encryption", "encrypted",
                     "metadata"]},
    "name_ids": s.array(s.TEXT), "encryptions": s.array(s.TEXT)},
    ["cas_services", "saml", "name_ids", "encryptions"])
ONE_SIGN_ON = Answer("The addresses that may receive a CAS ticket ([]: no CAS) and the "
                     "SAML service provider (null: none): the entity ID its metadata "
                     "names, the NameID format, whether its assertions are encrypted "
                     "(the setting, and what it comes to with the metadata), the metadata",
                     s.wrapped("sign_on", SIGN_ON))

GET_SIGN_ON = sys_op("GET", "/systems/{code}/sign-on",
                     "A system's CAS service addresses and SAML service provider",
                     ONE_SIGN_ON, path_params=SYSTEM_CODE)


async def get_sign_on(request: Request, admin: SysAdmin) -> Any:
    return {"sign_on": await run_in_threadpool(admin.sign_on, request.path_params["code"])}


SET_SIGN_ON = sys_op(
    "PUT", "/systems/{code}/sign-on",
    "Set a system's CAS service addresses, SAML metadata, NameID format or assertion "
    "encryption",
    ONE_SIGN_ON, path_params=SYSTEM_CODE, body_required=True,
    body=s.obj({"cas_services": {"type": "array", "items": s.TEXT, "maxItems": 50},
                # one address added or removed, the others as stored (not with cas_services)
                "cas_services_add": {"type": "array", "items": s.TEXT, "maxItems": 50},
                "cas_services_remove": {"type": "array", "items": s.TEXT, "maxItems": 50},
                "saml_metadata": {"type": "string", "maxLength": 256 * 1024},
                "saml_name_id": {"enum": list(NAME_IDS)},
                "saml_release_username": s.BOOL,
                "saml_encryption": {"enum": list(ENCRYPTIONS)}}, closed=True),
    rules="nothing is named; a service address that is not https (http only on a "
          "loopback host), holds a fragment, user information or a * elsewhere than "
          "after a / at the end; metadata that is not one SP's SAML 2.0 metadata or "
          "names a plain-http endpoint; an address or entity ID another system "
          "registers; a NameID format, the username's release or an encryption setting "
          "for a system without an SP; assertions to be encrypted (always, or metadata "
          "with an encryption key) and no usable key (expired, RSA under 2048 bits, not "
          "RSA); an address removed that is not registered or added that is; cas_services "
          "with cas_services_add or _remove. [] (or removing the last address) removes "
          "CAS (and its release list), \"\" the SP; a field not named stays")


async def set_sign_on(request: Request, admin: SysAdmin) -> Any:
    body = await read_object(request)
    return {"sign_on": await run_in_threadpool(admin.set_sign_on,
                                               request.path_params["code"], dict(body))}


def routes() -> list[ApiRoute]:
    return [route(SysAdmin, op, handler) for op, handler in (
        (LIST_USERS, list_users),
        (CREATE_USER, create_user),
        *USER_ACTION_OPS,
        (LIST_DEPARTMENTS, list_departments),
        (CREATE_DEPARTMENT, create_department),
        (RENAME_DEPARTMENT, rename_department),
        (MOVE_DEPARTMENT, move_department),
        (LIST_SYSTEMS, list_systems),
        (CREATE_SYSTEM, create_system),
        (GET_SYSTEM, get_system),
        (UPDATE_SYSTEM, update_system),
        (GET_RELEASE, get_release),
        (SET_RELEASE, set_release),
        (GET_SIGN_ON, get_sign_on),
        (SET_SIGN_ON, set_sign_on),
        (LIST_CLIENTS, list_clients),
        (CREATE_CLIENT, create_client),
        (GET_CLIENT, get_client),
        (UPDATE_CLIENT, update_client),
        *CLIENT_ACTION_OPS,
        (NEW_API_KEY, new_api_key),
    )]
