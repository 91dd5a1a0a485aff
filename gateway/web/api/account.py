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
from starlette.routing import Route

from gateway.errors import Forbidden, ValidationError
from gateway.idp.account import Account
from gateway.idp.scopes import ACCOUNT, require
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.api.body import read_object
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
                   source_ip=request.client.host if request.client else None)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            result = await handler(request, await _account(request))
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


async def summary(request: Request, account: Account) -> Any:
    return await run_in_threadpool(account.summary)


async def password(request: Request, account: Account) -> Any:
    body = await read_object(request)
    ended = await account.change_password(
        _text(body, "current_password"), _text(body, "new_password"),
        sign_out_others=_flag(body, "sign_out_others", True))
    return {"changed": True, "other_sessions_ended": ended}


async def totp_start(request: Request, account: Account) -> Any:
    body = await read_object(request)
    pending = await account.start_totp(password=_text(body, "password"),
                                       code=_text(body, "code"))
    return {"secret": pending.secret, "otpauth_uri": pending.uri, "pending": pending.token}


async def totp_confirm(request: Request, account: Account) -> Any:
    body = await read_object(request)
    codes = await account.confirm_totp(_text(body, "pending"), _text(body, "code"))
    return {"recovery_codes": codes}


async def recovery_codes(request: Request, account: Account) -> Any:
    body = await read_object(request)
    codes = await account.regenerate_codes(password=_text(body, "password"),
                                           code=_text(body, "code"))
    return {"recovery_codes": codes}


async def sessions(request: Request, account: Account) -> Any:
    return {"sessions": await run_in_threadpool(account.sessions),
            "grants": await run_in_threadpool(account.grants)}


async def end_session(request: Request, account: Account) -> Any:
    body = await read_object(request)
    await account.end_session(_text(body, "sid"))
    return {"ended": True}


async def revoke_grant(request: Request, account: Account) -> Any:
    body = await read_object(request)
    await account.revoke_grant(_text(body, "family_id"))
    return {"revoked": True}


async def sign_out_everywhere(request: Request, account: Account) -> Any:
    out = await account.sign_out_everywhere()
    return {"sessions": len(out.sessions), "families": out.families}


async def sign_ins(request: Request, account: Account) -> Any:
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_SIGN_INS:
        raise ValidationError(Text("account.limit", "limit must be a number from 1 to {most}",
                                   most=MAX_SIGN_INS), field="limit")
    return {"sign_ins": await run_in_threadpool(account.sign_ins, int(raw))}


def routes() -> list[Route]:
    return [
        Route(PREFIX, endpoint(summary), methods=["GET"]),
        Route(f"{PREFIX}/password", endpoint(password), methods=["POST"]),
        Route(f"{PREFIX}/totp", endpoint(totp_start), methods=["POST"]),
        Route(f"{PREFIX}/totp/confirm", endpoint(totp_confirm), methods=["POST"]),
        Route(f"{PREFIX}/recovery-codes", endpoint(recovery_codes), methods=["POST"]),
        Route(f"{PREFIX}/sessions", endpoint(sessions), methods=["GET"]),
        Route(f"{PREFIX}/sessions/revoke", endpoint(end_session), methods=["POST"]),
        Route(f"{PREFIX}/grants/revoke", endpoint(revoke_grant), methods=["POST"]),
        Route(f"{PREFIX}/sign-out-everywhere", endpoint(sign_out_everywhere),
              methods=["POST"]),
        Route(f"{PREFIX}/sign-ins", endpoint(sign_ins), methods=["GET"]),
    ]
