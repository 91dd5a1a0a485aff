"""The CAS 3.0 server endpoints (Apereo CAS Protocol 3.0,
https://apereo.github.io/cas/development/protocol/CAS-Protocol-Specification.html).

    GET /cas/login                 section 2.1: service ticket for a live portal session
    GET /cas/logout                section 2.3: asks to confirm; the confirmation (POST, CSRF
                                   token, same origin) ends the portal session (single logout)
    GET /cas/validate              section 2.4: CAS 1.0, ``yes\\n<user>\\n`` / ``no\\n``
    GET /cas/serviceValidate       section 2.5: CAS 2.0 XML (with the 3.0 attributes)
    GET /cas/p3/serviceValidate    section 2.6: CAS 3.0 XML with attributes
    GET /cas/proxyValidate         section 2.6: service tickets only (no proxy tickets)
    GET /cas/proxy                 section 2.7: always UNAUTHORIZED_SERVICE_PROXY

Sign-in is the portal's: without a session (or with ``renew``) the browser goes to
``/portal/login`` with ``next`` back here (a local path only), carrying the same
MAC'd "a sign-in was demanded at t" marker as ``/oauth2/authorize``; a ticket issued
right after that sign-in counts as from primary credentials. A service URL that no
system registered gets the error page, never a redirect. Every issue, refusal and
validation is audited before the answer leaves (no audit, no access: 503).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from audit import AuditRecord
from gateway.errors import AuditUnavailable
from gateway.idp import attribute_release
from gateway.idp.cas.errors import CasError, InvalidRequest, InvalidTicket, UnauthorizedServiceProxy
from gateway.idp.cas.protocol import (
    NS,
    Success,
    attributes_of,
    service_response_failure,
    service_response_success,
    validate_v1,
    with_ticket,
)
from gateway.idp.cas.server import CasServer
from gateway.idp.oauth2.acting import NotInForce
from gateway.idp.oauth2.rfc9068 import Subject
from gateway.idp.saml.store import ChainEnd
from gateway.root import gateway_of
from gateway.web.oauth2 import REAUTH_PARAM, _reauth_since, _to_sign_in
from gateway.web.oauth2_acting import ActingRefused, acting_audit, acting_subject, refused_page
from gateway.web.portal.pages import csrf_ok, render, render_message
from gateway.web.saml import front_channel

XML = "application/xml; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_AUDITED_CHARS = 512


def _cas(request: Request) -> CasServer:
    return request.app.state.gateway.cas  # type: ignore[no-any-return]


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _flag(value: str | None) -> bool:
    """Section 2.1.1: ``renew``/``gateway`` are set when present (``false`` aside)."""
    return value is not None and value.strip().lower() not in ("false", "0")


def _record(request: Request, event_type: str, outcome: str, **kw: Any) -> AuditRecord:
    return AuditRecord(event_type=event_type, outcome=outcome, source_ip=_ip(request), **kw)


async def _emit(cas: CasServer, *records: AuditRecord) -> Response | None:
    try:
        await cas.provider.emit(list(records))
    except AuditUnavailable:
        return Response("audit log unavailable", status_code=503, media_type="text/plain")
    return None


# -- /cas/login -------------------------------------------------------------------------

async def login(request: Request) -> Response:
    cas = _cas(request)
    p = cas.provider
    q = request.query_params
    service = q.get("service")
    renew = _flag(q.get("renew"))
    gateway = _flag(q.get("gateway")) and not renew  # section 2.1.1: renew wins
    session = p.valid_session(p.session_token(request.cookies))
    if not service:
        if session is None:
            return RedirectResponse("/portal/login?next=/portal", status_code=303)
        return RedirectResponse("/portal", status_code=303)
    system = await run_in_threadpool(cas.system_for, service)
    if system is None:
        failed = await _emit(cas, _record(
            request, "cas_login", "failure", status=400,
            actor_user=session.username if session else None,
            reason="service URL registered for no system; not redirected",
            extra={"service": service[:_AUDITED_CHARS]}))
        return failed or render_message(request, "cas_error", status=400,
                                        detail_key="cas_unknown_service")
    demanded = _reauth_since(p, q.get(REAUTH_PARAM), p.clock().timestamp())
    fresh = (session is not None and demanded is not None
             and session.authenticated_at.timestamp() >= demanded)
    if session is None or (renew and not fresh):
        if gateway:  # section 2.1.1: never ask; back to the service without a ticket
            failed = await _emit(cas, _record(
                request, "cas_login", "failure", system=system,
                reason="gateway=true and no single sign-on session: no ticket",
                extra={"service": service[:_AUDITED_CHARS]}))
            return failed or RedirectResponse(service, status_code=303)
        return _to_sign_in(request, p)
    subject = p.server.subject(session.username)
    if subject is None:
        failed = await _emit(cas, _record(
            request, "cas_login", "failure", actor_user=session.username, system=system,
            status=403, reason="account not active"))
        return failed or render_message(request, "cas_error", "account disabled", status=403)
    own = dataclasses.replace(subject, sid=session.sid)
    try:  # 委托: the ticket names A, acted for by B, on a system the delegation names
        subject = await run_in_threadpool(acting_subject, p.server.acting, p.server,
                                          p.services.keys, session.sid, request.headers,
                                          own, system)
    except ActingRefused as exc:
        failed = await _emit(cas, _record(
            request, "cas_login", "deny", status=403, actor_user=own.username,
            department=own.department, system=system, reason=exc.reason,
            extra={"delegation": exc.delegation, "service": service[:_AUDITED_CHARS]}))
        return failed or refused_page(request)
    ticket = await run_in_threadpool(
        cas.store.issue, service=service, system=system, username=subject.username,
        sid=session.sid, primary_auth=fresh, lifetime=cas.settings.cas_ticket_lifetime)
    if subject.act and subject.delegation is not None:
        await run_in_threadpool(p.server.acting.remember, cas_key(p, ticket),
                                subject.delegation, subject.act)
    failed = await _emit(cas, _record(
        request, "cas_login", "success", actor_user=subject.username,
        department=subject.department, system=system, reason="service ticket issued",
        extra={"service": service[:_AUDITED_CHARS], "sid": session.sid,
               "renew": renew, "from_new_login": fresh, **acting_audit(subject, own)}))
    return failed or RedirectResponse(with_ticket(service, ticket), status_code=303,
                                      headers=NO_STORE)


# -- /cas/logout ------------------------------------------------------------------------

#: what the sign-out confirmation form carries back (section 2.3.1 ``service``, 1.0/2.0 ``url``)
LOGOUT_PARAMS = ("service", "url")


async def logout(request: Request) -> Response:
    """Section 2.3: end the portal session (which sends single logout to the services
    that validated its tickets); then back to ``service`` (3.0) or ``url`` (1.0, 2.0
    clients) only when a system registered it, else the signed-out page.

    The specification's plain GET would let any page sign a user out of everything
    (an ``<img>``, a top-level link: the Lax cookie goes along), and every service
    with them. As Apereo CAS does, a live session is ended only by the confirmation:
    a GET (or a POST without the form's CSRF token from the gateway's own origin)
    gets the page asking "sign out?", whose POST ends it. Without a session there is
    nothing to end, and the redirect rules are the same either way."""
    cas = _cas(request)
    p = cas.provider
    params = {k: v for k in LOGOUT_PARAMS if (v := request.query_params.get(k))}
    form = None
    if request.method == "POST":
        form = await request.form()
        for k in LOGOUT_PARAMS:
            sent = form.get(k)
            if isinstance(sent, str) and sent:
                params[k] = sent
    target = params.get("service") or params.get("url")
    session = p.valid_session(p.session_token(request.cookies), stage=None)
    if session is not None and not (form is not None and csrf_ok(request, form)):
        return render(request, "logout_confirm.html", action="/cas/logout",
                      hidden=list(params.items()))
    saml = gateway_of(request).saml
    if session is not None:
        try:
            with saml.browser_tells(session.sid):
                await p.end_session(session, reason="cas logout", source_ip=_ip(request))
        except AuditUnavailable:
            return Response("audit log unavailable", status_code=503, media_type="text/plain")
    system = await run_in_threadpool(cas.system_for, target) if target else None
    response: Response
    if target and system is not None:
        # SAML SPs the back channel cannot reach hear of it through the browser first
        response = (await front_channel(request, session.sid, ChainEnd(then=target))
                    if session is not None else RedirectResponse(target, status_code=303))
    else:
        if target:
            failed = await _emit(cas, _record(
                request, "cas_logout", "failure",
                actor_user=session.username if session else None,
                reason="service URL registered for no system; not redirected",
                extra={"service": target[:_AUDITED_CHARS]}))
            if failed:
                return failed
        response = (await front_channel(request, session.sid) if session is not None
                    else render_message(request, "signed_out", status=200,
                                        detail_key="signed_out_detail"))
    p.clear_session_cookie(response)
    return response


# -- validation -------------------------------------------------------------------------

async def _validate(request: Request, endpoint: str) -> Success | CasError | Response:
    """The shared steps of every validation endpoint; the audited outcome, or a 503."""
    cas = _cas(request)
    p = cas.provider
    q = request.query_params
    ticket, service = q.get("ticket"), q.get("service")
    where = {"endpoint": endpoint, "service": (service or "")[:_AUDITED_CHARS]}
    try:
        if not ticket or not service:
            raise InvalidRequest("ticket or service missing")
        row = await run_in_threadpool(cas.store.consume, ticket, service,
                                      renew=_flag(q.get("renew")))
        session = p.store.get_session(row.sid)
        if session is None or session.revoked_at is not None:
            raise InvalidTicket(f"ticket of {row.username}: its portal session ended")
        subject = p.server.subject(row.username)
        if subject is None:
            raise InvalidTicket(f"ticket of {row.username}: account not active")
        subject = await run_in_threadpool(_acted_for, p, subject, ticket, row.system)
    except CasError as exc:
        failed = await _emit(cas, _record(
            request, "cas_validate", "failure", reason=f"{exc.code}: {exc.reason}",
            extra=where))
        return failed or exc
    listed = await run_in_threadpool(cas.released_to, row.system)
    success = Success(user=subject.username,
                      attributes=attributes_of(attribute_release.values(subject, listed)),
                      authenticated_at=session.authenticated_at,
                      new_login=row.primary_auth, acting=acting_attributes(subject))
    failed = await _emit(cas, _record(
        request, "cas_validate", "success", actor_user=subject.username,
        department=subject.department, system=row.system, reason="service ticket validated",
        extra=where | {"sid": row.sid} | acting_audit(subject)))
    return failed or success


def cas_key(p: Any, ticket: str) -> str:
    """The ``idp_acting`` key of a service ticket (a keyed hash, never the ticket)."""
    return "cas:" + p.store.hash("cas_acting", ticket)


def _acted_for(p: Any, subject: Subject, ticket: str, system: str) -> Subject:
    """``subject`` acted for by the delegate the ticket was issued under (委托), while
    that delegation still names ``system``; INVALID_TICKET once it does not."""
    try:
        return p.server.acting.acted_for(cas_key(p, ticket), subject, system)  # type: ignore[no-any-return]
    except NotInForce as exc:
        raise InvalidTicket(f"ticket issued under a delegation no longer in force: {exc}"
                            ) from None


def acting_attributes(subject: Subject) -> tuple[tuple[str, str], ...]:
    """The CAS attributes of a ticket acted for by a delegate: ``actingUser`` (B) and
    ``delegation`` (its id)."""
    if not subject.act:
        return ()
    return (("actingUser", subject.act), ("delegation", str(subject.delegation)))


async def validate(request: Request) -> Response:
    outcome = await _validate(request, "validate")
    if isinstance(outcome, Response):
        return outcome
    body = validate_v1(outcome if isinstance(outcome, Success) else None)
    return Response(body, media_type="text/plain; charset=utf-8", headers=NO_STORE)


def _xml(outcome: Success | CasError) -> Response:
    if isinstance(outcome, Success):
        body = service_response_success(outcome)
    else:
        body = service_response_failure(outcome.code, outcome.description)
    return Response(body, media_type=XML, headers=NO_STORE)


async def service_validate(request: Request) -> Response:
    outcome = await _validate(request, request.url.path.removeprefix("/cas/"))
    return outcome if isinstance(outcome, Response) else _xml(outcome)


async def proxy(request: Request) -> Response:
    """Section 2.7: no proxy-granting tickets are issued, so none can be used."""
    cas = _cas(request)
    failed = await _emit(cas, _record(
        request, "cas_validate", "failure",
        reason="UNAUTHORIZED_SERVICE_PROXY: proxy tickets are not supported",
        extra={"endpoint": "proxy"}))
    if failed:
        return failed
    error = UnauthorizedServiceProxy("proxy tickets are not supported")
    body = (f'<cas:serviceResponse xmlns:cas="{NS}"><cas:proxyFailure '
            f'code="{error.code}">{error.description}</cas:proxyFailure>'
            "</cas:serviceResponse>\n").encode()
    return Response(body, media_type=XML, headers=NO_STORE)


def cas_routes() -> list[BaseRoute]:
    return [
        Route("/cas/login", login, methods=["GET"]),
        Route("/cas/logout", logout, methods=["GET", "POST"]),
        Route("/cas/validate", validate, methods=["GET"]),
        Route("/cas/serviceValidate", service_validate, methods=["GET"]),
        Route("/cas/p3/serviceValidate", service_validate, methods=["GET"]),
        Route("/cas/proxyValidate", service_validate, methods=["GET"]),
        Route("/cas/p3/proxyValidate", service_validate, methods=["GET"]),
        Route("/cas/proxy", proxy, methods=["GET"]),
    ]
