"""``GET /portal/return?to=URL``: after the portal's sign-in, back to the address a
browser was refused at behind the front proxy, when that proxy serves the system on
the gateway's host name at another port (docs/integration.md, "Which browsers it
knows": the portal's session cookie is host-only, so only there does forward-auth know
the browser). The sign-in's ``next`` stays a local path (``pages.safe_next``, through
every stage: password, second factor, forced change); this page is that path.

Only an address of the issuer's scheme and host name is followed, at any port: the
portal's session cookie reaches every port of that host already, so a service there is
trusted with the sign-in as much as it can be; any other address (another host, a
user name in it, another scheme, no path) goes to the portal's home page instead.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.root import gateway_of
from gateway.web.portal.pages import SECURITY_HEADERS, session_cookie

PATH = "/portal/return"
_LONGEST = 2000


def return_target(url: str | None, issuer: str) -> str | None:
    """``url`` when the sign-in may come back to it (the issuer's scheme and host name,
    any port, an absolute path, no user name), else None."""
    if (not url or len(url) > _LONGEST or "\\" in url
            or any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url)):
        return None
    own = urlsplit(issuer)
    try:
        # urlsplit raises ValueError for an unclosed "[" (no IPv6 literal), .port for a
        # port that is no port: no address either way
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return None
    if (parts.scheme != own.scheme or "@" in parts.netloc or not parts.hostname
            or parts.hostname != (own.hostname or "").lower()
            or not parts.path.startswith("/") or parts.path.startswith("//")):
        return None
    return url


def sign_in_back_to(url: str) -> str:
    """The sign-in's ``next`` that comes back to ``url`` (a :func:`return_target`)."""
    return PATH + "?" + urlencode({"to": url})


async def return_to(request: Request) -> Response:
    gateway = gateway_of(request)
    target = return_target(request.query_params.get("to"), gateway.services.settings.issuer)
    if target is None:
        return RedirectResponse("/portal", status_code=303, headers=SECURITY_HEADERS)
    if gateway.provider.valid_session(session_cookie(request)) is None:
        login = "/portal/login?" + urlencode({"next": sign_in_back_to(target)})
        return RedirectResponse(login, status_code=303, headers=SECURITY_HEADERS)
    return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
