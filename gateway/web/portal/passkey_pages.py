"""Security keys and passkeys (WebAuthn) in the portal (docs/webauthn.md).

    GET  /portal/login/webauthn                 the sign-in's key step (after the password)
    POST /portal/login/webauthn/options         its challenge (JSON)
    POST /portal/login/webauthn                 its assertion (JSON) → on with the sign-in
    GET  /portal/login/webauthn/totp            the TOTP code instead (when allowed)
    GET  /portal/login/passkey-enrol            an admin who must use a key registers one
    POST /portal/login/passkey/options          passwordless: a challenge for any passkey
    POST /portal/login/passkey                  passwordless: the assertion → signed in
    POST /portal/account/passkeys/options       registration: a challenge (JSON)
    POST /portal/account/passkeys               registration: the attestation (JSON)
    POST /portal/account/passkeys/remove        remove a key (password or code asked)

The ceremonies run in ``static/webauthn.js`` (the portal's CSP allows no inline
script). Its posts are JSON with the CSRF token in the body, checked as a form's is
(``csrf_ok``: the token and the browser's own-origin headers); the answers are JSON:
``{"options": ...}``, ``{"redirect": url}`` or ``{"error": text}`` in the page's
language. The challenge is found by a ceremony cookie (HttpOnly, SameSite=Strict),
stored server side, single use, bound to the session (or, before any session, to
that cookie alone). Every ceremony's result is audited.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.errors import AuditUnavailable, NotFound, ValidationError
from gateway.idp.account import Account
from gateway.idp.fresh_sign_in import MAX_AUTH_AGE, stale_for, stale_reason
from gateway.idp.oauth2.store import SessionRow
from gateway.idp.passkeys.ceremonies import (
    Ceremonies,
    CeremonyFailed,
    RelyingParty,
    key_name,
)
from gateway.idp.passkeys.store import CHALLENGE_SECONDS, PasskeyStore, TooManyCeremonies
from gateway.login_throttle import LoginThrottle, address_key
from gateway.org import User
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.portal.account import BASE, _act, _field
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import (
    SECURITY_HEADERS,
    csrf_ok,
    page_lang,
    render,
    safe_next,
    session_cookie,
)
from gateway.web.portal.routes import (
    _admit,
    _advance,
    _audit_failed,
    _emit,
    _go,
    _ip,
    _minutes_left,
    _provider,
    _record,
    _set_session_cookie,
    _stage_session,
    _to_login,
    _user,
    factor_failures,
    stage_of,
    stop_blocked,
)
from texts import Text

CEREMONY_COOKIE = "gg_webauthn"
MAX_KEYS = 20
ALL_FACTORS = {"change", "mfa", "enrol", "webauthn", "passkey_enrol"}


def _services(request: Request) -> Services:
    return gateway_of(request).services


def _ceremonies(request: Request) -> Ceremonies:
    services = _services(request)
    store = PasskeyStore(services.engine, services.keys, services.clock)
    return Ceremonies(RelyingParty.from_settings(services.settings), store, services.keys)


def _t(request: Request) -> Translator:
    return Translator(page_lang(request))


def _answer(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={
        "Cache-Control": SECURITY_HEADERS["Cache-Control"],
        "X-Content-Type-Options": "nosniff"})


def _error(request: Request, key: str, status: int = 400, **kw: Any) -> JSONResponse:
    return _answer({"error": _t(request)(key, **kw)}, status)


async def _body(request: Request) -> dict[str, Any] | JSONResponse:
    """The JSON body with a good CSRF token, or the refusal (a post without the token
    is refused for that first, whatever its body)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        body = None
    if not csrf_ok(request, body if isinstance(body, dict) else {}):
        return _error(request, "csrf")
    if not isinstance(body, dict):
        return _error(request, "pk_bad_request")
    return body


def _with_ceremony(request: Request, body: dict[str, Any], token: str) -> JSONResponse:
    response = _answer(body)
    response.set_cookie(CEREMONY_COOKIE, token, httponly=True, samesite="strict",
                        secure=_provider(request).secure_cookies, path="/portal",
                        max_age=CHALLENGE_SECONDS)
    return response


def _ceremony_token(request: Request) -> str:
    return request.cookies.get(CEREMONY_COOKIE, "")


def _went_on(request: Request, redirect: Response, **extra: Any) -> JSONResponse:
    """A redirect as the script's answer, with its cookies; the ceremony cookie goes."""
    response = _answer({"redirect": redirect.headers["location"], **extra})
    for cookie in redirect.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", cookie)
    response.delete_cookie(CEREMONY_COOKIE, path="/portal")
    return response


async def _failed(request: Request, event: str, exc: CeremonyFailed, *,
                  user: User | None, sid: str | None, counts: bool = False) -> JSONResponse:
    """Audit a refused ceremony (a clone also as its own deny record), then say so.
    ``counts``: a failed assertion counts toward its account's lockout, as a wrong TOTP
    code does (the account: the signed-in user's, or passwordless the credential's
    owner's; an unknown credential has none); the lock is audited and ends the session."""
    services = _services(request)
    owner = user
    if owner is None and exc.credential is not None:
        try:
            owner = await run_in_threadpool(services.org.get_user_by_id,
                                            exc.credential.user_id)
        except NotFound:  # removed meanwhile
            owner = None
    extra = {"sid": sid, "key": exc.credential.name if exc.credential else None}
    who = {"actor_user": owner.username if owner else None,
           "department": owner.department if owner else None}
    records = [_record(request, event, "failure", reason=exc.reason, extra=extra, **who)]
    if exc.clone:
        records.append(_record(request, "webauthn_clone", "deny", reason=exc.reason,
                               extra=extra, **who))
    locked: User | None = None
    if counts and owner is not None:
        settings = services.settings
        after = await run_in_threadpool(lambda: services.org.record_failure(
            owner.username, threshold=settings.lockout_threshold,
            window_seconds=settings.lockout_window_seconds))
        if after.locked_until is not None and after.locked_until > services.clock():
            locked = after
            records.append(_record(request, "login_lockout", "deny",
                                   reason="too many failed key assertions", **who))
            if sid is not None:
                _provider(request).store.revoke_session(
                    sid, ttl_seconds=settings.access_token_lifetime)
    try:
        await _emit(request, *records)
    except AuditUnavailable:
        return _error(request, "error", 503)
    if locked is not None:
        response = _error(request, "locked", 403, minutes=_minutes_left(locked, request))
    else:
        response = _error(request, "pk_clone" if exc.clone else "pk_failed")
    response.delete_cookie(CEREMONY_COOKIE, path="/portal")
    return response


async def _throttled(request: Request, wait: int, reason: str) -> JSONResponse:
    """429 for an address within its delay (or holding too many challenges), audited."""
    try:
        await _emit(request, _record(request, "webauthn_login", "failure", reason=reason))
    except AuditUnavailable:
        return _error(request, "error", 503)
    response = _error(request, "throttled", 429, seconds=wait)
    response.headers["Retry-After"] = str(wait)
    return response


# -- the sign-in's key step ------------------------------------------------------------

def _fallback_allowed(request: Request, user: User) -> bool:
    """TOTP instead of a key: for whoever has it, unless keys are required of them."""
    required = _services(request).settings.webauthn_required_for_admins and user.is_admin
    return user.has_totp and not required


async def verify_page(request: Request) -> Response:
    row = _stage_session(request, "webauthn")
    user = _user(request, row.username) if row else None
    if row is None or user is None:
        return _to_login(request)
    return render(request, "login_webauthn.html", next=safe_next(
        request.query_params.get("next")), fallback=_fallback_allowed(request, user))


async def _key_step(request: Request
                    ) -> tuple[dict[str, Any], SessionRow, User] | JSONResponse:
    """A post of the sign-in's key step: its body, session and user, or the refusal."""
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    row = _stage_session(request, "webauthn")
    user = _user(request, row.username) if row else None
    if row is None or user is None:
        return _error(request, "pk_expired", 401)
    return body, row, user


async def verify_options(request: Request) -> Response:
    step = await _key_step(request)
    if isinstance(step, JSONResponse):
        return step
    _, row, user = step
    options, token = await run_in_threadpool(
        lambda: _ceremonies(request).assertion(user=user, sid=row.sid))
    return _with_ceremony(request, {"options": json.loads(options)}, token)


async def verify_submit(request: Request) -> Response:
    step = await _key_step(request)
    if isinstance(step, JSONResponse):
        return step
    body, row, user = step
    if (locked := await _locked(request, row, user)) is not None:
        return locked
    try:
        found = await run_in_threadpool(
            lambda: _ceremonies(request).verify(_ceremony_token(request), body.get("credential"),
                                                user=user, sid=row.sid))
    except CeremonyFailed as exc:
        return await _failed(request, "webauthn_verify", exc, user=user, sid=row.sid,
                             counts=True)
    _services(request).org.record_success(row.username)
    # a key proves the second factor: the codes' count of wrong ones starts again
    await run_in_threadpool(factor_failures(_services(request)).passed, user.id)
    try:
        await _emit(request, _record(request, "webauthn_verify", "success",
                                     actor_user=row.username, department=user.department,
                                     extra={"sid": row.sid, "key": found.credential.name}))
    except AuditUnavailable:
        return _error(request, "error", 503)
    return _went_on(request, await _advance(request, row, {"change", "webauthn"},
                                            safe_next(str(body.get("next") or "")),
                                            amr=row.amr + " hwk"))


async def _locked(request: Request, row: SessionRow, user: User,
                  event: str = "webauthn_verify") -> JSONResponse | None:
    """A locked account's key is not checked or registered, nor a disabled user's
    (``routes.stop_blocked``); the answer to the script, or None."""
    try:
        if await stop_blocked(request, row, user, event) is None:
            return None
    except AuditUnavailable:
        return _error(request, "error", 503)
    response = _error(request, "pk_failed") if user.status != "active" else _error(
        request, "locked", 403, minutes=_minutes_left(user, request))
    response.delete_cookie(CEREMONY_COOKIE, path="/portal")
    return response


async def totp_instead(request: Request) -> Response:
    row = _stage_session(request, "webauthn")
    user = _user(request, row.username) if row else None
    next_url = safe_next(request.query_params.get("next"))
    if row is None or user is None:
        return _to_login(request)
    if not _fallback_allowed(request, user):
        return RedirectResponse("/portal/login/webauthn?" + urlencode({"next": next_url}),
                                status_code=303)
    try:
        await _emit(request, _record(request, "webauthn_fallback", "success",
                                     actor_user=row.username, department=user.department,
                                     reason="an authenticator code instead of a key",
                                     extra={"sid": row.sid}))
    except AuditUnavailable:
        return _audit_failed()
    token = _provider(request).store.advance_session(row.sid, "mfa")
    response = RedirectResponse("/portal/login/totp?" + urlencode({"next": next_url}),
                                status_code=303)
    _set_session_cookie(request, response, token)
    return response


# -- passwordless ---------------------------------------------------------------------

async def _admitted(request: Request, what: str
                    ) -> tuple[dict[str, Any], LoginThrottle, str | None] | JSONResponse:
    """A passwordless post: its body, the throttle and the address once the address is
    admitted (its delay after failures over, as for a password), or the refusal."""
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    if not _services(request).settings.webauthn_passwordless:
        return _error(request, "pk_off", 404)
    throttle = gateway_of(request).throttle
    address = _ip(request)
    admission = await _admit(throttle, address)
    if admission.wait:
        return await _throttled(request, admission.wait, f"{what} from this address "
                                f"within its delay ({admission.wait} s left)")
    return body, throttle, address


async def passkey_options(request: Request) -> Response:
    """A challenge for any passkey: behind the sign-in throttle of the address, and a
    few unanswered ones at a time per address (as many as the lockout threshold), so a
    stranger fills no table."""
    admitted = await _admitted(request, "passkey challenge")
    if isinstance(admitted, JSONResponse):
        return admitted
    _, throttle, address = admitted
    try:
        options, token = await run_in_threadpool(
            lambda: _ceremonies(request).assertion(
                user=None, sid=None, source=address_key(address),
                at_most=_services(request).settings.lockout_threshold))
    except TooManyCeremonies as many:
        return await _throttled(request, many.wait, "too many unanswered passkey challenges "
                                "from this address")
    finally:
        throttle.settled(address)
    return _with_ceremony(request, {"options": json.loads(options)}, token)


async def passkey_submit(request: Request) -> Response:
    """The passkey's assertion, behind the address's throttle as a password is: a failed
    one delays the address's next attempt (and counts toward the account of a known
    credential)."""
    admitted = await _admitted(request, "passkey sign-in")
    if isinstance(admitted, JSONResponse):
        return admitted
    body, throttle, address = admitted
    failed = False
    try:
        response, failed = await _passwordless(request, body)
        return response
    finally:
        if failed:
            throttle.failed(address)
        else:
            throttle.settled(address)


async def _passwordless(request: Request, body: dict[str, Any]
                        ) -> tuple[Response, bool]:
    """The passwordless sign-in once admitted: the answer, and whether it failed (a
    refused assertion: the address's delay grows)."""
    services = _services(request)

    def user_of(user_id: int) -> User | None:
        try:
            return services.org.get_user_by_id(user_id)
        except NotFound:
            return None

    try:
        found = await run_in_threadpool(
            lambda: _ceremonies(request).verify(_ceremony_token(request), body.get("credential"),
                                                user=None, sid=None, user_of=user_of))
    except CeremonyFailed as exc:
        return await _failed(request, "webauthn_login", exc, user=None, sid=None,
                             counts=True), True
    user = user_of(found.credential.user_id)
    if user is None or user.status != "active" or (
            user.locked_until is not None and user.locked_until > services.clock()):
        reason = "account locked" if user and user.status == "active" else (
            f"user {user.status}" if user else "no such user")
        try:
            await _emit(request, _record(request, "webauthn_login", "failure",
                                         actor_user=user.username if user else None,
                                         department=user.department if user else None,
                                         reason=reason, extra={"key": found.credential.name}))
        except AuditUnavailable:
            return _error(request, "error", 503), False
        return _error(request, "pk_locked" if reason == "account locked" else "pk_failed"), False
    services.org.record_success(user.username)
    await run_in_threadpool(factor_failures(services).passed, user.id)
    provider = _provider(request)
    old = provider.store.find_session(session_cookie(request) or "")
    if old is not None and old.revoked_at is None:
        provider.store.revoke_session(old.sid, ttl_seconds=services.settings.access_token_lifetime)
    # the key proved possession and its user verification the person: both factors
    stage = stage_of(request, user, ALL_FACTORS - {"change"})
    token, row = provider.store.create_session(
        user.username, stage, amr="hwk mfa",
        absolute_seconds=services.settings.session_absolute_timeout, source_ip=_ip(request),
        user_agent=request.headers.get("user-agent"))
    try:
        await _emit(request, _record(request, "webauthn_login", "success",
                                     actor_user=user.username, department=user.department,
                                     reason="passkey accepted (no password)" + (
                                         f"; next step {stage}" if stage != "active" else ""),
                                     extra={"sid": row.sid, "key": found.credential.name}))
    except AuditUnavailable:
        return _error(request, "error", 503), False
    redirect = RedirectResponse(_go(stage, safe_next(str(body.get("next") or ""))),
                                status_code=303)
    _set_session_cookie(request, redirect, token)
    return _went_on(request, redirect), False


# -- registration ---------------------------------------------------------------------

def _registering(request: Request) -> tuple[SessionRow, User] | None:
    """A fully signed-in session (the account page), or one at the required
    registration step of the sign-in."""
    row = _stage_session(request, "active", "passkey_enrol")
    user = _user(request, row.username) if row else None
    if row is None or user is None or user.status != "active":
        return None
    return row, user


async def enrol_page(request: Request) -> Response:
    row = _stage_session(request, "passkey_enrol")
    if row is None:
        return _to_login(request)
    return render(request, "login_passkey_enrol.html",
                  next=safe_next(request.query_params.get("next")))


async def register_options(request: Request) -> Response:
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    found = _registering(request)
    if found is None:
        return _error(request, "pk_expired", 401)
    row, user = found
    age = stale_for(row.authenticated_at, _services(request).clock())
    if row.stage == "active" and age is not None:
        try:
            await _emit(request, _record(
                request, "webauthn_register", "failure", actor_user=user.username,
                department=user.department, extra={"sid": row.sid}, reason=stale_reason(age)))
        except AuditUnavailable:
            return _error(request, "error", 503)
        return _error(request, "pk_reauth", 403, minutes=MAX_AUTH_AGE // 60)
    name = key_name(str(body.get("name") or ""))
    if not name:
        return _error(request, "pk_bad_name")
    ceremonies = _ceremonies(request)
    if await run_in_threadpool(ceremonies.store.count, user.id) >= MAX_KEYS:
        return _error(request, "pk_too_many", n=MAX_KEYS)
    options, token = await run_in_threadpool(ceremonies.registration, user, name, row.sid)
    return _with_ceremony(request, {"options": json.loads(options)}, token)


async def register_submit(request: Request) -> Response:
    body = await _body(request)
    if isinstance(body, JSONResponse):
        return body
    found = _registering(request)
    if found is None:
        return _error(request, "pk_expired", 401)
    row, user = found
    if (locked := await _locked(request, row, user, "webauthn_register")) is not None:
        return locked
    try:
        key = await run_in_threadpool(
            _ceremonies(request).register, user, _ceremony_token(request), row.sid,
            body.get("credential"))
    except CeremonyFailed as exc:
        return await _failed(request, "webauthn_register", exc, user=user, sid=row.sid)
    try:
        await _emit(request, _record(request, "webauthn_register", "success",
                                     actor_user=user.username, department=user.department,
                                     reason="at sign-in (required)" if row.stage == "passkey_enrol"
                                     else "on the account page",
                                     extra={"sid": row.sid, "key": key.name,
                                            "transports": ",".join(key.transports) or None}))
    except AuditUnavailable:
        return _error(request, "error", 503)
    if row.stage == "passkey_enrol":
        return _went_on(request, await _advance(
            request, row, {"change", "mfa", "passkey_enrol"},
            safe_next(str(body.get("next") or "")), amr=row.amr + " hwk"))
    return _went_on(request, RedirectResponse(f"{BASE}?done=passkey_added#passkeys",
                                              status_code=303))


LAST_FACTOR = Text("webauthn.last_factor", "this is your last second factor: an "
                   "administrator signs in with two factors; register another key (or set "
                   "up an authenticator) first")


def _admin_needs_key(request: Request, user: User) -> bool:
    """Whether the user is an admin whose second factor must be a key (TOTP does not
    count for them under ``webauthn_required_for_admins``)."""
    return bool(_services(request).settings.webauthn_required_for_admins and user.is_admin)


async def _last_factor(request: Request, account: Account, user: User, store: PasskeyStore,
                       key_id: int) -> bool:
    """Whether removing the user's key ``key_id`` would leave an administrator (等保 L3:
    two factors) with no second factor, so that the password alone would enrol the next
    one; the refusal is audited."""
    keys = await run_in_threadpool(store.of_user, user.id)
    if not user.is_admin or not any(k.id == key_id for k in keys) or len(keys) > 1 or (
            user.has_totp and not _admin_needs_key(request, user)):
        return False
    await account.emit(account.record(
        "webauthn_remove", "failure", "refused: the last second factor of an administrator",
        key=next(k.name for k in keys if k.id == key_id)))
    return True


async def _fresh_for_removal(request: Request, account: Account) -> None:
    """The password proves the first factor only: removing a key with it needs a
    sign-in of the last five minutes (with its second factor); refused and audited
    else."""
    row = _provider(request).valid_session(session_cookie(request))
    now = _services(request).clock()
    # no session row (ended meanwhile): refused as a stale one
    age = stale_for(row.authenticated_at, now) if row is not None else MAX_AUTH_AGE + 1
    if age is None:
        return
    await account.emit(account.record("webauthn_remove", "failure", stale_reason(age)))
    problem = Text("webauthn.remove_reauth", "you signed in more than {minutes} minutes ago: "
                   "give a current code, or sign out and in again, to remove a key",
                   minutes=MAX_AUTH_AGE // 60)
    raise ValidationError(problem, problems=[problem])


async def remove_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> None:
        await account.prove("key removal", password=_field(form, "password"),
                            code=_field(form, "code"))
        user = account.user()
        services = _services(request)
        store = PasskeyStore(services.engine, services.keys, services.clock)
        raw = _field(form, "key_id")
        key_id = int(raw) if raw.isascii() and raw.isdigit() else 0
        if await _last_factor(request, account, user, store, key_id):
            raise ValidationError(LAST_FACTOR, problems=[LAST_FACTOR])
        if not (user.has_totp and _field(form, "code").strip()):
            await _fresh_for_removal(request, account)
        removed = await run_in_threadpool(store.remove, user.id, key_id)
        if removed is None:
            raise NotFound(Text("webauthn.no_key", "no such key"))
        await account.emit(account.record("webauthn_remove", "success", "on the account page",
                                          key=removed.name))

    return await _act(request, "passkeys", act,
                      lambda _, __: RedirectResponse(f"{BASE}?done=passkey_removed#passkeys",
                                                     status_code=303))


def routes() -> list[BaseRoute]:
    return [
        Route("/portal/login/webauthn", verify_page, methods=["GET"]),
        Route("/portal/login/webauthn/options", verify_options, methods=["POST"]),
        Route("/portal/login/webauthn", verify_submit, methods=["POST"]),
        Route("/portal/login/webauthn/totp", totp_instead, methods=["GET"]),
        Route("/portal/login/passkey-enrol", enrol_page, methods=["GET"]),
        Route("/portal/login/passkey/options", passkey_options, methods=["POST"]),
        Route("/portal/login/passkey", passkey_submit, methods=["POST"]),
        Route(f"{BASE}/passkeys/options", register_options, methods=["POST"]),
        Route(f"{BASE}/passkeys", register_submit, methods=["POST"]),
        Route(f"{BASE}/passkeys/remove", remove_submit, methods=["POST"]),
    ]
