"""``GET /portal/refused``: the page a front proxy shows a browser that forward-auth
refused (nginx's ``error_page 401 403``, docs/nginx-forward-auth.conf), instead of
the proxy's bare "403 Forbidden".

nginx passes the browser's own header fields (its cookies, ``Accept-Language``) and
sets these from the refusal:

    X-Govgate-Status   401 or 403 (any other value is read as 403)
    X-Refusal-Code     forward-auth's refusal code (its answer's ``X-Refusal-Code``)
    X-Original-URI     the address the browser asked for (``$request_uri``)
    X-Forwarded-Host   the host it asked (``$host``)
    X-Request-ID       forward-auth's request id, the id of its audit record

Anyone may ask for the page directly, so it shows only what the caller has already:
who the caller's own portal session is, one fixed sentence per refusal code (never
the audit record's reason, a resource or a policy line), and the id. 401 links to the
portal's sign-in at the issuer, coming back to the address only when the address is
on the gateway's own host (``safe_next``: a local path, never another site) or on its
host name at another port (through ``/portal/return``, ``return_to``); on another
host the address is shown as text, not as a link. A program (not a browser
navigating) gets the refusal as problem JSON, 401 with ``WWW-Authenticate``.

The language: ``?lang=``, the portal's language cookie, then ``Accept-Language``
(unlike the portal's pages: this one answers on the system's host, where the
portal's cookie is seldom set), then the ``lang`` setting (Chinese).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from gateway.i18n import accept_lang
from gateway.root import gateway_of
from gateway.tables import departments
from gateway.web.portal.error_page import wants_page
from gateway.web.portal.i18n import LANG_COOKIE, Translator, pick_lang
from gateway.web.portal.pages import SECURITY_HEADERS, TEMPLATES, safe_next, session_principal
from gateway.web.portal.return_to import return_target, sign_in_back_to

# the refusal codes the page explains; any other is "access was refused"
EXPLAINED = frozenset({"access_denied", "shaping_required", "rate_limited", "bad_path",
                       "not_delegated", "insufficient_scope"})
_CODE = re.compile(r"[a-z_]{1,40}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_BEARER = 'Bearer realm="govgate"'


def _lang(request: Request) -> str:
    default = gateway_of(request).services.settings.lang
    # the switch's ``?lang=`` lands on the address the browser asked for
    original = urlsplit(request.headers.get("x-original-uri", "")).query
    asked = (request.query_params.get("lang") or parse_qs(original).get("lang", [None])[0]
             or request.cookies.get(LANG_COOKIE))
    if asked in ("zh", "en"):
        return pick_lang(asked, None, default)
    return accept_lang(request.headers.get("accept-language"), default)


def _sign_in(issuer: str, host: str | None, uri: str | None) -> tuple[str, str | None]:
    """The sign-in link, and the address to show as text when the link cannot come
    back to it (another host than the gateway's, or a target that is no local path)."""
    login = issuer.rstrip("/") + "/portal/login"
    own = urlsplit(issuer)
    if not uri:
        return login, None
    if host is not None and host.lower() == own.netloc.lower():
        back = safe_next(uri)
        if back == uri:
            return login + "?" + urlencode({"next": back}), None
        return login, None  # not a local path: neither a link nor shown
    shown = f"{own.scheme}://{host}{uri}" if host and uri.startswith("/") else None
    if shown is not None and return_target(shown, issuer) == shown:
        # the gateway's host name at another port (nginx's, as docs/integration.md
        # advises): the portal's cookie reaches it, so the sign-in comes back there
        return login + "?" + urlencode({"next": sign_in_back_to(shown)}), None
    return login, shown


def _department_name(request: Request, code: str) -> str:
    """The department as people know it (财政厅), its code when it has no row."""
    with gateway_of(request).services.engine.connect() as conn:
        name = conn.execute(sa.select(departments.c.name)
                            .where(departments.c.code == code)).scalar()
    return str(name or code)


def _assets(issuer: str, host: str | None) -> str | None:
    """Where the page's stylesheet and icon come from when it answers on the system's
    host: the front proxy sends every other path there to the system, behind
    forward-auth, so ``/portal/static/portal.css`` on that host is refused (401) and
    the page came unstyled. ``None`` on the gateway's own host (or none told)."""
    own = urlsplit(issuer)
    if not host or host.lower() == own.netloc.lower():
        return None
    return f"{own.scheme}://{own.netloc}"


def _policy_with(origin: str) -> str:
    """The portal's Content-Security-Policy, also allowing the gateway's own origin for
    the stylesheet and the icon, and nothing else of it."""
    return (f"default-src 'self'; style-src 'self' {origin}; img-src 'self' data: {origin}; "
            "frame-ancestors 'none'; base-uri 'none'")


async def front_refused(request: Request) -> Response:
    h = request.headers
    status = 401 if h.get("x-govgate-status") == "401" else 403
    code = h.get("x-refusal-code", "")
    if not _CODE.fullmatch(code):
        code = "unauthorized" if status == 401 else "forbidden"
    request_id = h.get("x-request-id", "")
    if not _REQUEST_ID.fullmatch(request_id):
        request_id = ""
    extra = {"WWW-Authenticate": _BEARER} if status == 401 else {}
    headers = {**SECURITY_HEADERS, **extra}
    lang = _lang(request)
    if not wants_page({k.lower(): v for k, v in h.items()}):
        problem = {"type": f"urn:govgate:error:{code}", "status": status,
                   "title": Translator(lang)(f"fr_title_{status}")}
        if request_id:
            problem["request_id"] = request_id
        return Response(json.dumps(problem, ensure_ascii=False), status_code=status,
                        media_type="application/problem+json", headers=headers)
    t = Translator(lang)
    other = "en" if lang == "zh" else "zh"
    context: dict[str, object] = {"t": t, "lang": lang, "status": status,
                                  "request_id": request_id, "lang_query": f"lang={other}"}
    assets = _assets(gateway_of(request).services.settings.issuer, h.get("x-forwarded-host"))
    if assets:
        context["assets"] = assets
        headers["Content-Security-Policy"] = _policy_with(assets)
    if status == 401:
        issuer = gateway_of(request).services.settings.issuer
        context["sign_in"], context["return_to"] = _sign_in(
            issuer, h.get("x-forwarded-host"), h.get("x-original-uri"))
    else:
        principal = session_principal(request)
        context["who"] = ((principal.name or principal.username or "",
                           principal.username or "",
                           _department_name(request, principal.department))
                          if principal is not None else None)
        context["why"] = f"fr_why_{code}" if code in EXPLAINED else "fr_why_other"
    html = TEMPLATES.get_template("front_refused.html").render(**context)
    return Response(html, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**headers, "Content-Language": "zh-CN" if lang == "zh" else "en"})


# the fields nginx's forward-auth sets (docs/nginx-forward-auth.conf): behind nginx the
# answer's body is never shown (its ``error_page`` asks for the page above), and any
# status but 2xx, 401 and 403 is its 500, so a redirect must never go there
_NGINX_MARKS = frozenset({"x-original-uri", "x-original-url", "x-original-method"})
_FORWARDED = ("x-forwarded-uri", "x-forwarded-host")


async def front_answer(scope: Scope, status: int, code: str, request_id: str
                       ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """What a browser refused at ``/auth/verify`` gets when its front proxy hands the
    answer on as it is (Caddy's ``forward_auth``, Traefik's ``forwardAuth``): not
    signed in, a redirect to the portal's sign-in (as oauth2-proxy answers); refused,
    this page. None (the problem JSON stays) for a program, a request behind nginx
    (``_NGINX_MARKS``) and a peer forward-auth does not answer. The browser's own
    fields (``Accept``, ``Cookie``, ``Accept-Language``) reach forward-auth because
    these proxies pass the client's header fields on to it."""
    if status not in (401, 403) or code == "forward_auth_peer":
        return None
    sent: dict[str, str] = {}
    for k, v in scope.get("headers") or ():
        sent.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    if _NGINX_MARKS & sent.keys() or not wants_page(sent):
        return None
    if "dpop" in sent or (status == 401 and "authorization" in sent):
        # a program that sent a credential (a browser navigating sends none): it needs
        # the 401 and its challenge (DPoP's, RFC 9449 section 7.1), not a sign-in page
        # its HTTP library follows to a 200 (Java's sends Accept: text/html by default)
        return None
    uri, host = (sent.get(name) for name in _FORWARDED)
    common = [(b"x-request-id", request_id.encode("latin-1")), (b"cache-control", b"no-store"),
              (b"x-refusal-code", code.encode("latin-1"))]
    if status == 401:
        issuer = scope["app"].state.gateway.services.settings.issuer
        location, _ = _sign_in(issuer, host, uri)
        return 302, [(b"location", location.encode("latin-1")), *common], b""
    fields = [(k, v) for k, v in scope["headers"] if k.lower() not in (
        b"x-govgate-status", b"x-refusal-code", b"x-request-id")]
    fields += [(b"x-govgate-status", b"403"), (b"x-refusal-code", code.encode("latin-1")),
               (b"x-request-id", request_id.encode("latin-1"))]
    if uri is not None:  # the page reads the address as nginx names it
        fields.append((b"x-original-uri", uri.encode("latin-1")))
    page = await front_refused(Request({
        "type": "http", "method": "GET", "path": "/portal/refused", "query_string": b"",
        "headers": fields, "app": scope["app"]}))
    kept = [(k, v) for k, v in page.raw_headers if k not in (b"content-length",)]
    return page.status_code, [*kept, *common], bytes(page.body)
