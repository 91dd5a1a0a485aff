"""Cross-site requests riding on the portal session cookie are refused (proxy and portal).

A browser user reaches ``/s/{system}/...`` with the portal session cookie
(``SameSite=Lax``). A page on a sibling subdomain is *same-site*, so its
cross-origin ``POST`` (a form, or a ``text/plain`` fetch that needs no CORS
preflight) carries that cookie, and the proxy would forward it with a valid signed
identity assertion: the upstream cannot tell it from the user's own click. Its own
CSRF defences, if any, are tied to its own sessions, which the gateway replaced.

So a state-changing request authenticated by the session cookie must come from the
gateway's own origin, as every page served through ``/s/`` does. The browser says
where a request comes from in ``Sec-Fetch-Site`` (Fetch Metadata), which decides
where it is sent; older browsers send only ``Origin``, which must then be the
gateway's (``null`` is not). A request with
neither (an old browser, or a program holding the cookie itself) passes: no
browser of the last years sends an unsafe request without ``Origin``, and a program
is the user. Bearer-token requests are unaffected: no browser attaches a token by
itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=64)
def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url`` as browsers serialise it (lower case, the
    default port left out), or None when ``url`` has no scheme and host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origins(issuer: str, scheme: str, host: str | None) -> frozenset[str]:
    """The origins a request may come from: the issuer's, and the one the browser
    itself addressed (``scheme`` and ``Host``), which an attacker's page cannot set
    for the victim's browser: a gateway reached as ``localhost`` rather than as its
    configured ``127.0.0.1`` still accepts its own pages' posts."""
    found = {origin_of(issuer)}
    if host:
        found.add(origin_of(f"{scheme}://{host.strip()}"))
    return frozenset(o for o in found if o is not None)


def cross_site_reason(method: str, headers: Mapping[str, str],
                      allowed: Collection[str]) -> str | None:
    """Why an unsafe request with these (lower-case, first-value) ``headers`` does not
    come from one of the ``allowed`` origins, or None when it does (or cannot be
    told)."""
    if method in SAFE_METHODS:
        return None
    site = headers.get("sec-fetch-site")
    if site is not None:
        # authoritative where present: under "Referrer-Policy: no-referrer" a browser
        # posts a same-origin form with "Origin: null"
        if site.strip().lower() in ("same-origin", "none"):
            return None
        return f"cross-site request with the session cookie (Sec-Fetch-Site: {site.strip()[:40]})"
    origin = headers.get("origin")
    if origin is not None and origin_of(origin) not in allowed:
        return "cross-origin request with the session cookie (Origin is not the gateway)"
    return None
