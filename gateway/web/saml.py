"""The SAML 2.0 identity provider's endpoints (Web Browser SSO profile, SAML Profiles
section 4.1; single logout, section 4.4), over the portal's sign-in as CAS is.

    GET      /saml/metadata       the IdP's metadata: entity ID, SSO and SLO endpoints,
                                  the signing certificate
    GET|POST /saml/sso            an AuthnRequest (HTTP-Redirect | HTTP-POST binding):
                                  verified, recorded, then 303 to /saml/sso/continue
    GET      /saml/sso/continue   with a live portal session (else the portal's sign-in
                                  and back): the signed Response, posted to the SP's ACS
    GET|POST /saml/slo            an SP's LogoutRequest: the sessions that released its
                                  NameID end (the other SPs, CAS services and relying
                                  parties are told), then the signed LogoutResponse;
                                  or (GET) an SP's LogoutResponse to the front-channel
                                  LogoutRequest of a portal sign-out: the next SP of
                                  the chain, or the signed-out page (``front_channel``)

Why the detour through ``/saml/sso/continue``: an HTTP-POST AuthnRequest arrives as a
cross-site POST, which carries no ``SameSite=Lax`` session cookie; the 303 that
follows is a top-level GET, which does. A request is answered once (its ID is
recorded, ``gateway.idp.saml.store``). Anything refused before the SP and its ACS are
known gets the error page (400), never a redirect; every answer and refusal is
audited before it leaves (``saml_login``, ``saml_logout``; no audit, no access: 503).
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from audit import AuditRecord
from gateway.errors import AuditUnavailable
from gateway.idp.oauth2.store import SessionRow
from gateway.idp.saml import release
from gateway.idp.saml.bindings import MAX_ENCODED, MAX_RELAY_STATE
from gateway.idp.saml.errors import BadAcs, Expired, Refused, UnknownSp
from gateway.idp.saml.names import (
    POST,
    REDIRECT,
    STATUS_INVALID_NAME_ID_POLICY,
    STATUS_NO_PASSIVE,
)
from gateway.idp.saml.server import SamlIdp
from gateway.idp.saml.sps import NAME_IDS, ServiceProvider
from gateway.idp.saml.store import MAX_THEN, ChainEnd, Pending
from gateway.root import gateway_of
from gateway.web.oauth2_acting import ActingRefused, acting_audit, acting_subject, refused_page
from gateway.web.portal.pages import render, render_message

T = TypeVar("T")
METADATA_TYPE = "application/samlmetadata+xml"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
REQUEST_LIFETIME = 900  # seconds a verified AuthnRequest waits for the user to sign in
#: how long a LogoutRequest's ID is kept against replay: past the time its IssueInstant
#: is accepted (engine.REQUEST_MAX_AGE plus clock skew either side)
LOGOUT_REQUEST_KEPT = 3600
MAX_FORM = 2 * MAX_ENCODED
_AUDITED_CHARS = 512


def _idp(request: Request) -> SamlIdp:
    return gateway_of(request).saml


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _emit(idp: SamlIdp, record: AuditRecord) -> Response | None:
    try:
        await idp.provider.emit([record])
    except AuditUnavailable:
        return Response("audit log unavailable", status_code=503, media_type="text/plain")
    return None


def _record(request: Request, event_type: str, outcome: str, **kw: Any) -> AuditRecord:
    return AuditRecord(event_type=event_type, outcome=outcome, source_ip=_ip(request), **kw)


async def _refuse(request: Request, idp: SamlIdp, event_type: str, exc: Refused,
                  actor: str | None = None) -> Response:
    """The audited refusal: the error page, never a redirect."""
    failed = await _emit(idp, _record(
        request, event_type, "failure", status=400, actor_user=actor, system=exc.system,
        reason=f"{type(exc).__name__}: {exc.reason}"[:1000],
        extra={"sp": (exc.sp or "")[:_AUDITED_CHARS]} if exc.sp else {}))
    title = "saml_logout_error" if event_type == "saml_logout" else "saml_error"
    return failed or render_message(request, title, status=400, detail_key=exc.page)


async def _message(request: Request) -> tuple[str, dict[str, str], str]:
    """(binding, the message's parameters, the raw query string). A GET is the
    HTTP-Redirect binding, a POST the HTTP-POST binding (a url-encoded form)."""
    if request.method == "GET":
        raw = request.scope.get("query_string", b"").decode("latin-1")
        if len(raw) > MAX_FORM:
            raise Refused(f"query string over {MAX_FORM} bytes")
        body, binding = raw, REDIRECT
    else:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise Refused(f"a POST binding message must be a url-encoded form, not {kind[:60]!r}")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_FORM:
                raise Refused(f"form over {MAX_FORM} bytes")
        body, raw, binding = data.decode("latin-1"), "", POST
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=20)
    except ValueError:
        raise Refused("too many parameters") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    relay = params.get("RelayState")
    if relay is not None and len(relay) > MAX_RELAY_STATE:
        raise Refused(f"RelayState over {MAX_RELAY_STATE} characters")
    return binding, params, raw


def _continue_url(handle: str) -> str:
    return "/saml/sso/continue?" + urlencode({"request": handle})


# -- /saml/metadata ---------------------------------------------------------------------

async def metadata(request: Request) -> Response:
    xml = await run_in_threadpool(_idp(request).run, lambda e: e.metadata())
    return Response(xml, media_type=METADATA_TYPE, headers={"Cache-Control": "max-age=300"})


# -- /saml/sso --------------------------------------------------------------------------

async def sso(request: Request) -> Response:
    idp = _idp(request)
    try:
        binding, params, raw = await _message(request)
        encoded = params.get("SAMLRequest")
        if not encoded:
            raise Refused("no SAMLRequest")
        incoming = await run_in_threadpool(idp.run, lambda e: e.authn_request(
            encoded, binding, raw_query=raw, now=idp.clock()))
        handle = await run_in_threadpool(
            idp.store.accept, sp_entity_id=incoming.sp.meta.entity_id,
            system=incoming.sp.system, request_id=incoming.request_id,
            acs_url=incoming.acs_url, relay_state=params.get("RelayState") or None,
            name_id_format=incoming.name_id_format, force_authn=incoming.force_authn,
            is_passive=incoming.is_passive, binding=binding, lifetime=REQUEST_LIFETIME)
    except Refused as exc:
        return await _refuse(request, idp, "saml_login", exc)
    if incoming.unmet is not None:  # SAML Core 3.4.1: the status, no assertion, at once
        pending = await run_in_threadpool(idp.store.pending, handle)
        if pending is None:  # answered meanwhile by another presentation of it
            return await _refuse(request, idp, "saml_login", Expired(
                "the request was answered meanwhile", sp=incoming.sp.meta.entity_id,
                system=incoming.sp.system))
        return await _status_only(request, idp, pending, incoming.sp, *incoming.unmet)
    return RedirectResponse(_continue_url(handle), status_code=303, headers=NO_STORE)


async def sso_continue(request: Request) -> Response:
    idp = _idp(request)
    p = idp.provider
    handle = request.query_params.get("request", "")
    pending = await run_in_threadpool(idp.store.pending, handle)
    session = p.valid_session(p.session_token(request.cookies))
    if pending is None:
        return await _refuse(request, idp, "saml_login", Expired(
            "no waiting request under this handle (unknown, answered or expired)"),
            actor=session.username if session else None)
    sp = (await run_in_threadpool(idp.registered)).get(pending.sp_entity_id)
    if sp is None:
        return await _refuse(request, idp, "saml_login", UnknownSp(
            "the SP was unregistered while the user signed in", sp=pending.sp_entity_id,
            system=pending.system))
    if sp.meta.acs_for(pending.acs_url, None) is None:  # the metadata as registered now
        return await _refuse(request, idp, "saml_login", BadAcs(
            f"ACS {pending.acs_url[:300]!r} left the SP's metadata while the user signed "
            "in", sp=pending.sp_entity_id, system=pending.system))
    fresh = session is not None and (
        not pending.force_authn or session.authenticated_at >= pending.created_at)
    if session is None or not fresh:
        if pending.is_passive:  # SAML Core 3.4.1: never ask; NoPassive to the SP
            return await _status_only(request, idp, pending, sp, STATUS_NO_PASSIVE,
                                      "IsPassive and no usable single sign-on session")
        return RedirectResponse("/portal/login?" + urlencode({"next": _continue_url(handle)}),
                                status_code=303, headers=NO_STORE)
    subject = p.server.subject(session.username)
    if subject is None:
        failed = await _emit(idp, _record(
            request, "saml_login", "failure", status=403, actor_user=session.username,
            system=sp.system, reason="account not active",
            extra={"sp": sp.meta.entity_id[:_AUDITED_CHARS]}))
        return failed or render_message(request, "saml_error", status=403,
                                        detail_key="saml_account_inactive")
    own = dataclasses.replace(subject, sid=session.sid)
    try:  # 委托: the assertion names A, acted for by B, on a system the delegation names
        subject = await run_in_threadpool(acting_subject, p.server.acting, p.server,
                                          p.services.keys, session.sid, request.headers,
                                          own, sp.system)
    except ActingRefused as exc:
        failed = await _emit(idp, _record(
            request, "saml_login", "deny", status=403, actor_user=own.username,
            department=own.department, system=sp.system, reason=exc.reason,
            extra={"delegation": exc.delegation, "sp": sp.meta.entity_id[:_AUDITED_CHARS]}))
        return failed or refused_page(request)
    fmt = pending.name_id_format or NAME_IDS[sp.name_id]
    if not sp.may_have(fmt):
        return await _status_only(request, idp, pending, sp, STATUS_INVALID_NAME_ID_POLICY,
                                  f"NameID format {fmt[:100]!r} not offered to this SP")
    return await _assert(request, idp, pending, sp, session, subject, fmt)


async def _claim(request: Request, idp: SamlIdp, pending: Pending, actor: str | None
                 ) -> Response | None:
    try:
        await run_in_threadpool(idp.store.answer, pending)
    except Refused as exc:
        exc.sp, exc.system = pending.sp_entity_id, pending.system
        return await _refuse(request, idp, "saml_login", exc, actor=actor)
    return None


async def _assert(request: Request, idp: SamlIdp, pending: Pending, sp: ServiceProvider,
                  session: SessionRow, subject: Any, fmt: str) -> Response:
    if refused := await _claim(request, idp, pending, subject.username):
        return refused
    name_id = release.name_id(idp.keys, fmt, sp.meta.entity_id, subject.username)
    try:
        encoded, session_index = await run_in_threadpool(idp.run, lambda e: e.authn_response(
            sp=sp, request_id=pending.request_id, acs_url=pending.acs_url, name_id=name_id,
            name_id_format=fmt, identity=release.identity(
                subject, release_username=sp.release_username, attributes=sp.attributes,
                pseudonym=lambda user: release.persistent_id(idp.keys, sp.meta.entity_id,
                                                             user)),
            authenticated_at=session.authenticated_at, session_expires_at=session.expires_at,
            now=idp.clock()))
    except Refused as exc:  # an encryption key that became unusable while the user signed in
        return await _refuse(request, idp, "saml_login", exc, actor=subject.username)
    await run_in_threadpool(
        idp.store.released, sid=session.sid, sp_entity_id=sp.meta.entity_id, system=sp.system,
        username=subject.username, name_id=name_id, name_id_format=fmt,
        session_index=session_index)
    failed = await _emit(idp, _record(
        request, "saml_login", "success", actor_user=subject.username,
        department=subject.department, system=sp.system, reason="assertion issued",
        extra={"sp": sp.meta.entity_id[:_AUDITED_CHARS], "sid": session.sid,
               "binding": pending.binding, "name_id_format": fmt.rsplit(":", 1)[-1],
               "force_authn": pending.force_authn, **acting_audit(subject)}))
    return failed or _post_page(request, pending.acs_url, encoded, pending.relay_state)


async def _status_only(request: Request, idp: SamlIdp, pending: Pending, sp: ServiceProvider,
                       status: str, why: str) -> Response:
    """A signed Response with no assertion, to the verified ACS (SAML Core 3.2.2.2)."""
    if refused := await _claim(request, idp, pending, None):
        return refused
    encoded = await run_in_threadpool(idp.run, lambda e: e.error_response(
        request_id=pending.request_id, acs_url=pending.acs_url, status=status, message=why))
    failed = await _emit(idp, _record(
        request, "saml_login", "failure", system=sp.system, reason=f"{status}: {why}",
        extra={"sp": sp.meta.entity_id[:_AUDITED_CHARS]}))
    return failed or _post_page(request, pending.acs_url, encoded, pending.relay_state)


def _post_page(request: Request, url: str, encoded: str, relay_state: str | None) -> Response:
    """The HTTP-POST binding: a form the page posts to the SP at once."""
    fields = [("SAMLResponse", encoded)] + ([("RelayState", relay_state)] if relay_state else [])
    return render(request, "saml_post.html", url=url, fields=fields)


# -- /saml/slo --------------------------------------------------------------------------

async def slo(request: Request) -> Response:
    """An SP's LogoutRequest (SP-initiated single logout). The sessions are found by
    the NameID (and SessionIndex) the request names, not by the browser's cookie: a
    POST from the SP's site carries no Lax cookie."""
    idp = _idp(request)
    p = idp.provider
    try:
        binding, params, raw = await _message(request)
        if "SAMLResponse" in params:  # by either binding (SAML Profiles 4.4.4.2)
            return await _front_logout_answered(request, idp, binding, params, raw)
        encoded = params.get("SAMLRequest")
        if not encoded:
            raise Refused("no SAMLRequest")
        incoming = await run_in_threadpool(idp.run, lambda e: e.logout_request(
            encoded, binding, raw_query=raw, now=idp.clock()))
        await run_in_threadpool(
            idp.store.logout_once, sp_entity_id=incoming.sp.meta.entity_id,
            system=incoming.sp.system, request_id=incoming.request_id, binding=binding,
            lifetime=LOGOUT_REQUEST_KEPT)
    except Refused as exc:
        return await _refuse(request, idp, "saml_logout", exc)
    sp = incoming.sp
    sids = await run_in_threadpool(idp.store.sessions_of, sp.meta.entity_id, incoming.name_id,
                                   incoming.session_indexes)
    mine = p.valid_session(p.session_token(request.cookies), stage=None)
    # the session whose other front-channel SPs this browser tells: its own (a Redirect
    # request carries the Lax cookie), else the one session the request names
    chain = mine.sid if mine is not None and mine.sid in sids else (
        sids[0] if len(sids) == 1 else None)
    ended, user = [], None
    try:
        for sid in sids:
            await run_in_threadpool(idp.store.logged_out, sid, sp.meta.entity_id)
            row = p.store.get_session(sid)
            if row is not None and row.revoked_at is None:
                user = row.username
                with idp.browser_tells(sid) if sid == chain else nullcontext():
                    await p.end_session(row, reason="saml logout", source_ip=_ip(request))
                ended.append(sid)
    except AuditUnavailable:
        return Response("audit log unavailable", status_code=503, media_type="text/plain")
    failed = await _emit(idp, _record(
        request, "saml_logout", "success", actor_user=user, system=sp.system,
        reason="SP-initiated logout" if ended else "SP-initiated logout: no live session",
        extra={"sp": sp.meta.entity_id[:_AUDITED_CHARS], "sids": ended,
               "binding": binding}))
    if failed:
        return failed
    end = ChainEnd(sp_entity_id=sp.meta.entity_id, request_id=incoming.request_id,
                   binding=binding, relay_state=params.get("RelayState"))
    response = (await front_channel(request, chain, end) if chain in ended
                else await _chain_end(request, idp, end))
    mine = p.valid_session(p.session_token(request.cookies), stage=None)
    if mine is None and p.session_token(request.cookies):
        p.clear_session_cookie(response)
    return response


async def _chain_end(request: Request, idp: SamlIdp, end: ChainEnd | None) -> Response:
    """Where a sign-out goes once the front-channel SPs were told: the URL it
    checked, the signed LogoutResponse to the SP whose request ended the session, or
    the signed-out page."""
    if end is not None and end.then:
        return RedirectResponse(end.then, status_code=303, headers=NO_STORE)
    sp = (await run_in_threadpool(idp.registered)).get(end.sp_entity_id) if end else None
    out = None
    if end is not None and sp is not None:
        out = await run_in_threadpool(idp.run, lambda e: e.logout_response_to(
            sp, request_id=end.request_id, binding=end.binding, relay_state=end.relay_state))
    if out is None:
        return render_message(request, "signed_out", status=200, detail_key="signed_out_detail")
    if out.location is not None:
        return RedirectResponse(out.location, status_code=303, headers=NO_STORE)
    return render(request, "saml_post.html", url=out.url, fields=list(out.fields))


async def _front_logout_answered(request: Request, idp: SamlIdp, binding: str,
                                 params: dict[str, str], raw: str) -> Response:
    """An SP's LogoutResponse (HTTP-Redirect or HTTP-POST) to a front-channel
    LogoutRequest: audited, then the next SP of the chain, or where the chain ends."""
    sid = idp.sid_of_relay(params.get("RelayState"))
    if sid is None:
        raise Refused("a LogoutResponse to no front-channel logout of this IdP")
    sp, ok = await run_in_threadpool(idp.run, lambda e: e.front_logout_response(
        params["SAMLResponse"], binding, raw_query=raw, now=idp.clock()))
    failed = await _emit(idp, _record(
        request, "saml_logout_slo", "success" if ok else "failure", system=sp.system,
        reason=None if ok else "the SP's LogoutResponse is not Success",
        extra={"sid": sid, "sp": sp.meta.entity_id[:_AUDITED_CHARS], "binding": binding}))
    return failed or await front_channel(request, sid)


async def front_channel(request: Request, sid: str, end: ChainEnd | None = None) -> Response:
    """After a sign-out with a browser ended session ``sid`` (the portal's, RP-initiated
    ``/oauth2/logout``, ``/cas/logout``, an SP's LogoutRequest; each ends the session
    inside ``SamlIdp.browser_tells``): a redirect to the next SP to be told through the
    browser (front-channel single logout, SAML Profiles 4.4), or, none left, where the
    sign-out goes: ``end`` (kept while the browser goes round: given by the sign-out,
    taken when the chain comes back), else the signed-out page."""
    idp = _idp(request)
    nxt = None
    if end is not None and end.then and len(end.then) > MAX_THEN:
        await _emit(idp, _record(request, "saml_logout_slo", "failure", extra={"sid": sid},
                                 reason="front channel: the sign-out's destination is over "
                                        f"{MAX_THEN} characters; SPs not told"))
    else:
        try:
            nxt = await run_in_threadpool(idp.front_channel_next, sid)
            if nxt is not None and end is not None:
                await run_in_threadpool(idp.store.keep_chain_end, sid, end)
        except Exception as exc:  # best effort, as the back channel: audited, then onwards
            await _emit(idp, _record(request, "saml_logout_slo", "failure",
                                     reason=f"front channel: {type(exc).__name__}"[:200],
                                     extra={"sid": sid}))
            nxt = None
    if nxt is not None:
        return RedirectResponse(nxt[1], status_code=303, headers=NO_STORE)
    if end is None:
        end = await run_in_threadpool(idp.store.take_chain_end, sid)
    return await _chain_end(request, idp, end)


def saml_routes() -> list[BaseRoute]:
    return [
        Route("/saml/metadata", metadata, methods=["GET"]),
        Route("/saml/sso", sso, methods=["GET", "POST"]),
        Route("/saml/sso/continue", sso_continue, methods=["GET"]),
        Route("/saml/slo", slo, methods=["GET", "POST"]),
    ]
