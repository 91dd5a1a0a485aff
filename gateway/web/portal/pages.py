"""What every portal page shares: the templates, the security headers, the page's
language, rendering, the CSRF check, and the app's authenticator. The pages
themselves are in ``routes`` (sign-in, launcher), ``catalogue_pages`` and the
identity provider's endpoints (``gateway.web.oauth2``, ``gateway.web.cas``)."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from gateway.errors import Unauthorized
from gateway.idp.authenticator import Authenticator, Principal
from gateway.root import gateway_of
from gateway.same_origin import cross_site_reason, own_origins
from gateway.web.portal.i18n import LANG_COOKIE, Translator, pick_lang

HERE = Path(__file__).parent

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(HERE / "templates")),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # Origin stays real on its own posts
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def page_lang(request: Request) -> str:
    """The page's language: ``?lang=``, else the language cookie, else the default."""
    default = gateway_of(request).services.settings.lang
    return pick_lang(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE),
                     default)


def safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect, as a ``Location`` nor as a link a page
    shows. A browser drops tabs and line breaks inside a URL and reads ``\\`` as ``/``
    (WHATWG URL), so ``/\\t/evil.example`` in an ``href`` goes to ``//evil.example``: a
    value with a backslash, a control character or a space is refused with the rest."""
    if (not value or not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value)):
        return "/portal"
    return value


def session_cookie(request: Request) -> str | None:
    """The portal session cookie's value, under the name the provider decides
    (``__Host-gg_session`` over https, ``gg_session`` on a plain-http demo)."""
    return gateway_of(request).provider.session_token(request.cookies)


def csrf_cookie_name(request: Request) -> str:
    """``__Host-gg_csrf`` over https, ``gg_csrf`` on http (provider.cookie_name)."""
    return gateway_of(request).provider.csrf_cookie


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = page_lang(request)
    csrf_name = csrf_cookie_name(request)
    csrf = request.cookies.get(csrf_name) or secrets.token_urlsafe(32)
    query = dict(request.query_params)
    query["lang"] = "en" if lang == "zh" else "zh"
    session = gateway_of(request).provider.valid_session(session_cookie(request))
    context.setdefault("signed_in", session is not None)
    # the red banner on every page while the person's break-glass is active
    context.setdefault("break_glass_active", gateway_of(request).break_glass.active.of(
        session.username) if session is not None else ())
    html = TEMPLATES.get_template(template).render(
        t=Translator(lang), lang=lang, csrf=csrf, lang_query=urlencode(query), **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    secure = gateway_of(request).provider.secure_cookies
    if request.cookies.get(csrf_name) != csrf:
        response.set_cookie(csrf_name, csrf, httponly=True, samesite="strict",
                            secure=secure, path="/")
    if request.query_params.get("lang") in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax",
                            secure=secure, path="/")
    return response


def render_message(request: Request, title_key: str, detail: str = "",
                   status: int = 200, detail_key: str = "") -> HTMLResponse:
    """The message page: a translated title, then ``detail`` as it is or, with
    ``detail_key``, a translated one."""
    return render(request, "message.html", status=status, title_key=title_key, detail=detail,
                  detail_key=detail_key)


def codes_page(request: Request, codes: list[str], next_url: str) -> HTMLResponse:
    """The recovery codes, the one time they are shown (at enrolment and on the
    account page)."""
    return render(request, "recovery_codes.html", codes=codes, next=safe_next(next_url),
                  error=None)


def csrf_ok(request: Request, form: Any) -> bool:
    """The form's token matches the CSRF cookie, and the browser says the post comes
    from the gateway's own origin. The second check is what stops a sibling
    subdomain: it is same-site (the Lax session cookie goes along) and can toss its
    own ``gg_csrf`` cookie for the parent domain (over https the cookie is
    ``__Host-gg_csrf``, which it cannot set), then post the value it chose."""
    cookie = request.cookies.get(csrf_cookie_name(request), "")
    sent = form.get("csrf_token", "")
    if not (bool(cookie) and isinstance(sent, str) and hmac.compare_digest(
            cookie.encode(), sent.encode())):
        return False
    fetch = {k: v for k in ("origin", "sec-fetch-site")
             if (v := request.headers.get(k)) is not None}
    allowed = own_origins(gateway_of(request).services.settings.issuer, request.url.scheme,
                          request.headers.get("host"))
    return cross_site_reason(request.method, fetch, allowed) is None


def session_principal(request: Request) -> Principal | None:
    """The person of the portal session, or None."""
    try:
        return authenticator(request).from_session(session_cookie(request) or "")
    except Unauthorized:
        return None


def to_sign_in(request: Request) -> Response:
    """The sign-in, coming back to this address after it."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/portal/login?" + urlencode({"next": here}), status_code=303)


def authenticator(request: Request) -> Authenticator:
    return gateway_of(request).authenticator
