"""The identity provider's HTTP endpoints.

    GET  /.well-known/openid-configuration      OpenID Connect Discovery
    GET  /.well-known/oauth-authorization-server RFC 8414
    GET  /.well-known/jwks.json                  the token keys only (gateway.web.jwks)
    GET  /oauth2/authorize                       RFC 6749 section 4.1.1 (+ PKCE, OIDC)
    POST /oauth2/token                           RFC 6749 section 3.2
    GET  /oauth2/userinfo                        OIDC Core section 5.3
    POST /oauth2/introspect                      RFC 7662
    POST /oauth2/revoke                          RFC 7009
    GET  /oauth2/logout                          OIDC RP-Initiated Logout 1.0
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InsecureTransportError, InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive

from audit import AuditRecord
from gateway.errors import AuditUnavailable, TooManyRequests, Unauthorized
from gateway.idp import dpop
from gateway.idp.dpop import InvalidDPoPProofError, bound_call, refusal_headers, request_target
from gateway.idp.oauth2.acting import NotInForce
from gateway.idp.oauth2.descriptions import quoted
from gateway.idp.oauth2.oidc import (
    PROMPT_VALUES,
    id_token_algs,
    id_token_claims,
    metadata,
    user_claims,
)
from gateway.idp.oauth2.provider import Provider
from gateway.idp.oauth2.server import (
    Result,
    StarletteOAuth2Request,
    refusal_record,
    request_refusal,
)
from gateway.idp.saml.store import ChainEnd
from gateway.root import gateway_of
from gateway.web.oauth2_acting import (
    ActingRefused,
    acting_audit,
    acting_subject,
    refused_page,
)
from gateway.web.oauth2_consent import CONSENT_PATH, consent_due, consent_page, consent_submit
from gateway.web.portal.pages import authenticator, csrf_ok, render, render_message
from gateway.web.saml import front_channel
from texts import Text

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _provider(request: Request) -> Provider:
    return gateway_of(request).provider


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


_MAX_FIELDS = 1000  # Starlette's default for request.form()
FORM_TYPE = "application/x-www-form-urlencoded"


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """What Starlette's FormParser yields for a url-encoded ``body`` (latin-1 bytes,
    %-escapes as UTF-8 with replacement, blanks kept, '&' only), ~10x cheaper;
    ValueError past Starlette's limit of fields."""
    return parse_qsl(body.decode("latin-1"), keep_blank_values=True,
                     max_num_fields=_MAX_FIELDS)


async def read_whole(receive: Receive) -> bytes | None:
    """The whole body from ``receive``, or None once the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return None


async def _body(request: Request) -> bytes:
    """``request.body()`` without Starlette's async generator around ``receive`` (a
    token request's body is one message); kept on the request as Starlette keeps it."""
    if hasattr(request, "_body") or request._stream_consumed:
        return await request.body()
    body = await read_whole(request.receive)
    if body is None:
        request._is_disconnected = True
        raise ClientDisconnect()
    request._stream_consumed = True
    request._body = body
    return body


async def oauth_request(request: Request, provider: Provider) -> StarletteOAuth2Request:
    """Read the body, then wrap it for authlib. The URI is rebuilt from the issuer,
    never from the Host header."""
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if ctype == FORM_TYPE:
            try:
                form = form_pairs(await _body(request))
            except ValueError:
                raise HTTPException(400, f"Too many fields. Maximum number of fields is "
                                    f"{_MAX_FIELDS}.") from None
        else:
            data = await request.form()
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    # from the scope: request.url would build (and parse) the whole URL first
    raw_query = request.scope.get("query_string", b"")
    query = "?" + raw_query.decode("latin-1") if raw_query else ""
    try:
        return StarletteOAuth2Request(
            request.method, provider.server.issuer + request.scope["path"] + query,
            request.headers, request.query_params.multi_items() if raw_query else (), form,
            source_ip=_client_ip(request),
        )
    except InsecureTransportError:
        # a set-up error, not the caller's: say what to change (RFC 6749 §3.2 wants TLS)
        raise HTTPException(400, "insecure_transport: the issuer is plain HTTP on a "
                            "non-loopback host; serve it over HTTPS (GOVGATE_ISSUER=https://"
                            "...)") from None


def problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": f"urn:govgate:error:{code}", "title": code.replace("_", " "),
                         "status": status, "detail": detail}, status_code=status,
                        media_type="application/problem+json")


#: the one wording of every 503 the identity provider's endpoints answer when the audit
#: record could not be written (zh in gateway/messages.py)
AUDIT_UNAVAILABLE = Text("oauth2.audit_unavailable", "the audit log is unavailable; try again")


def audit_unavailable() -> JSONResponse:
    """The answer when the audit record could not be written: no audit, no access."""
    return problem(503, "audit_unavailable", AUDIT_UNAVAILABLE)


#: JSONResponse's encoding (compact, UTF-8, no NaN), built once: ``json.dumps`` with
#: these options makes a new encoder on every call
json_text = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


@functools.lru_cache(maxsize=64)
def json_header_fields(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes], ...]:
    """The raw header fields of a JSON answer with ``headers`` (authlib's few fixed sets:
    no-store, no-cache, a WWW-Authenticate challenge): encoded once, not per token."""
    named = {k.lower(): v for k, v in headers}  # one field per name, as a dict made them
    named["content-type"] = "application/json"
    return tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in named.items())


def to_response(result: Result) -> Response:
    if isinstance(result.body, dict):
        response = Response(json_text(result.body).encode("utf-8"), status_code=result.status)
        response.raw_headers.extend(json_header_fields(tuple(result.headers)))
        return response
    headers = {k: v for k, v in result.headers}
    return Response(result.body or b"", status_code=result.status, headers=headers)


async def _finish(provider: Provider, oreq: StarletteOAuth2Request, result: Result,
                  failure_event: str) -> Response:
    """Audit (no audit, no access), then answer."""
    events = list(oreq.events)
    if result.status >= 400 and isinstance(result.body, dict):
        events.append(refusal_record(failure_event, result, getattr(oreq, "client", None),
                                     oreq.payload.client_id, oreq.payload.grant_type,
                                     oreq.source_ip))
    try:
        await provider.emit(events)
    except AuditUnavailable:
        return audit_unavailable()
    return to_response(result)


# -- discovery ------------------------------------------------------------------------

async def openid_configuration(request: Request) -> Response:
    p = _provider(request)
    return JSONResponse(metadata(p.server.issuer, id_token_algs(p.server.keys)),
                        headers={"Cache-Control": "public, max-age=300"})


# -- token endpoint and friends -------------------------------------------------------

def _refused_at_once(p: Provider, oreq: StarletteOAuth2Request) -> Result | None:
    """``invalid_request`` for a request no endpoint may read (a repeated parameter,
    several client authentication methods), answered as authlib answers its errors."""
    error = request_refusal(oreq.repeated, oreq.headers.get("authorization"), oreq.form)
    return None if error is None else p.server.handle_error_response(oreq, error)


async def token(request: Request) -> Response:
    p = _provider(request)
    oreq = await oauth_request(request, p)
    if refused := _refused_at_once(p, oreq):
        return await _finish(p, oreq, refused, "token_denied")
    # RFC 9449: the proof's key, which the tokens issued are bound to, and a refresh
    # token's binding (gateway.idp.dpop); the rest costs no thread hop here
    proofs, jkt = request.headers.getlist("dpop"), None
    if proofs or oreq.form.get("grant_type") == "refresh_token":
        try:
            jkt = await run_in_threadpool(p.server.dpop.token_request, proofs, oreq.form,
                                          request_target(request.scope, p.server.issuer)[1])
        except InvalidDPoPProofError as error:
            return await _finish(p, oreq, p.server.handle_error_response(oreq, error),
                                 "token_denied")
    # inline, as introspection: no argon2 (client secrets are HMACs), the client and the
    # active signing key are cached, client_credentials writes nothing; a thread hop per
    # request cost more than the work (measured 2026-11-28: ~1.1k -> ~1.35k tokens/s).
    # The authorization-code and refresh grants touch the database on every call, so
    # they keep the thread.
    if oreq.form.get("grant_type") == "client_credentials":
        result = bound_call(jkt, p.server.create_token_response, oreq)
    else:
        result = await run_in_threadpool(bound_call, jkt, p.server.create_token_response,
                                         oreq)
    if jkt is not None and (nonce := p.server.dpop.current_nonce()) is not None:
        # RFC 9449 section 8.2: the nonce for the client's next proofs, with the answer
        result.headers.append(("DPoP-Nonce", nonce))
    return await _finish(p, oreq, result, "token_denied")


async def introspect(request: Request) -> Response:
    p = _provider(request)
    oreq = await oauth_request(request, p)
    if refused := _refused_at_once(p, oreq):
        return await _finish(p, oreq, refused, "token_introspection_denied")
    result = p.server.create_endpoint_response("introspection", oreq)
    return await _finish(p, oreq, result, "token_introspection_denied")


async def revoke(request: Request) -> Response:
    p = _provider(request)
    oreq = await oauth_request(request, p)
    if refused := _refused_at_once(p, oreq):
        return await _finish(p, oreq, refused, "token_revocation_denied")
    result = await run_in_threadpool(p.server.create_endpoint_response, "revocation", oreq)
    return await _finish(p, oreq, result, "token_revocation_denied")


async def userinfo(request: Request) -> Response:
    """OIDC Core 5.3: the token in the Authorization header (RFC 6750 section 2.1) or,
    for POST, in the form body (section 2.2)."""

    challenge = 'Bearer realm="govgate", error="invalid_token"'
    header = request.headers.get("authorization", "")
    scheme = header.partition(" ")[0].lower()
    # RFC 9449 section 7: a bound token with a proof of its key ("DPoP"), or a bearer one
    token = header.partition(" ")[2].strip() if scheme in ("bearer", "dpop") else ""
    if not token and not header and request.method == "POST":
        value = (await request.form()).get("access_token")
        token = value if isinstance(value, str) else ""
    if not token:
        return JSONResponse({"error": "invalid_token"}, status_code=401,
                            headers={"WWW-Authenticate": 'Bearer realm="govgate"'})
    try:
        principal = authenticator(request).from_token(token)
        dpop.presented(scheme or "bearer", principal.jkt)  # a form's token is a bearer one
        if principal.jkt is not None:
            server = _provider(request).server
            proof = dpop.verified_proof(server.dpop, request.headers, request.scope,
                                        server.issuer, token, principal.jkt)
            # the limit before the proof's write, as at the proxy (RFC 9449 section 11.1)
            authenticator(request).spend_proof(principal)
            await run_in_threadpool(dpop.use_proof, server.dpop, proof)
    except TooManyRequests as exc:
        try:
            await _provider(request).emit([AuditRecord(
                event_type="userinfo", outcome="deny", source_ip=_client_ip(request),
                status=429, reason="rate limit: DPoP proofs",
                actor_client=principal.client_id)])
        except AuditUnavailable:
            return audit_unavailable()
        return JSONResponse({"error": "rate_limited", "error_description": str(exc)},
                            status_code=429, headers={"Retry-After": exc.retry_after})
    except Unauthorized as exc:
        try:
            await _provider(request).emit([AuditRecord(
                event_type="userinfo", outcome="deny", source_ip=_client_ip(request),
                status=401, reason=exc.reason or "invalid token")])
        except AuditUnavailable:
            return audit_unavailable()
        if isinstance(exc, dpop.DPoPRefused):  # its challenge, and a nonce asked for
            return JSONResponse({"error": exc.error}, status_code=401,
                                headers=refusal_headers(exc))
        return JSONResponse({"error": "invalid_token"}, status_code=401,
                            headers={"WWW-Authenticate": challenge})
    p = _provider(request)

    async def audited(outcome: str, status: int, reason: str, **extra: Any) -> bool:
        """The record of this answer (no audit, no answer: False when it failed)."""
        try:
            await p.emit([AuditRecord(
                event_type="userinfo", outcome=outcome, source_ip=_client_ip(request),
                status=status, reason=reason, actor_user=principal.username,
                actor_client=principal.client_id, department=principal.department,
                extra={"jti": principal.token_id, **extra})])
        except AuditUnavailable:
            return False
        return True

    if principal.username is None or "openid" not in principal.scope:
        if not await audited("deny", 403, "insufficient_scope: no openid scope"):
            return audit_unavailable()
        # RFC 9449 section 7.1: a DPoP-bound token's challenge in the DPoP scheme
        return JSONResponse({"error": "insufficient_scope"}, status_code=403, headers={
            "WWW-Authenticate": dpop.challenge("insufficient_scope")
            if principal.jkt is not None
            else challenge.replace("invalid_token", "insufficient_scope")})
    server = p.server
    subject = server.subject(principal.username)
    if subject is not None and principal.delegate and principal.delegation is not None:
        # 委托: answered for A with act B while the delegation still names the system
        client = server.clients.get(principal.client_id)
        try:
            server.acting.in_force(principal.delegation, principal.delegate,
                                   client.system if client is not None else None)
        except NotInForce:
            subject = None
        else:
            subject = dataclasses.replace(subject, act=principal.delegate,
                                          delegation=principal.delegation)
    if subject is None:
        if not await audited("deny", 401, "invalid_token: the user or the delegation is "
                             "no longer active"):
            return audit_unavailable()
        return JSONResponse({"error": "invalid_token"}, status_code=401,
                            headers={"WWW-Authenticate": challenge})
    claims = user_claims(subject, " ".join(principal.scope))
    # the claims released, named (not their values: the record is no copy of the data)
    if not await audited("success", 200, "claims released", claims=sorted(claims),
                         **acting_audit(subject)):
        return audit_unavailable()
    return JSONResponse(claims, headers=NO_STORE)


# -- authorization endpoint -----------------------------------------------------------

def _error_page(request: Request, title_key: str, detail: str, status: int = 400,
                detail_key: str = "") -> Response:

    return render_message(request, title_key, detail, status=status, detail_key=detail_key)


#: the longest ``nonce`` an authorization code can keep (``idp_authorization_codes.nonce``)
MAX_NONCE = 255

#: the query parameter that carries "a sign-in was demanded at t" through the login
#: page back to /oauth2/authorize (prompt=login, select_account, max_age)
REAUTH_PARAM = "gg_reauth"
#: how long the user has to sign in after the authorization endpoint demanded it
REAUTH_WINDOW = 600
#: max_age is measured from the sign-in that this request demanded; the browser
#: returns from the last sign-in step to the authorization endpoint at once
REAUTH_GRACE = 30


def _reauth_marker(p: Provider, at: float) -> str:
    ms = str(int(at * 1000))
    return f"{ms}.{p.store.hash('reauth', ms)[:32]}"


def _reauth_since(p: Provider, marker: str | None, now: float) -> float | None:
    """When the sign-in this request carries proof of was demanded, if the proof is
    ours and recent; else None. The MAC keeps a user from back-dating it."""
    import hmac

    if not marker or len(marker) > 64:
        return None
    ms, _, tag = marker.partition(".")
    if not ms.isascii() or not ms.isdigit() or not hmac.compare_digest(
            tag.encode(), p.store.hash("reauth", ms)[:32].encode()):
        return None
    at = int(ms) / 1000
    return at if 0 <= now - at <= REAUTH_WINDOW else None


def _must_sign_in(p: Provider, oreq: StarletteOAuth2Request, grant: Any,
                  session: Any) -> bool:
    """OIDC Core section 3.1.2.1 ``prompt`` and ``max_age``: True when the user has
    to (re-)authenticate before a code is issued; OAuth2Error (with the validated
    redirect URI) for a bad request or when prompt=none forbids asking.

    ``consent`` asks the person again where consent is asked at all
    (gateway.web.oauth2_consent); ``select_account`` shows the sign-in form, where
    the user may sign in with another account. A value not in ``PROMPT_VALUES``
    (discovery's ``prompt_values_supported``) is ``invalid_request`` naming it
    (Initiating User Registration via OpenID Connect 1.0 section 4.1: ``create`` and
    whatever comes next; ignoring it would sign in where the client asked for
    something else), as is ``none`` beside another value (Core 3.1.2.1)."""
    from authlib.oauth2.rfc6749 import InvalidRequestError
    from authlib.oidc.core.errors import LoginRequiredError

    data = oreq.payload.data
    where = {"redirect_uri": grant.redirect_uri, "state": oreq.payload.state}
    # Core section 6: not supported (discovery says so); ignoring them would drop what
    # the client put in its request object (max_age, prompt) without telling it
    if "request" in data:
        raise RequestNotSupportedError(**where)
    if "request_uri" in data:
        raise RequestURINotSupportedError(**where)
    if data.get("response_mode", "query") != "query":
        # a client asking form_post or fragment keeps the code out of the URL's query
        # (logs, Referer): answering by query anyway would put it there
        raise InvalidRequestError("response_mode: only query is supported", **where)
    if len(data.get("nonce") or "") > MAX_NONCE:
        # the code keeps it for the ID token; refused here, not a 500 when it is saved
        raise InvalidRequestError(f"nonce longer than {MAX_NONCE} characters", **where)
    prompts = set((data.get("prompt") or "").split(" ")) - {""}
    if unknown := sorted(prompts - set(PROMPT_VALUES)):
        raise InvalidRequestError("prompt: unsupported value(s) "
                                  + ", ".join(quoted(v) for v in unknown[:4]), **where)
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values",
                                  **where)
    raw = data.get("max_age")
    max_age: int | None = None
    if raw:  # RFC 6749 section 3.1: an empty parameter counts as absent
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
            raise InvalidRequestError("max_age must be a non-negative integer", **where)
        max_age = int(raw)
    hinted = _hinted_user(p, oreq, where)
    now = p.clock().timestamp()
    demanded: float | None = None
    if session is None:
        needed = True
    else:
        demanded = _reauth_since(p, data.get(REAUTH_PARAM), now)
        if demanded is not None and session.authenticated_at.timestamp() >= demanded:
            # the user signed in because this request asked: that is the fresh
            # authentication prompt=login and max_age want
            needed = max_age is not None and now - session.auth_time > max_age + REAUTH_GRACE
        else:
            needed = bool(prompts & {"login", "select_account"}) or (
                max_age is not None and now - session.auth_time > max_age)
    if not needed and hinted is not None and session is not None \
            and session.username not in hinted:
        # Core 3.1.2.1: the hint names another user than the session's; signing in
        # again may make them the same, unless this request asked for it already
        if "none" in prompts or (demanded is not None
                                 and session.authenticated_at.timestamp() >= demanded):
            raise LoginRequiredError(description="the user signed in is not the "
                                     "id_token_hint's", **where)
        needed = True
    if needed and "none" in prompts:
        raise LoginRequiredError(**where)
    return needed


def _hinted_user(p: Provider, oreq: StarletteOAuth2Request, where: dict[str, Any]
                 ) -> tuple[str, ...] | None:
    """Who ``id_token_hint`` names (the subject and, acted for, the delegate), or None
    without one; ``invalid_request`` for a hint that is no ID token this provider
    issued to the requesting client."""
    raw = oreq.payload.data.get("id_token_hint")
    if not raw:
        return None
    claims = id_token_claims(p.services.keys, p.server.issuer, raw)
    if claims is None or claims["aud"] != oreq.payload.client_id:
        raise InvalidRequestError("id_token_hint is not an ID token issued to this client",
                                  **where)
    act = claims.get("act")
    return (claims["sub"], *([act["sub"]] if isinstance(act, dict)
                             and isinstance(act.get("sub"), str) else []))


def _to_sign_in(request: Request, p: Provider,
                form: Iterable[tuple[str, str]] = ()) -> Response:
    """The portal's sign-in form, then back here with proof that it was asked for. A
    request POSTed here (OpenID Connect Core 3.1.2.1: GET and POST alike) comes back as
    a GET carrying its ``form``'s parameters, which the sign-in would otherwise lose."""
    query = [(k, v) for k, v in [*parse_qsl(request.url.query, keep_blank_values=True),
                                 *form]
             if k != REAUTH_PARAM]
    query.append((REAUTH_PARAM, _reauth_marker(p, p.clock().timestamp())))
    next_url = request.url.path + "?" + urlencode(query)
    asked = {"next": next_url}
    # the relying party's ui_locales (OpenID Connect Core 3.1.2.1, advertised in the
    # discovery document): the first we speak chooses the sign-in page's language
    for tag in str(dict(query).get("ui_locales") or "").split()[:10]:
        if (primary := tag.split("-", 1)[0].lower()) in ("zh", "en"):
            asked["lang"] = primary
            break
    return RedirectResponse("/portal/login?" + urlencode(asked), status_code=303)


#: what an error_description may hold (RFC 6749 section 4.1.2.1: %x20-21 / %x23-5B /
#: %x5D-7E); authlib refuses (ValueError) to build an error that quotes anything else
_DESCRIBABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
#: the parameters authlib quotes in its errors' descriptions, and the audit record keeps
_QUOTED = ("redirect_uri", "response_type")
#: how much of a refused parameter the audit record keeps
_AUDITED_CHARS = 512


def with_issuer(result: Result, issuer: str) -> Result:
    """``result`` with ``iss`` added to the redirect URI it sends the browser to (RFC
    9207 section 2): every authorization response, code or error, names the issuer, so
    a client that signs in at several authorization servers can tell which one answered
    (mix-up, RFC 9700 section 4.4.2); discovery says so
    (``authorization_response_iss_parameter_supported``). An answer with no redirect
    (an error page, JSON) is left as it is."""
    if result.location is None:
        return result
    return Result(result.status, result.body, [
        (k, add_params_to_uri(v, [("iss", issuer)]) if k.lower() == "location" else v)
        for k, v in result.headers])


def _check_once(oreq: StarletteOAuth2Request) -> None:
    """RFC 6749 section 3.1: a parameter MUST NOT be given more than once. The request
    was read with the last of each (a second ``client_id``, ``redirect_uri``, ``state``
    or ``code_challenge`` overrode the first), which a layer in front may read as the
    first: invalid_request on the error page, as the token endpoint refuses it (which
    redirect URI and state would be the client's is what is in doubt)."""
    if oreq.repeated is not None:
        raise InvalidRequestError(f"the parameter {quoted(oreq.repeated)} is given more "
                                  "than once")


def _check_quotable(oreq: StarletteOAuth2Request) -> None:
    """A redirect URI or response type holding '"', '\\', a control character or
    non-ASCII is no registered URI (RFC 3986 has none of them) and no response type:
    invalid_request, answered on the error page (no redirect URI was validated)."""
    for name in _QUOTED:
        value = oreq.payload.data.get(name)
        if value and not _DESCRIBABLE.fullmatch(value):
            raise InvalidRequestError(f"{name} holds characters no {name} may hold")


def _check_redirect_uri_given(oreq: StarletteOAuth2Request) -> None:
    """OpenID Connect Core 3.1.2.1: ``redirect_uri`` is REQUIRED in an authentication
    request (its scope holds ``openid``); one without it was answered at the client's
    single registered URI. Refused on the error page, as Keycloak refuses it: no
    redirect URI was given to validate. Plain OAuth keeps RFC 6749 section 3.1.2.3's
    default for a client with one registered URI."""
    scope = oreq.payload.data.get("scope") or ""
    if "openid" in scope.split(" ") and not oreq.payload.data.get("redirect_uri"):
        raise InvalidRequestError("redirect_uri is required in an OpenID Connect "
                                  "request (scope openid)")


async def authorize(request: Request) -> Response:
    p = _provider(request)
    oreq = await oauth_request(request, p)
    server = p.server
    session = p.valid_session(p.session_token(request.cookies))
    subject = None if session is None else server.subject(
        session.username, sid=session.sid, auth_time=session.auth_time, amr=session.amr)
    try:
        _check_once(oreq)
        _check_quotable(oreq)
        _check_redirect_uri_given(oreq)
        try:
            # authlib's OIDC extension checks prompt against this end user (prompt=none)
            grant = await run_in_threadpool(server.get_consent_grant, oreq, subject)
        except ValueError as exc:  # an error that would quote what it may not (above)
            if "forbidden characters" not in str(exc):
                raise
            raise InvalidRequestError("a parameter holds characters an error cannot "
                                      "quote") from None
        sign_in = _must_sign_in(p, oreq, grant, session)
        # the person in the browser consents (``subject``, not whom they act for)
        ask_consent = not sign_in and subject is not None and await run_in_threadpool(
            consent_due, p, oreq, grant, session, subject)
    except OAuth2Error as error:
        uri = getattr(error, "redirect_uri", None)
        sent = {k: v[:_AUDITED_CHARS] for k in _QUOTED if (v := oreq.payload.data.get(k))}
        record = AuditRecord(event_type="authorize", outcome="failure",
                             source_ip=oreq.source_ip, actor_client=oreq.payload.client_id,
                             actor_user=session.username if session else None,
                             reason=f"{error.error}: {error.description or ''}", extra=sent)
        try:
            await p.emit([record])
        except AuditUnavailable:
            return audit_unavailable()
        if uri:  # the redirect URI was validated against the client: tell the client
            error.state = oreq.payload.state
            return to_response(with_issuer(server.handle_error_response(oreq, error),
                                           server.issuer))
        return _error_page(request, "authorize_error",
                           f"{error.error}: {error.description or ''}")
    if sign_in:
        return _to_sign_in(request, p, oreq.form.items())
    assert session is not None
    if subject is None:
        return _error_page(request, "authorize_error", "account disabled", status=403)
    if ask_consent:
        return consent_page(request, p, oreq, subject)
    own = subject
    client = getattr(oreq, "client", None)
    try:  # 委托: A acted for by B, on a system the delegation names
        subject = await run_in_threadpool(
            acting_subject, server.acting, server, p.services.keys, session.sid,
            request.headers, own, client.system if client is not None else None)
    except ActingRefused as exc:
        try:
            await p.emit([AuditRecord(
                event_type="authorize", outcome="deny", status=403, source_ip=oreq.source_ip,
                actor_user=own.username, actor_client=oreq.payload.client_id,
                department=own.department, reason=exc.reason,
                extra={"delegation": exc.delegation, "sid": session.sid})])
        except AuditUnavailable:
            return audit_unavailable()
        return refused_page(request)
    result = with_issuer(await run_in_threadpool(
        server.create_authorization_response, oreq, subject, grant), server.issuer)
    oreq.events.append(AuditRecord(
        event_type="authorize", outcome="success" if result.status == 302 else "failure",
        source_ip=oreq.source_ip, actor_user=subject.username,
        actor_client=oreq.payload.client_id, department=subject.department,
        extra={"scope": oreq.scope, "sid": session.sid,
               "auth_time": subject.auth_time, **acting_audit(subject, own)}))
    return await _finish(p, oreq, result, "authorize")


# -- RP-initiated logout --------------------------------------------------------------

def _hint_claims(p: Provider, hint: str | None) -> dict[str, Any]:
    """An ID token of ours; {} for anything else (an access token carries the session's
    ``sid`` too, and is shown to every resource it opens)."""
    return id_token_claims(p.services.keys, p.server.issuer, hint) or {}


def _audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


#: what the sign-out confirmation form carries back to ``end_session``
LOGOUT_PARAMS = ("client_id", "post_logout_redirect_uri", "state")


async def end_session(request: Request) -> Response:
    """RP-Initiated Logout 1.0 section 2. With both ``client_id`` and a valid
    ``id_token_hint``, the client must be one the ID token was issued to, or the
    request is refused as a whole (error page: nothing ended, no redirect). The
    browser goes back only to a ``post_logout_redirect_uri`` registered for that
    client as a post-logout URI, matched exactly (section 3.1)."""

    p = _provider(request)
    params: dict[str, str] = dict(request.query_params)
    form = None
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    hint = _hint_claims(p, params.get("id_token_hint"))
    audiences = _audiences(hint)
    named = params.get("client_id")
    if named and hint and named not in audiences:
        try:
            await p.emit([AuditRecord(
                event_type="logout", outcome="deny", status=400, actor_client=named[:128],
                actor_user=hint.get("sub"), source_ip=_client_ip(request),
                reason=f"client_id {named[:128]!r} is not the audience of the id_token_hint "
                       f"({', '.join(audiences)})",
                extra={"post_logout_redirect_uri":
                       params.get("post_logout_redirect_uri", "")[:_AUDITED_CHARS]})])
        except AuditUnavailable:
            return audit_unavailable()
        return _error_page(request, "logout_error", "", status=400,
                           detail_key="logout_client_mismatch")
    session = p.valid_session(p.session_token(request.cookies), stage=None)
    if session is not None and hint.get("sid") != session.sid and not (
            form is not None and csrf_ok(request, form)):
        # no id_token_hint of this session: any site can send the browser here (the
        # Lax cookie goes along on a top-level GET), so the user confirms first
        # (RP-Initiated Logout 1.0 sections 2 and 6), with the form's CSRF token
        return render(request, "logout_confirm.html", hidden=[
            (k, params[k]) for k in LOGOUT_PARAMS if params.get(k)])
    if session is None and hint.get("sid"):
        row = p.store.get_session(str(hint["sid"]))
        if row is not None and row.revoked_at is None and row.username == hint.get("sub"):
            session = row
    saml = gateway_of(request).saml
    if session is not None:
        try:
            with saml.browser_tells(session.sid):
                await p.end_session(session, reason="rp-initiated logout",
                                    source_ip=_client_ip(request))
        except AuditUnavailable:
            return audit_unavailable()
    client_id = named or (audiences[0] if len(audiences) == 1 else None)
    target = params.get("post_logout_redirect_uri")
    response: Response
    client = p.server.clients.get(client_id)
    if target and client is not None and client.check_post_logout_redirect_uri(target):
        if params.get("state"):
            target += ("&" if "?" in target else "?") + urlencode({"state": params["state"]})
        # SAML SPs the back channel cannot reach hear of it through the browser first
        response = (await front_channel(request, session.sid, ChainEnd(then=target))
                    if session is not None else RedirectResponse(target, status_code=303))
    elif session is not None:
        response = await front_channel(request, session.sid)
    else:
        response = _error_page(request, "signed_out", "", status=200)
    p.clear_session_cookie(response)
    return response


def oauth2_routes() -> list[BaseRoute]:
    return [
        Route("/.well-known/openid-configuration", openid_configuration),
        Route("/.well-known/oauth-authorization-server", openid_configuration),
        Route("/oauth2/authorize", authorize, methods=["GET", "POST"]),
        Route("/oauth2/token", token, methods=["POST"]),
        Route("/oauth2/userinfo", userinfo, methods=["GET", "POST"]),
        Route("/oauth2/introspect", introspect, methods=["POST"]),
        Route("/oauth2/revoke", revoke, methods=["POST"]),
        Route("/oauth2/logout", end_session, methods=["GET", "POST"]),
        Route(CONSENT_PATH, consent_submit, methods=["POST"]),
    ]
