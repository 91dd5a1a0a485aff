"""The signed-in person's own account under ``/api/v1/account`` (the account page's
twin, :mod:`gateway.idp.account` behind both):

    GET  /api/v1/account                      name, department, roles, TOTP on, codes left
    POST /api/v1/account/password             {current_password, new_password,
                                               sign_out_others? (default true)}
    POST /api/v1/account/totp                 {password | code} → {secret, otpauth_uri,
                                               pending}: a new authenticator to confirm
    POST /api/v1/account/totp/confirm         {pending, code} → {recovery_codes}
    POST /api/v1/account/recovery-codes       {password | code} → {recovery_codes}
    GET  /api/v1/account/sessions             {sessions, grants}
    POST /api/v1/account/sessions/revoke      {sid}: end one of the caller's sessions
    POST /api/v1/account/grants/revoke        {family_id}: revoke one OAuth grant
    POST /api/v1/account/sign-out-everywhere  every session and grant → {sessions, families}
    GET  /api/v1/account/sign-ins?limit=      recent sign-ins from the audit log

Who: the portal session (a browser's ``fetch``; a change must say
``application/json``, see :mod:`gateway.web.api.media`, so a form on another site
cannot post here), or a user's bearer token with the ``account`` scope (a token a
relying party got to sign the user in cannot change the user's password). A
system's own token (client credentials) is refused: it has no account. Another
person's sessions, grants and sign-ins are never reachable: every call acts on the
caller's own username.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.directory.client import password_checker
from gateway.errors import Forbidden, ValidationError
from gateway.idp.account import Account
from gateway.idp.scopes import ACCOUNT, require
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.api import shapes as s
from gateway.web.api.operation import Access, Answer, ApiRoute, Operation, Param
from gateway.web.api.problems import problem_json
from texts import Text

PREFIX = "/api/v1/account"
MAX_SIGN_INS = 100

Handler = Callable[[Request, Account], Awaitable[Any]]


def _services(request: Request) -> Services:
    return gateway_of(request).services


async def _account(request: Request) -> Account:
    """The caller's own account, or Unauthorized / Forbidden."""
    principal = await gateway_of(request).authenticator.authenticate(request)
    require(principal, ACCOUNT)
    if not principal.username:
        raise Forbidden(Text("account.person_only",
                             "this is a person's own account: a system's token has none"))
    return Account(gateway_of(request).provider, principal.username, sid=principal.session_id,
                   source_ip=request.client.host if request.client else None,
                   directory_check=password_checker(gateway_of(request).directory))


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


WHO = Access((ACCOUNT,), person=True, roles="the person signed in, for their own account")


def declare(method: str, path: str, summary: str, answer: Answer, **more: Any) -> Operation:
    """An operation under ``/api/v1/account`` (``path`` after it)."""
    return Operation(method, PREFIX + path, summary, "account", WHO, {200: answer}, **more)


def endpoint(op: Operation, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            account = await _account(request)
            await op.check(request)
            result = await handler(request, account)
        except Exception as exc:
            if hasattr(exc, "status"):
                return problem_json(exc)
            raise
        return JSONResponse(_json(result))

    return run


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(Text("account.not_text", "{field} must be a string",
                                   field=key), field=key)
    return value


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(Text("account.not_flag", "{field} must be true or false",
                                   field=key), field=key)
    return value


SUMMARY = declare("GET", "", "One's own account", Answer(
    "Name, department, roles, whether an authenticator is set up, recovery codes left",
    s.obj({"username": s.TEXT, "name": s.TEXT, "department": s.TEXT,
           "roles": s.array(s.TEXT), "totp": s.BOOL, "recovery_codes_left": s.INT},
          ["username", "name", "department", "roles", "totp", "recovery_codes_left"])))


async def summary(request: Request, account: Account) -> Any:
    return await run_in_threadpool(account.summary)


SECRET = {"type": "string", "maxLength": 1024}
PROOF = s.obj({"password": SECRET, "code": {"type": "string", "maxLength": 64}},
              closed=True, description="the current password, or a code of the "
                                       "authenticator or a recovery code")
CODES = Answer("The new recovery codes, shown once",
               s.obj({"recovery_codes": s.array(s.TEXT)}, ["recovery_codes"]))
PROOF_RULE = "the password or code is wrong, or the account is locked"

PASSWORD = declare(
    "POST", "/password", "Change one's password",
    Answer("Changed; how many other sessions were ended",
           s.obj({"changed": s.BOOL, "other_sessions_ended": s.INT},
                 ["changed", "other_sessions_ended"])),
    body=s.obj({"current_password": SECRET, "new_password": SECRET,
                "sign_out_others": s.BOOL}, ["current_password", "new_password"],
               closed=True), body_required=True,
    rules="the current password is wrong or the new one breaks the password rule")


async def password(request: Request, account: Account) -> Any:
    body = await PASSWORD.read_body(request)
    ended = await account.change_password(
        _text(body, "current_password"), _text(body, "new_password"),
        sign_out_others=_flag(body, "sign_out_others", True))
    return {"changed": True, "other_sessions_ended": ended}


TOTP_START = declare(
    "POST", "/totp", "Start setting up a new authenticator",
    Answer("The secret and otpauth URI to scan, and the pending token to confirm with",
           s.obj({"secret": s.TEXT, "otpauth_uri": s.TEXT, "pending": s.TEXT},
                 ["secret", "otpauth_uri", "pending"])),
    body=PROOF, rules=PROOF_RULE)


async def totp_start(request: Request, account: Account) -> Any:
    body = await TOTP_START.read_body(request)
    pending = await account.start_totp(password=_text(body, "password"),
                                       code=_text(body, "code"))
    return {"secret": pending.secret, "otpauth_uri": pending.uri, "pending": pending.token}


TOTP_CONFIRM = declare(
    "POST", "/totp/confirm", "Confirm the new authenticator with one of its codes", CODES,
    body=s.obj({"pending": {"type": "string", "maxLength": 4096},
                "code": {"type": "string", "maxLength": 64}}, ["pending", "code"],
               closed=True), body_required=True,
    rules="the pending token has expired or is not this account's, or the code is wrong")


async def totp_confirm(request: Request, account: Account) -> Any:
    body = await TOTP_CONFIRM.read_body(request)
    codes = await account.confirm_totp(_text(body, "pending"), _text(body, "code"))
    return {"recovery_codes": codes}


RECOVERY_CODES = declare("POST", "/recovery-codes", "A new set of recovery codes", CODES,
                         body=PROOF, rules=PROOF_RULE + ", or no authenticator is set up")


async def recovery_codes(request: Request, account: Account) -> Any:
    body = await RECOVERY_CODES.read_body(request)
    codes = await account.regenerate_codes(password=_text(body, "password"),
                                           code=_text(body, "code"))
    return {"recovery_codes": codes}


SESSIONS = declare("GET", "/sessions", "One's sessions and the OAuth grants to systems",
                   Answer("Sessions (which is this one) and grants", s.obj({
                       "sessions": s.array(s.obj({
                           "sid": s.TEXT, "current": s.BOOL, "stage": s.TEXT,
                           "created_at": s.NULLABLE_TIME, "last_seen_at": s.NULLABLE_TIME,
                           "expires_at": s.NULLABLE_TIME, "source_ip": s.NULLABLE_TEXT,
                           "user_agent": s.NULLABLE_TEXT}, ["sid", "current"])),
                       "grants": s.array(s.obj({
                           "family_id": s.TEXT, "client_id": s.TEXT, "client_name": s.TEXT,
                           "scope": s.NULLABLE_TEXT, "sid": s.NULLABLE_TEXT,
                           "refreshed_at": s.NULLABLE_TIME, "expires_at": s.NULLABLE_TIME},
                           ["family_id", "client_id"]))}, ["sessions", "grants"])))


async def sessions(request: Request, account: Account) -> Any:
    return {"sessions": await run_in_threadpool(account.sessions),
            "grants": await run_in_threadpool(account.grants)}


END_SESSION = declare(
    "POST", "/sessions/revoke", "End one of one's sessions",
    Answer("Ended", s.obj({"ended": s.BOOL}, ["ended"])), refusals=(404,),
    body=s.obj({"sid": {"type": "string", "minLength": 1, "maxLength": 256}}, ["sid"],
               closed=True), body_required=True)


async def end_session(request: Request, account: Account) -> Any:
    body = await END_SESSION.read_body(request)
    await account.end_session(_text(body, "sid"))
    return {"ended": True}


REVOKE_GRANT = declare(
    "POST", "/grants/revoke", "Revoke one OAuth grant (a refresh-token family)",
    Answer("Revoked", s.obj({"revoked": s.BOOL}, ["revoked"])), refusals=(404,),
    body=s.obj({"family_id": {"type": "string", "minLength": 1, "maxLength": 256}},
               ["family_id"], closed=True), body_required=True)


async def revoke_grant(request: Request, account: Account) -> Any:
    body = await REVOKE_GRANT.read_body(request)
    await account.revoke_grant(_text(body, "family_id"))
    return {"revoked": True}


SIGN_OUT_EVERYWHERE = declare(
    "POST", "/sign-out-everywhere", "End every session and grant of one's account",
    Answer("How many sessions and grants ended",
           s.obj({"sessions": s.INT, "families": s.INT}, ["sessions", "families"])))


async def sign_out_everywhere(request: Request, account: Account) -> Any:
    out = await account.sign_out_everywhere()
    return {"sessions": len(out.sessions), "families": out.families}


SIGN_INS = declare(
    "GET", "/sign-ins", "One's recent sign-ins, from the audit log",
    Answer("Newest first", s.obj({"sign_ins": s.array(s.obj({
        "time": s.TIME, "event": s.TEXT, "outcome": s.TEXT, "source_ip": s.NULLABLE_TEXT,
        "client": s.NULLABLE_TEXT, "client_name": s.NULLABLE_TEXT, "system": s.NULLABLE_TEXT,
        "system_name": s.NULLABLE_TEXT}, ["time", "event", "outcome"]))}, ["sign_ins"])),
    query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_SIGN_INS},
                 "how many (20 by default)"),))


async def sign_ins(request: Request, account: Account) -> Any:
    limit = SIGN_INS.params(request).get("limit", 20)
    return {"sign_ins": await run_in_threadpool(account.sign_ins, limit)}


def routes() -> list[ApiRoute]:
    return [op.route(endpoint(op, handler)) for op, handler in (
        (SUMMARY, summary),
        (PASSWORD, password),
        (TOTP_START, totp_start),
        (TOTP_CONFIRM, totp_confirm),
        (RECOVERY_CODES, recovery_codes),
        (SESSIONS, sessions),
        (END_SESSION, end_session),
        (REVOKE_GRANT, revoke_grant),
        (SIGN_OUT_EVERYWHERE, sign_out_everywhere),
        (SIGN_INS, sign_ins),
    )]
