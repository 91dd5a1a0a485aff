"""The account page (``/portal/account``): one's own password, authenticator, recovery
codes, sessions and recent sign-ins, for everyone signed in; and the recovery code
at the sign-in's TOTP step.

    GET  /portal/account                         the page
    POST /portal/account/password                change the password (current one asked)
    POST /portal/account/totp                    password or code → a new authenticator
    POST /portal/account/totp/confirm            its first code → enrolled, new codes shown
    POST /portal/account/recovery-codes          password or code → a new set, shown once
    POST /portal/account/recovery-codes/saved    "I saved them" → on to where the user was
    POST /portal/account/sessions/end            sign out one session
    POST /portal/account/grants/revoke           revoke one OAuth grant
    POST /portal/account/sign-out-everywhere     every session and grant ends
    POST /portal/account/security-events/seen    the home page's notice acknowledged
    POST /portal/login/recovery                  a recovery code instead of a TOTP code

The rules are :class:`gateway.idp.account.Account`'s, which ``/api/v1/account``
shares. Every form carries the portal's CSRF token and must come from the gateway's
own origin (``routes.csrf_ok``); a refused form is the page again with the problem
beside the form, in the page's language.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from catalogue.model import CST
from gateway.directory.client import password_checker
from gateway.directory.errors import DirectoryRefusal, DirectoryUnavailable
from gateway.errors import AuditUnavailable, NotFound, Unauthorized, ValidationError
from gateway.i18n import render as render_text
from gateway.idp.account import Account, Pending
from gateway.idp.passkeys.ceremonies import passkeys_usable
from gateway.idp.passkeys.store import PasskeyStore
from gateway.idp.recovery_codes import RecoveryCodes
from gateway.idp.security_events import SEEN_COOKIE, UNSEEN_DAYS
from gateway.root import gateway_of
from gateway.services import Services
from gateway.web.portal.i18n import Translator
from gateway.web.portal.pages import (
    authenticator,
    codes_page,
    csrf_ok,
    page_lang,
    render,
    render_message,
    safe_next,
    session_cookie,
)
from gateway.web.portal.routes import (
    _advance,
    _audit_failed,
    _password_problem,
    _provider,
    _record,
    _stage_session,
    _to_login,
    _totp_failed,
    _user,
    code_attempt,
    factor_failures,
    refused_locked,
)

BASE = "/portal/account"
PENDING_COOKIE = "gg_totp_pending"
DONE = ("password", "session_ended", "grant_revoked", "consent_revoked", "codes_saved", "totp",
        "recovery_used", "passkey_added", "passkey_removed")


def _services(request: Request) -> Services:
    return gateway_of(request).services


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _account(request: Request) -> Account | None:
    """The signed-in user's account (None: no fully signed-in session)."""
    try:
        principal = authenticator(request).from_session(session_cookie(request) or "")
    except Unauthorized:
        return None
    if principal.username is None:  # a session is always a person's
        return None
    return Account(gateway_of(request).provider, principal.username, sid=principal.session_id,
                   source_ip=_ip(request),
                   directory_check=password_checker(gateway_of(request).directory))


def _sign_in_first(request: Request) -> Response:
    return RedirectResponse("/portal/login?" + urlencode({"next": BASE}), status_code=303)


def _when(t: Translator) -> Any:
    def when(value: datetime | str | None) -> str:
        if value is None:
            return "-"
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value.astimezone(CST).strftime("%Y-%m-%d %H:%M")
    return when


def problems_of(t: Translator, exc: ValidationError) -> list[str]:
    """A refusal's problems in the page's language (the password rule in the portal's
    own words, any other by its key)."""
    out = []
    for p in exc.problems or [exc.description]:
        said = _password_problem(t, p)
        out.append(said if said is not p else render_text(p, t.lang))
    return out


async def _page(request: Request, account: Account, *, status: int = 200,
                errors: dict[str, list[str]] | None = None, info: str | None = None
                ) -> Response:
    t = Translator(page_lang(request))
    user = await run_in_threadpool(account.user)
    summary = await run_in_threadpool(account.summary)
    sessions = await run_in_threadpool(account.sessions)
    grants = await run_in_threadpool(account.grants)
    consents = await run_in_threadpool(account.consents)
    sign_ins = await run_in_threadpool(account.sign_ins, 20)
    security = await run_in_threadpool(account.security_events, 20)
    services = _services(request)
    passkeys = await run_in_threadpool(
        PasskeyStore(services.engine, services.keys, services.clock).of_user, user.id)
    next_url = safe_next(request.query_params.get("next"))
    return render(request, "account.html", status=status, user=user, summary=summary,
                  sessions=sessions, grants=grants, consents=consents, sign_ins=sign_ins,
                  security=security,
                  errors=errors or {}, info=info, when=_when(t), passkeys=passkeys,
                  passkeys_usable=passkeys_usable(services.settings),
                  continue_url=next_url if next_url not in ("/portal", BASE) else None)


async def account_page(request: Request) -> Response:
    account = _account(request)
    if account is None:
        return _sign_in_first(request)
    t = Translator(page_lang(request))
    q = request.query_params
    info = None
    if (done := q.get("done")) in DONE:
        n = q.get("n", "0")
        info = t(f"acct_done_{done}", n=n if n.isdigit() else "0")
    return await _page(request, account, info=info)


async def _form(request: Request) -> tuple[Account | None, Any, Response | None]:
    """The account and form of a post, or the answer that refuses it."""
    account = _account(request)
    if account is None:
        return None, None, _sign_in_first(request)
    form = await request.form()
    if not csrf_ok(request, form):
        return None, None, render_message(request, "error", Translator(page_lang(request))("csrf"),
                                          status=400)
    return account, form, None


def _back(done: str, anchor: str, **extra: Any) -> Response:
    return RedirectResponse(f"{BASE}?" + urlencode({"done": done, **extra}) + f"#{anchor}",
                            status_code=303)


async def _act(request: Request, section: str,
               act: Callable[[Account, Any], Awaitable[Any]],
               then: Callable[[Account, Any], Response]) -> Response:
    """A post of the account page: signed in, CSRF, then ``act`` (account, form); its
    refusal is the page again with the problem in ``section``, its result goes to
    ``then``."""
    account, form, refused = await _form(request)
    if refused is not None or account is None:
        return refused or _sign_in_first(request)
    try:
        result = await act(account, form)
    except ValidationError as exc:
        return await _refused(request, account, exc, section)
    except NotFound as exc:  # not one of the user's live sessions or grants
        return await _page(request, account, status=404, errors={
            section: [render_text(exc.description, page_lang(request))]})
    except DirectoryRefusal as exc:
        # the directory's own refusal (AD: the password to change first, the account
        # disabled, expired or locked out): said as the sign-in says it, not counted
        await account.emit(account.record("account_reauth", "failure", str(exc)[:300]))
        return await _page(request, account, status=403, errors={
            section: [Translator(page_lang(request))(exc.message)]})
    except DirectoryUnavailable as exc:
        # a directory user's password proof without the directory's answer (down, or
        # past its deadline): refused, not counted, said on the page in its language as
        # the sign-in does; the directory's address and error go to the audit record
        await account.emit(account.record("account_reauth", "failure", str(exc)[:300]))
        return await _page(request, account, status=503, errors={
            section: [Translator(page_lang(request))("directory_down")]})
    except AuditUnavailable:
        return _audit_failed()
    return then(account, result)


def _field(form: Any, name: str) -> str:
    return str(form.get(name) or "")


async def password_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> int:
        if _field(form, "new_password") != _field(form, "confirm_password"):
            raise ValidationError(problems=[Translator(page_lang(request))("mismatch")])
        return await account.change_password(
            _field(form, "current_password"), _field(form, "new_password"),
            sign_out_others=bool(form.get("sign_out_others")))

    return await _act(request, "password", act,
                      lambda _, ended: _back("password", "password", n=ended))


def _gone(request: Request) -> bool:
    """The session ended under the request (a lock after too many wrong passwords)."""
    return _provider(request).valid_session(session_cookie(request)) is None


async def _refused(request: Request, account: Account, exc: ValidationError,
                   section: str) -> Response:
    """The page again with the problem beside the form (the sign-in page if the
    refusal locked the account and so ended the session)."""
    if await run_in_threadpool(_gone, request):
        return _to_login(request)
    return await _page(request, account, status=400,
                       errors={section: problems_of(Translator(page_lang(request)), exc)})


def _setup_page(request: Request, pending: Pending, error: str | None = None,
                status: int = 200) -> Response:
    response = render(request, "account_totp.html", status=status, qr_svg=pending.qr_svg,
                      secret=pending.secret, error=error)
    response.set_cookie(PENDING_COOKIE, pending.token, httponly=True, samesite="strict",
                        secure=_provider(request).secure_cookies, path=BASE, max_age=900)
    return response


async def totp_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> Pending:
        return await account.start_totp(password=_field(form, "password"),
                                        code=_field(form, "code"))

    return await _act(request, "totp", act, lambda _, pending: _setup_page(request, pending))


async def totp_confirm(request: Request) -> Response:
    account, form, refused = await _form(request)
    if refused is not None or account is None:
        return refused or _sign_in_first(request)
    t = Translator(page_lang(request))
    token = request.cookies.get(PENDING_COOKIE, "")
    try:
        codes = await account.confirm_totp(token, str(form.get("code") or ""))
    except ValidationError as exc:
        if await run_in_threadpool(_gone, request):  # the wrong code locked the account
            return _to_login(request)
        if exc.extra.get("field") == "code":
            try:
                pending = account.pending(token)
            except ValidationError as gone:
                return await _page(request, account, status=400,
                                   errors={"totp": problems_of(t, gone)})
            return _setup_page(request, pending, problems_of(t, exc)[0], status=400)
        return await _page(request, account, status=400, errors={"totp": problems_of(t, exc)})
    except AuditUnavailable:
        return _audit_failed()
    response = codes_page(request, codes, f"{BASE}?done=totp")
    response.delete_cookie(PENDING_COOKIE, path=BASE)
    return response


async def codes_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> list[str]:
        return await account.regenerate_codes(password=_field(form, "password"),
                                              code=_field(form, "code"))

    return await _act(request, "recovery", act, lambda _, codes: codes_page(
        request, codes, f"{BASE}?done=codes_saved"))


async def codes_saved(request: Request) -> Response:
    """The user confirms the codes are kept somewhere safe, then goes on."""
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    if not csrf_ok(request, form):
        return render_message(request, "error", Translator(page_lang(request))("csrf"), status=400)
    if not form.get("saved"):
        # the codes are not shown again (only their hashes are kept): say how to get new ones
        return render(request, "recovery_codes.html", status=400, codes=[], next=next_url,
                      error=Translator(page_lang(request))("acct_codes_not_confirmed"))
    return RedirectResponse(next_url, status_code=303)


async def end_session_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> bool:
        await account.end_session(_field(form, "sid"))
        return _field(form, "sid") == account.sid

    return await _act(request, "sessions", act, lambda _, own: _signed_out(request) if own
                      else _back("session_ended", "sessions"))


async def revoke_grant_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> None:
        await account.revoke_grant(_field(form, "family_id"))

    return await _act(request, "sessions", act, lambda _, __: _back("grant_revoked", "sessions"))


async def revoke_consent_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> None:
        await account.revoke_consent(_field(form, "client_id"))

    return await _act(request, "sessions", act,
                      lambda _, __: _back("consent_revoked", "sessions"))


def _signed_out(request: Request) -> Response:
    t = Translator(page_lang(request))
    response = render_message(request, "acct_signed_out_everywhere",
                              t("acct_signed_out_everywhere_detail"))
    gateway_of(request).provider.clear_session_cookie(response)
    return response


async def everywhere_submit(request: Request) -> Response:
    async def act(account: Account, form: Any) -> None:
        await account.sign_out_everywhere()

    return await _act(request, "sessions", act, lambda _, __: _signed_out(request))


# -- the sign-in's TOTP step: a recovery code instead ----------------------------------

async def recovery_submit(request: Request) -> Response:
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    row = _stage_session(request, "mfa")
    if row is None:
        return _to_login(request)
    if not csrf_ok(request, form):
        return render(request, "totp.html", status=400, recovery=False,
                      error=Translator(page_lang(request))("csrf"), next=next_url)
    user = _user(request, row.username)
    if user is None:
        return _to_login(request)
    if locked := await refused_locked(request, row, user, "mfa_recovery"):
        return locked
    count = await code_attempt(request, row, user, "mfa_recovery")
    if isinstance(count, Response):
        return count
    services = _services(request)
    codes = RecoveryCodes(services.engine, services.keys, services.clock)
    if not await run_in_threadpool(codes.use, user.id, str(form.get("recovery_code") or "")):
        return await _totp_failed(request, row, user, "mfa_recovery", "totp.html",
                                  guess=count, next=next_url, recovery=True)
    services.org.record_success(row.username)
    await run_in_threadpool(factor_failures(services).passed, user.id)
    left = await run_in_threadpool(codes.remaining, user.id)
    try:
        await _provider(request).emit([_record(
            request, "mfa_recovery", "success", actor_user=row.username,
            department=user.department, reason=f"signed in with a recovery code; {left} left",
            extra={"sid": row.sid, "remaining": left})])
    except AuditUnavailable:
        return _audit_failed()
    # on to the account page first: how many codes are left, and the way to re-enrol
    response = await _advance(request, row, {"change", "mfa"}, next_url, amr="pwd otp")
    if response.headers.get("location") == next_url:
        response.headers["location"] = f"{BASE}?" + urlencode(
            {"done": "recovery_used", "n": left, "next": next_url})
    return response


async def security_seen_submit(request: Request) -> Response:
    """"I know about these": the home page's notice goes in this browser, until the next
    event (a cookie under a MAC: another browser, the owner's, is still told)."""
    account, form, refused = await _form(request)
    if refused is not None or account is None:
        return refused or _sign_in_first(request)
    upto = _field(form, "upto")
    value = await run_in_threadpool(
        account.security_events_seen,
        int(upto) if upto.isascii() and upto.isdigit() and len(upto) < 16 else None)
    response = RedirectResponse("/portal", status_code=303)
    response.set_cookie(SEEN_COOKIE, value, max_age=UNSEEN_DAYS * 86400, path="/portal",
                        httponly=True, samesite="strict",
                        secure=gateway_of(request).provider.secure_cookies)
    return response


def routes() -> list[BaseRoute]:
    return [
        Route(f"{BASE}/security-events/seen", security_seen_submit, methods=["POST"]),
        Route(BASE, account_page, methods=["GET"]),
        Route(f"{BASE}/password", password_submit, methods=["POST"]),
        Route(f"{BASE}/totp", totp_submit, methods=["POST"]),
        Route(f"{BASE}/totp/confirm", totp_confirm, methods=["POST"]),
        Route(f"{BASE}/recovery-codes", codes_submit, methods=["POST"]),
        Route(f"{BASE}/recovery-codes/saved", codes_saved, methods=["POST"]),
        Route(f"{BASE}/sessions/end", end_session_submit, methods=["POST"]),
        Route(f"{BASE}/grants/revoke", revoke_grant_submit, methods=["POST"]),
        Route(f"{BASE}/consents/revoke", revoke_consent_submit, methods=["POST"]),
        Route(f"{BASE}/sign-out-everywhere", everywhere_submit, methods=["POST"]),
        Route("/portal/login/recovery", recovery_submit, methods=["POST"]),
    ]

