"""Portal pages: sign-in (password, forced change, TOTP verification and enrolment),
the launcher home page and sign-out.

Every form carries a CSRF token (double submit: an HttpOnly cookie and a hidden
field, compared in constant time), and a post must come from the gateway's own
origin (``Origin`` / ``Sec-Fetch-Site``, see ``gateway.same_origin``). The session
cookie is HttpOnly, SameSite=Lax, Secure when the issuer is https; its value changes at every
step of the sign-in (password, change, TOTP), so a fixed id is never promoted.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from audit import AuditRecord
from catalogue.model import CST
from gateway.directory.client import directory_password_ok
from gateway.directory.errors import DirectoryRefusal, DirectoryUnavailable
from gateway.errors import AuditUnavailable, NotFound, Unauthorized, ValidationError
from gateway.factor_failures import FactorCount, FactorFailures
from gateway.idp import totp as totp_secret
from gateway.idp.account import Account
from gateway.idp.fresh_sign_in import MAX_AUTH_AGE, stale_for, stale_reason
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.store import SessionRow
from gateway.idp.passkeys.ceremonies import passkeys_usable
from gateway.idp.passkeys.store import PasskeyStore
from gateway.idp.recovery_codes import RecoveryCodes
from gateway.idp.security_events import SEEN_COOKIE
from gateway.login_throttle import IN_FLIGHT_SECONDS, Admission, LoginThrottle
from gateway.org import User, sign_in_name
from gateway.passwords import policy_problems, verify_password
from gateway.proxy.acting import chosen, chosen_id
from gateway.root import gateway_of
from gateway.services import Services
from gateway.tables import departments, roles
from gateway.web.delegation_common import acting_entries
from gateway.web.portal.admin_routes import routes as admin_routes
from gateway.web.portal.audit_pages import routes as audit_routes
from gateway.web.portal.break_glass_pages import routes as break_glass_routes
from gateway.web.portal.catalogue_pages import routes as catalogue_routes
from gateway.web.portal.delegation_pages import routes as delegation_routes
from gateway.web.portal.favicon import favicon
from gateway.web.portal.front_refused import front_refused
from gateway.web.portal.i18n import Translator
from gateway.web.portal.launcher import launcher_systems, with_lang
from gateway.web.portal.pages import (
    SECURITY_HEADERS,
    authenticator,
    codes_page,
    csrf_ok,
    page_lang,
    render,
    render_message,
    safe_next,
    session_cookie,
)
from gateway.web.portal.return_to import PATH as RETURN_PATH
from gateway.web.portal.return_to import return_to
from gateway.web.portal.stats_pages import routes as stats_routes
from gateway.web.portal.steward_pages import routes as steward_routes
from gateway.web.saml import front_channel
from keys.errors import InvalidBlob
from texts import Text

HERE = Path(__file__).parent
ENROL_COOKIE = "gg_enrol"
STAGE_PATHS = {"change": "/portal/login/change", "mfa": "/portal/login/totp",
               "enrol": "/portal/login/enrol", "webauthn": "/portal/login/webauthn",
               "passkey_enrol": "/portal/login/passkey-enrol"}

# -- plumbing ---------------------------------------------------------------------------

def _services(request: Request) -> Services:
    return gateway_of(request).services


def _provider(request: Request) -> Provider:
    return gateway_of(request).provider


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    _provider(request).set_session_cookie(response, token)


SECOND_FACTORS = frozenset({"mfa", "enrol", "webauthn"})


def next_stage(user: User, done: set[str], *, passkeys: int = 0,
               passkeys_required: bool = False) -> str:
    """The sign-in's next step. A registered key comes before TOTP (which stays the
    fallback, unless keys are required); an admin who must use a key and has none
    registers one (after TOTP, if set up), as Keycloak's required action does."""
    if user.must_change and "change" not in done:
        return "change"
    if passkeys and not done & SECOND_FACTORS:
        return "webauthn"
    if passkeys_required and not passkeys and "passkey_enrol" not in done:
        if user.has_totp and "mfa" not in done:
            return "mfa"
        return "passkey_enrol"
    if user.has_totp and not done & SECOND_FACTORS:
        return "mfa"
    if user.is_admin and not user.has_totp and not passkeys and not done & {
            "enrol", "passkey_enrol"}:
        return "enrol"
    return "active"


def stage_of(request: Request, user: User, done: set[str]) -> str:
    """``next_stage`` with the user's keys and the operator's setting."""
    services = _services(request)
    count = PasskeyStore(services.engine, services.keys, services.clock).count(user.id)
    return next_stage(user, done, passkeys=count, passkeys_required=bool(
        services.settings.webauthn_required_for_admins and user.is_admin))


def _go(stage: str, next_url: str) -> str:
    if stage == "active":
        return safe_next(next_url)
    return STAGE_PATHS[stage] + "?" + urlencode({"next": next_url})


async def _emit(request: Request, *records: AuditRecord) -> None:
    await _provider(request).emit(list(records))


def _record(request: Request, event_type: str, outcome: str, **kw: Any) -> AuditRecord:
    extra = {k: v for k, v in (kw.pop("extra", None) or {}).items() if v is not None}
    return AuditRecord(event_type=event_type, outcome=outcome, source_ip=_ip(request),
                       extra=extra, **kw)


def _user(request: Request, username: str) -> User | None:
    try:
        return _services(request).org.get_user(username)
    except NotFound:
        return None


def _minutes_left(user: User, request: Request) -> int:
    assert user.locked_until is not None
    return _minutes_until(user.locked_until, _services(request).clock())


def _minutes_until(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds() / 60))


def _audit_failed() -> Response:
    return HTMLResponse("audit log unavailable", status_code=503)


# -- sign-in ----------------------------------------------------------------------------

def _passkey_login(request: Request) -> bool:
    settings = _services(request).settings
    return settings.webauthn_passwordless and passkeys_usable(settings)


async def login_page(request: Request) -> Response:
    info = None
    if request.query_params.get("expired"):
        info = Translator(page_lang(request))("session_expired")
    return render(request, "login.html", error=None, info=info, username="",
                  next=safe_next(request.query_params.get("next")),
                  passkey_login=_passkey_login(request))


async def login_submit(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    username = sign_in_name(str(form.get("username") or ""))
    password = str(form.get("password") or "")
    t = Translator(page_lang(request))

    def again(error: str, status: int = 200) -> Response:
        return render(request, "login.html", status=status, error=error, info=None,
                      username=username, next=next_url,
                      passkey_login=_passkey_login(request))

    if not csrf_ok(request, form):
        return again(t("csrf"), 400)
    throttle = gateway_of(request).throttle
    address = _ip(request)
    try:
        # the address first: a guess sent before its delay is over checks nothing and
        # counts against no account, so a burst cannot lock one
        admission = await _admit(throttle, address)
        if wait := admission.wait:
            await _emit(request, _record(
                request, "login", "failure", actor_user=username or None,
                reason=f"attempt from this address within its delay ({wait} s left)"))
            response = again(t("throttled", seconds=wait), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        attempt = _Attempt(request, throttle, username, next_url, again)
        try:
            return await attempt.run(password)
        finally:
            if not attempt.failed:  # a failure set the address's delay; else end the hold
                throttle.settled(address)
    except AuditUnavailable:
        return _audit_failed()


async def _admit(throttle: LoginThrottle, address: str | None) -> Admission:
    """Wait while another attempt from the address is being checked (a colleague
    behind the same office address, or the rest of a burst), then ask again: the
    answer is admitted, or the delay that attempt earned."""
    pause = 0.02
    while (admission := throttle.admit(address)).busy and pause < IN_FLIGHT_SECONDS:
        await asyncio.sleep(pause)
        pause *= 2
    if admission.busy:
        # still held past IN_FLIGHT_SECONDS (a clock behind another process's):
        # refuse rather than check two at once
        return Admission(wait=1)
    return admission


class _Attempt:
    """One admitted password attempt. Existing and unknown names go through the same
    steps (lock check, one argon2 verify, one counted failure, the same words), so
    neither the answer nor its timing tells which accounts exist."""

    def __init__(self, request: Request, throttle: LoginThrottle, username: str,
                 next_url: str, again: Callable[..., Response]) -> None:
        self.request = request
        self.services = _services(request)
        self.throttle = throttle
        self.username = username
        self.next_url = next_url
        self.again = again
        self.t = Translator(page_lang(request))
        self.failed = False

    def locked_until(self, user: User | None) -> datetime | None:
        if user is not None:
            return user.locked_until
        return self.throttle.name_locked_until(self.username) if self.username else None

    async def refuse_if_locked(self, user: User | None) -> Response | None:
        until = self.locked_until(user)
        now = self.services.clock()
        if until is None or until <= now:
            return None
        await _emit(self.request, _record(
            self.request, "login", "failure", actor_user=self.username or None,
            department=user.department if user else None,
            reason="account locked" if user else "unknown user; name locked"))
        return self.again(self.t("locked", minutes=_minutes_until(until, now)))

    async def run(self, password: str) -> Response:
        request, username = self.request, self.username
        services = self.services
        settings = services.settings
        org = services.org
        if ("@" in username or "\\" in username) \
                and (directory := gateway_of(request).directory) is not None:
            # an Active Directory sign-in name (userPrincipalName, DOMAIN\user) is no
            # username ('@' and '\' are in none): the person's, as the directory says,
            # with its lock and failures
            try:
                found = await run_in_threadpool(directory.principal_username, username)
            except DirectoryUnavailable as exc:
                return await self.directory_down(None, exc)
            if found:
                self.username = username = found
        user = _user(request, username) if username else None
        if refused := await self.refuse_if_locked(user):
            return refused
        try:
            ok = await self.check(user, password)
        except DirectoryRefusal as exc:
            if user is None or user.status != "active":
                return await self.wrong(user, False)
            return await self.directory_refused(user, exc)
        except DirectoryUnavailable as exc:
            return await self.directory_down(user, exc)
        # guesses sent together all passed the check above before the first was hashed:
        # if the wrong ones locked the account meanwhile, a right one must not sign in
        # (nor lift the lock), or parallel guesses outrun the lockout
        if ok and user is not None and (refused := await self.refuse_if_locked(
                _user(request, username))):
            return refused
        if user is None or not ok or user.status != "active":
            return await self.wrong(user, ok)
        # a directory's password follows the directory's rule, and is changed there
        weak: list[str] = [] if user.must_change or user.source != "local" else (
            await run_in_threadpool(policy_problems, password, username))
        if weak:
            # set before today's rule (or by an operator's file): it is changed now
            org.require_password_change(username, "password does not meet the rule")
            user = dataclasses.replace(user, must_change=True)
        provider = _provider(request)
        old = provider.store.find_session(session_cookie(request) or "")
        if old is not None and old.revoked_at is None:
            provider.store.revoke_session(old.sid, ttl_seconds=settings.access_token_lifetime)
        stage = stage_of(request, user, set())
        if stage == "active":
            # only a complete sign-in clears the failures: a password signed in again
            # after each few wrong codes would otherwise try the six digits without end
            org.record_success(username)
        token, row = provider.store.create_session(
            username, stage, amr="pwd", absolute_seconds=settings.session_absolute_timeout,
            source_ip=_ip(request), user_agent=request.headers.get("user-agent"))
        await _emit(request, _record(request, "login", "success", actor_user=username,
                                     department=user.department,
                                     reason="password accepted" + (
                                         f"; next step {stage}" if stage != "active" else ""),
                                     extra={"sid": row.sid}))
        response = RedirectResponse(_go(stage, self.next_url), status_code=303)
        _set_session_cookie(request, response, token)
        return response

    async def check(self, user: User | None, password: str) -> bool:
        """The password: a bind to the directory for its users (never stored here),
        else argon2 (unknown names too, for the same timing)."""
        if user is not None and user.source == "directory":
            return await run_in_threadpool(directory_password_ok,
                                           gateway_of(self.request).directory,
                                           user.username, password)
        stored = self.services.org.password_hash(self.username) if user is not None else None
        return await run_in_threadpool(verify_password, stored, password)

    async def directory_refused(self, user: User, exc: DirectoryRefusal) -> Response:
        """The directory's own refusal of the account (AD: the password must be
        changed at next logon or expired; the account disabled, expired or locked out
        since the last sync): said so, each in its words, not counted as a wrong
        password (its owner would lock the account here for the directory's reason,
        by typing the right password)."""
        await _emit(self.request, _record(self.request, "login", "failure",
                                          actor_user=self.username,
                                          department=user.department, reason=str(exc)))
        return self.again(self.t(exc.message), 403)

    async def directory_down(self, user: User | None, exc: DirectoryUnavailable) -> Response:
        """Fail closed: no sign-in without the directory's answer, and no failure
        counted against the person or the address."""
        await _emit(self.request, _record(
            self.request, "login", "failure", actor_user=self.username,
            department=user.department if user else None, reason=str(exc)))
        return self.again(self.t("directory_down"), 503)

    async def wrong(self, user: User | None, ok: bool) -> Response:
        request, username = self.request, self.username
        settings = self.services.settings
        now = self.services.clock()
        self.failed = True
        self.throttle.failed(_ip(request))
        reason = ("unknown user" if user is None else
                  "wrong password" if not ok else f"user {user.status}")
        records = [_record(request, "login", "failure", actor_user=username or None,
                           department=user.department if user else None, reason=reason)]
        until: datetime | None = None
        count = 0
        if user is not None and not ok:
            after = self.services.org.record_failure(
                username, threshold=settings.lockout_threshold,
                window_seconds=settings.lockout_window_seconds)
            until, count = after.locked_until, after.failed_logins
        elif user is None and username:
            failures = self.throttle.name_failed(username)
            until, count = failures.locked_until, failures.count
        message = self.t("bad_credentials")
        if until is not None and until > now:
            records.append(_record(
                request, "login_lockout", "deny", actor_user=username,
                department=user.department if user else None,
                reason=f"{count} failures within {settings.lockout_window_seconds} s"
                       + ("" if user else " (no such account)")))
            message = self.t("locked", minutes=_minutes_until(until, now))
        await _emit(request, *records)
        return self.again(message)


def _stage_session(request: Request, *stages: str) -> SessionRow | None:
    provider = _provider(request)
    row = provider.valid_session(session_cookie(request), stage=None)
    if row is None or row.stage not in stages:
        return None
    return row


def _to_login(request: Request) -> Response:
    return RedirectResponse("/portal/login?" + urlencode(
        {"next": safe_next(request.query_params.get("next")), "expired": "1"}),
        status_code=303)


async def _advance(request: Request, row: SessionRow, done: set[str], next_url: str,
                   amr: str | None = None) -> Response:
    user = _user(request, row.username)
    if user is None or user.status != "active":
        return _to_login(request)
    stage = stage_of(request, user, done)
    if stage == "active":  # the sign-in is complete: its failures are forgiven
        _services(request).org.record_success(row.username)
    token = _provider(request).store.advance_session(row.sid, stage, amr=amr)
    response = RedirectResponse(_go(stage, next_url), status_code=303)
    _set_session_cookie(request, response, token)
    return response


def _password_problem(t: Translator, problem: str) -> str:
    """The rule's own words in the page's language (a problem it did not name, as is)."""
    if isinstance(problem, Text) and problem.key.startswith("org.password_"):
        return t("pw_" + problem.key.removeprefix("org.password_"), **problem.params)
    return problem


def _signed_in_change(request: Request) -> Response | None:
    """A signed-in user changes the password on the account page (the current one is
    asked there); this page is the sign-in's forced step."""
    if _provider(request).valid_session(session_cookie(request)) is None:
        return None
    return RedirectResponse("/portal/account#password", status_code=303)


async def change_page(request: Request) -> Response:
    if _stage_session(request, "change") is None:
        return _signed_in_change(request) or _to_login(request)
    return render(request, "change.html", errors=[],
                  next=safe_next(request.query_params.get("next")))


async def change_submit(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    t = Translator(page_lang(request))
    row = _stage_session(request, "change")
    if row is None:
        return _signed_in_change(request) or _to_login(request)
    if not csrf_ok(request, form):
        return render(request, "change.html", status=400, errors=[t("csrf")], next=next_url)
    new, confirm = str(form.get("new_password") or ""), str(form.get("confirm_password") or "")
    if new != confirm:
        return render(request, "change.html", errors=[t("mismatch")], next=next_url)
    try:
        await run_in_threadpool(_services(request).org.change_password, row.username, new)
    except ValidationError as exc:
        errors = [_password_problem(t, p) for p in exc.problems] or [exc.description]
        return render(request, "change.html", errors=errors, next=next_url)
    try:
        await _emit(request, _record(request, "password_changed", "success",
                                     actor_user=row.username, reason="forced change at login",
                                     extra={"sid": row.sid}))
    except AuditUnavailable:
        return _audit_failed()
    return await _advance(request, row, {"change"}, next_url)


# -- TOTP -------------------------------------------------------------------------------

def _load_totp(request: Request, user: User) -> pyotp.TOTP | None:
    return totp_secret.load(_services(request), user)


def _check_code(request: Request, totp: pyotp.TOTP, code: str, username: str) -> bool:
    return totp_secret.check(_services(request), _provider(request).store, totp, code, username)


def factor_failures(services: Services) -> FactorFailures:
    """The account's wrong codes in a row (``mfa_failure_limit``; gateway.factor_failures)."""
    return FactorFailures(services.engine, limit=services.settings.mfa_failure_limit,
                          clock=services.clock)


def codes_locked_reason(limit: int) -> str:
    return (f"codes locked: {limit} wrong codes in a row; an administrator's unlock "
            "lifts it")


async def code_attempt(request: Request, row: SessionRow, user: User,
                       event: str) -> FactorCount | Response:
    """Count the code about to be checked (gateway.factor_failures: counted first, so
    codes sent at once on many sessions meet the limit too); an account whose codes
    are locked (``mfa_failure_limit`` wrong ones in a row, until an administrator
    unlocks) has no TOTP or recovery code checked, on any session: refused, the
    session ends, audited; the sign-in page says so."""
    services = _services(request)
    failures = factor_failures(services)
    count = await run_in_threadpool(failures.attempt, user.id)
    if not count.locked:
        return count
    _provider(request).store.revoke_session(
        row.sid, ttl_seconds=services.settings.access_token_lifetime)
    try:
        await _emit(request, _record(request, event, "failure", actor_user=row.username,
                                     department=user.department,
                                     reason=codes_locked_reason(failures.limit),
                                     extra={"sid": row.sid}))
    except AuditUnavailable:
        return _audit_failed()
    t = Translator(page_lang(request))
    return render(request, "login.html", status=403, error=t("mfa_locked"), info=None,
                  username=row.username, next="/portal")


async def _totp_failed(request: Request, row: SessionRow, user: User, event: str,
                       template: str, *, guess: FactorCount | None = None,
                       **ctx: Any) -> Response:
    """A wrong code: counted toward the account lock; when it was a guess at the
    enrolled TOTP or a recovery code, ``guess`` is its count toward the codes' own limit
    (made before the check; not for a new authenticator's first code)."""
    services = _services(request)
    settings = services.settings
    t = Translator(page_lang(request))
    after = services.org.record_failure(row.username, threshold=settings.lockout_threshold,
                                        window_seconds=settings.lockout_window_seconds)
    records = [_record(request, event, "failure", actor_user=row.username,
                       department=user.department, reason="wrong or reused code",
                       extra={"sid": row.sid})]
    codes_locked = guess is not None and guess.just_locked
    if guess is not None and guess.just_locked:
        records.append(_record(
            request, "mfa_lockout", "deny", actor_user=row.username,
            department=user.department,
            reason=codes_locked_reason(settings.mfa_failure_limit),
            extra={"failures": guess.failures}))
    locked = after.locked_until is not None and after.locked_until > services.clock()
    if locked:
        records.append(_record(request, "login_lockout", "deny", actor_user=row.username,
                               department=user.department, reason="too many wrong codes"))
    if locked or codes_locked:
        _provider(request).store.revoke_session(row.sid,
                                                ttl_seconds=settings.access_token_lifetime)
    try:
        await _emit(request, *records)
    except AuditUnavailable:
        return _audit_failed()
    if codes_locked:
        return render(request, "login.html", status=403, error=t("mfa_locked"), info=None,
                      username=row.username, next="/portal")
    if locked:
        return render(request, "login.html", error=t("locked", minutes=_minutes_left(
            after, request)), info=None, username=row.username, next="/portal")
    return render(request, template, **(ctx | {"error": t("bad_totp")}))


def blocked(user: User, now: datetime) -> str | None:
    """Why the user may pass no factor now ("account locked", "user disabled"), or None."""
    if user.status != "active":
        return f"user {user.status}"
    if user.locked_until is not None and user.locked_until > now:
        return "account locked"
    return None


async def stop_blocked(request: Request, row: SessionRow, user: User,
                       event: str) -> str | None:
    """A locked account passes no second factor: the lock ended only the session that
    caused it, and a code checked on another one (and its success lifting the lock)
    would let parallel sessions outrun the lockout. A user disabled since the password
    likewise. Refused uncounted, as the password step refuses a locked account: the
    session ends, the refusal is audited (``event`` failure); its reason, or None
    when the user may go on. Raises AuditUnavailable."""
    services = _services(request)
    reason = blocked(user, services.clock())
    if reason is None:
        return None
    _provider(request).store.revoke_session(
        row.sid, ttl_seconds=services.settings.access_token_lifetime)
    await _emit(request, _record(request, event, "failure", actor_user=row.username,
                                 department=user.department, reason=reason,
                                 extra={"sid": row.sid}))
    return reason


async def refused_locked(request: Request, row: SessionRow, user: User,
                         event: str) -> Response | None:
    """``stop_blocked`` at a page's step: the sign-in page saying the account is locked
    (a disabled user: the sign-in page), or None."""
    try:
        if await stop_blocked(request, row, user, event) is None:
            return None
    except AuditUnavailable:
        return _audit_failed()
    if user.status != "active":
        return _to_login(request)
    t = Translator(page_lang(request))
    return render(request, "login.html", error=t("locked", minutes=_minutes_left(
        user, request)), info=None, username=row.username, next="/portal")


async def _totp_unreadable(request: Request, row: SessionRow, user: User,
                           next_url: str) -> Response:
    """A stored TOTP secret that does not open: refused, fails closed, audited, and
    not counted as the person's wrong code (nothing they type could pass)."""
    try:
        await _emit(request, _record(
            request, "mfa_verify", "failure", actor_user=row.username,
            department=user.department, extra={"sid": row.sid},
            reason="the stored authenticator secret does not open (altered, or sealed "
                   "under another key)"))
    except AuditUnavailable:
        return _audit_failed()
    return render(request, "totp.html", status=403, next=next_url,
                  error=Translator(page_lang(request))("totp_unreadable"))


async def totp_page(request: Request) -> Response:
    row = _stage_session(request, "mfa")
    if row is None:
        return _to_login(request)
    user = _user(request, row.username)
    # said before a code is typed: a locked account's codes are refused unchecked
    locked = user is not None and await run_in_threadpool(
        factor_failures(_services(request)).locked, user.id)
    return render(request, "totp.html", error=Translator(page_lang(request))("mfa_locked")
                  if locked else None, next=safe_next(request.query_params.get("next")))


async def totp_submit(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    row = _stage_session(request, "mfa")
    if row is None:
        return _to_login(request)
    if not csrf_ok(request, form):
        return render(request, "totp.html", status=400,
                      error=Translator(page_lang(request))("csrf"), next=next_url)
    user = _user(request, row.username)
    if user is None:
        return _to_login(request)
    if locked := await refused_locked(request, row, user, "mfa_verify"):
        return locked
    try:
        totp = _load_totp(request, user)
    except InvalidBlob:  # altered, or sealed under a key this ring does not hold
        return await _totp_unreadable(request, row, user, next_url)
    count = await code_attempt(request, row, user, "mfa_verify")
    if isinstance(count, Response):
        return count
    if totp is None or not _check_code(request, totp, str(form.get("code") or ""),
                                       row.username):
        return await _totp_failed(request, row, user, "mfa_verify", "totp.html", guess=count,
                                  next=next_url)
    _services(request).org.record_success(row.username)
    await run_in_threadpool(factor_failures(_services(request)).passed, user.id)
    try:
        await _emit(request, _record(request, "mfa_verify", "success", actor_user=row.username,
                                     department=user.department, extra={"sid": row.sid}))
    except AuditUnavailable:
        return _audit_failed()
    return await _advance(request, row, {"change", "mfa"}, next_url, amr="pwd otp")


def _enrol_context(request: Request, user: User, secret: str, next_url: str,
                   error: str | None) -> dict[str, Any]:
    _, qr = totp_secret.provisioning(secret, user.username)
    return {"qr_svg": qr, "secret": secret, "next": next_url, "error": error,
            "required": user.is_admin}


def _seal_pending(request: Request, sid: str, secret: str) -> str:
    blob = _services(request).keys.seal(secret.encode(), f"idp.enrol:{sid}")
    return base64.urlsafe_b64encode(blob).decode()


def _open_pending(request: Request, sid: str) -> str | None:
    raw = request.cookies.get(ENROL_COOKIE)
    if not raw:
        return None
    try:
        return str(_services(request).keys.open(base64.urlsafe_b64decode(raw.encode()),
                                                 f"idp.enrol:{sid}").decode())
    except Exception:
        return None


async def _stale_enrol(request: Request, row: SessionRow, user: User) -> Response | None:
    """A signed-in session (the account page's link, not the sign-in's required step)
    sets up a first authenticator only soon after signing in, as a key is registered
    (``gateway.idp.fresh_sign_in``); refused and audited else."""
    age = stale_for(row.authenticated_at, _services(request).clock())
    if row.stage != "active" or age is None:
        return None
    try:
        await _emit(request, _record(request, "mfa_enrol", "failure", actor_user=row.username,
                                     department=user.department, reason=stale_reason(age),
                                     extra={"sid": row.sid}))
    except AuditUnavailable:
        return _audit_failed()
    t = Translator(page_lang(request))
    return render_message(request, "error", t("pk_totp_reauth", minutes=MAX_AUTH_AGE // 60),
                          status=403)


async def enrol_page(request: Request) -> Response:
    row = _stage_session(request, "enrol", "active")
    if row is None:
        return _to_login(request)
    user = _user(request, row.username)
    if user is None or user.has_totp:
        return RedirectResponse("/portal", status_code=303)
    if stale := await _stale_enrol(request, row, user):
        return stale
    secret = pyotp.random_base32()
    response = render(request, "enrol.html", **_enrol_context(
        request, user, secret, safe_next(request.query_params.get("next")), None))
    response.set_cookie(ENROL_COOKIE, _seal_pending(request, row.sid, secret), httponly=True,
                        samesite="strict", secure=_provider(request).secure_cookies,
                        path="/portal/login/enrol", max_age=900)
    return response


async def enrol_submit(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    row = _stage_session(request, "enrol", "active")
    if row is None:
        return _to_login(request)
    user = _user(request, row.username)
    secret = _open_pending(request, row.sid)
    if user is not None and not user.has_totp and (
            stale := await _stale_enrol(request, row, user)):
        return stale
    if user is None or user.has_totp or secret is None:
        return RedirectResponse("/portal/login/enrol?" + urlencode({"next": next_url}),
                                status_code=303)
    if not csrf_ok(request, form):
        return render(request, "enrol.html", status=400, **_enrol_context(
            request, user, secret, next_url, Translator(page_lang(request))("csrf")))
    if locked := await refused_locked(request, row, user, "mfa_enrol"):
        return locked
    if not _check_code(request, pyotp.TOTP(secret), str(form.get("code") or ""),
                       row.username):
        return await _totp_failed(request, row, user, "mfa_enrol", "enrol.html",
                                  **_enrol_context(request, user, secret, next_url, None))
    services = _services(request)
    totp_secret.store(services, user, secret)
    codes = await run_in_threadpool(
        RecoveryCodes(services.engine, services.keys, services.clock).replace, user.id)
    # the person did it, not the gateway's OS account (as on the account page)
    services.record_admin_change("user_totp_enrolled", {"user": user.username,
                                                        "actor": user.username})
    try:
        await _emit(request, _record(request, "mfa_enrol", "success", actor_user=row.username,
                                     department=user.department, extra={"sid": row.sid}),
                    _record(request, "recovery_codes_issued", "success",
                            actor_user=row.username, department=user.department,
                            reason="at enrolment", extra={"sid": row.sid,
                                                          "count": len(codes)}))
    except AuditUnavailable:
        return _audit_failed()
    advanced = await _advance(request, row, {"change", "mfa", "enrol"}, next_url,
                              amr="pwd otp")
    # the codes are shown once, under the advanced session; "saved" goes on to next
    response = codes_page(request, codes, advanced.headers["location"])
    for cookie in advanced.headers.getlist("set-cookie"):
        response.headers.append("set-cookie", cookie)
    response.delete_cookie(ENROL_COOKIE, path="/portal/login/enrol")
    return response


# -- home and sign-out ------------------------------------------------------------------

async def home(request: Request) -> Response:

    cookie = session_cookie(request)
    try:
        principal = authenticator(request).from_session(cookie or "")
    except Unauthorized:
        return RedirectResponse("/portal/login?" + urlencode({"next": "/portal"}),
                                status_code=303)
    user = _user(request, principal.username or "")
    if user is None:
        return _to_login(request)
    labels = await run_in_threadpool(_labels, _services(request), user,
                                     Translator(page_lang(request)))
    # 委托: the colleagues this user may act for, their systems marked 代理 A
    delegated = await run_in_threadpool(acting_entries, gateway_of(request), user.username)
    acting = chosen_id(_services(request).keys, principal.session_id,
                       chosen({"cookie": request.headers.get("cookie", "")}))
    acting_for = None
    if acting is None:
        systems = await run_in_threadpool(
            launcher_systems, _services(request).engine, gateway_of(request).policies,
            principal, {a.system for a in gateway_of(request).break_glass.active.of(
                principal.username) if a.resource is None}, page_lang(request))
    else:
        # while acting, the proxy decides every /s/ request of this session as A
        # (gateway.proxy.acting) and refuses B's own systems: the launcher lists what
        # the delegation opens now, none when it is no longer in force
        entry = next((e for e in delegated if e.delegation.id == acting), None)
        acting_for = entry.delegator_name if entry else None
        systems = [{**found, "url": with_lang(found["url"], page_lang(request)),
                    "break_glass": ""} for found in (entry.systems if entry else [])]
    # changes to how the person signs in, not yet acknowledged (the owner's notice)
    security = await run_in_threadpool(Account(
        _provider(request), user.username, sid=principal.session_id).unseen_security_events,
        request.cookies.get(SEEN_COOKIE))
    return render(request, "home.html", user=user, systems=systems, info=None,
                  is_admin=user.is_admin, delegated=delegated, security=security,
                  when=_when_cst, acting=acting, acting_for=acting_for, **labels)


def _when_cst(value: datetime) -> str:
    return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")


def _labels(services: Services, user: User, t: Translator) -> dict[str, Any]:
    """Department and role names as people know them (the codes are for machines):
    a built-in role in the page's language, another as the roles table names it."""

    with services.engine.connect() as conn:
        dept = conn.execute(
            sa.select(departments.c.name).where(departments.c.code == user.department)
        ).scalar()
        names = dict(conn.execute(sa.select(roles.c.code, roles.c.name)).all())
    return {
        "department_name": dept or user.department,
        "role_names": [t.value("role_", r, default=names.get(r, r))
                       for r in sorted(user.roles)],
    }


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form):
        return render_message(request, "error", Translator(page_lang(request))("csrf"), status=400)
    provider = _provider(request)
    row = provider.valid_session(session_cookie(request), stage=None)
    response: Response
    if row is not None:
        try:
            with gateway_of(request).saml.browser_tells(row.sid):
                await provider.end_session(row, reason="portal sign-out",
                                           source_ip=_ip(request))
        except AuditUnavailable:
            return _audit_failed()
        # SAML SPs the back channel cannot reach hear of it through the browser
        response = await front_channel(request, row.sid)
    else:
        response = render_message(request, "signed_out",
                                  Translator(page_lang(request))("signed_out_detail"))
    gateway_of(request).provider.clear_session_cookie(response)
    return response


async def root(request: Request) -> Response:
    return RedirectResponse("/portal", status_code=303)


def with_security_headers(app: ASGIApp) -> ASGIApp:
    """``app`` with the portal's security headers on every response it sends (a
    redirect, a static file, a page): each one it did not set itself."""
    frame = [(k.lower().encode("latin-1"), v.encode("latin-1"))
             for k, v in SECURITY_HEADERS.items() if k != "Cache-Control"]

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in frame if k not in have]
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, sending)

    return wrapped


def portal_routes(more: Sequence[BaseRoute] = ()) -> list[BaseRoute]:
    """Every portal page (``more``: pages defined above this module, the account's),
    each response with the portal's security headers."""
    out = _portal_routes([*more, *steward_routes(), *catalogue_routes(), *audit_routes(),
                          *stats_routes(), *admin_routes(), *break_glass_routes(),
                          *delegation_routes()])
    for route in out:
        if isinstance(route, Route | Mount):
            route.app = with_security_headers(route.app)
    return out


def _portal_routes(pages: list[BaseRoute]) -> list[BaseRoute]:
    return [
        *pages,
        Route("/", root),
        Route("/portal", home),
        Route("/favicon.ico", favicon),
        Route("/portal/login", login_page, methods=["GET"]),
        # what a front proxy shows a browser forward-auth refused (nginx error_page)
        Route("/portal/refused", front_refused, methods=["GET"]),
        Route(RETURN_PATH, return_to, methods=["GET"]),
        Route("/portal/login", login_submit, methods=["POST"]),
        Route("/portal/login/change", change_page, methods=["GET"]),
        Route("/portal/login/change", change_submit, methods=["POST"]),
        Route("/portal/login/totp", totp_page, methods=["GET"]),
        Route("/portal/login/totp", totp_submit, methods=["POST"]),
        Route("/portal/login/enrol", enrol_page, methods=["GET"]),
        Route("/portal/login/enrol", enrol_submit, methods=["POST"]),
        Route("/portal/logout", logout, methods=["POST"]),
        Mount("/portal/static", app=StaticFiles(directory=str(HERE / "static")),
              name="portal-static"),
    ]
