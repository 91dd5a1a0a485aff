"""Browsers get pages, programs get problem details.

A refusal under ``/s/`` (the proxy) or ``/portal`` is answered to a browser's
navigation as a page, and to everything else (API clients, scripts, a page's own
``fetch``) as RFC 9457 ``application/problem+json``, unchanged:

    401   → 303 to the portal's sign-in, which returns to the same address after it
    403   → a page in the portal's language (Chinese, English by switch): what happened,
    404     the request id (the audit record's), and where the catalogue governs the
            resource, a link to apply for access on its catalogue page

A navigation is a request that accepts ``text/html`` and is not a script's: its
``Sec-Fetch-Mode`` is ``navigate`` or absent (a browser without Fetch Metadata).
The way back after sign-in stays on the gateway (``routes.safe_next``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from starlette.requests import cookie_parser
from starlette.types import Scope

from gateway.web.portal.i18n import LANG_COOKIE, Translator, pick_lang
from gateway.web.portal.pages import SECURITY_HEADERS, TEMPLATES, safe_next

PAGE_STATUSES = (403, 404)


def wants_page(headers: Mapping[str, str]) -> bool:
    """A browser navigating (``headers``: lower-case names, first values)."""
    accept = headers.get("accept", "").lower()
    mode = headers.get("sec-fetch-mode", "navigate").lower()
    return "text/html" in accept and mode == "navigate"


def page_lang(headers: Mapping[str, str], query: str, default: str) -> str:
    """``?lang=``, then the portal's language cookie, then the setting (as the portal)."""
    asked = next((v for k, _, v in (p.partition("=") for p in query.split("&"))
                  if k == "lang"), None)
    return pick_lang(asked, cookie_parser(headers.get("cookie", "")).get(LANG_COOKIE),
                     default)


def login_location(target: str) -> str:
    """The sign-in page, coming back to ``target`` (a local path and query) after it."""
    return "/portal/login?" + urlencode({"next": safe_next(target)})


def render_error(status: int, *, lang: str, request_id: str, resource: str | None = None,
                 query: str = "", code: str | None = None) -> bytes:
    """The page of a 403 or 404 (``PAGE_STATUSES``), as UTF-8; ``code``, the problem's,
    explains a refusal the person can act on (acting under a delegation that does not
    cover the system: stop acting)."""
    other = "en" if lang == "zh" else "zh"
    kept = [p for p in query.split("&") if p and not p.startswith("lang=")]
    html = TEMPLATES.get_template("error.html").render(
        t=Translator(lang), lang=lang, status=status, request_id=request_id,
        resource=resource, not_delegated=code == "not_delegated",
        apply_url=f"/portal/catalogue/{quote(resource, safe='')}" if resource else None,
        lang_query="&".join([*kept, f"lang={other}"]))
    return html.encode("utf-8")


def page_headers(body: bytes, request_id: str) -> list[tuple[bytes, bytes]]:
    """The portal's security headers for an error page, as raw ASGI headers."""
    return [(b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]


def browser_answer(scope: Scope, status: int, *, request_id: str,
                   resource: str | None, default_lang: str, code: str | None = None
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """What a browser navigating to the ASGI ``scope`` gets instead of the problem
    with ``status``: (status, headers, body), or None (not a navigation, or a
    status that stays a problem)."""
    if status != 401 and status not in PAGE_STATUSES:
        return None
    raw = scope.get("headers") or []
    headers: dict[str, str] = {}
    for k, v in raw:
        headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    if not wants_page(headers):
        return None
    query = (scope.get("query_string") or b"").decode("latin-1")
    if status == 401:
        path = scope.get("raw_path") or str(scope.get("path", "/")).encode("utf-8")
        target = path.partition(b"?")[0].decode("latin-1")
        location = login_location(target + (f"?{query}" if query else ""))
        return 303, [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                     (b"cache-control", b"no-store"),
                     (b"x-request-id", request_id.encode())], b""
    body = render_error(status, lang=page_lang(headers, query, default_lang),
                        request_id=request_id, resource=resource, query=query, code=code)
    return status, page_headers(body, request_id), body
