"""The one ``Location`` a shaped redirect keeps: the request's own path up to a
trailing slash (shaped routes for real consumers, 2026-12-05).

A shaped answer's header fields pass only as counts (``gateway.proxy.catalogue``
``shaped_headers``): an upstream fills ``Location`` as it likes
(``/api/vehicles?driver_id_number=...``). Without one, though, the trailing-slash
redirect of Django's ``APPEND_SLASH``, Spring's and Starlette's (``/api/vehicles`` →
``/api/vehicles/``) is a dead end. A 3xx keeps a ``Location`` that carries nothing but
what the consumer itself sent: after the proxy's rewriting (``gateway.proxy.redirect``:
the upstream's own absolute URL becomes ``/s/{system}/...``), a reference with no
scheme, host, query, fragment or dot segment, in plain URL characters, that resolves
against the request's gateway path to that path with or without its trailing slash
(``/s/vehicles/api/vehicles/``, or relative ``vehicles/``). Every character of such a
value stands in the path the consumer asked, so it tells nothing the request did not.
A reference outside ``/s/{system}/`` (the upstream's ``/api/vehicles/``, which the
proxy passes unchanged as nginx does and which the consumer would resolve outside the
system) is dropped as before.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

REDIRECTS = frozenset({301, 302, 303, 307, 308})
# RFC 3986 path characters but ':' (no scheme), and no '?', '#', '\', white space
_PLAIN = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=@/]+")
_BASE = "http://gateway.invalid"


def own_location(value: bytes, system: str, path: str) -> bool:
    """Whether ``value`` (a ``Location``, after the proxy's rewriting) names the gateway
    path ``/s/{system}{path}`` of the request (``path``: its upstream path), with or
    without a trailing slash, and nothing else (module docstring)."""
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return False
    if _PLAIN.fullmatch(text) is None or text.startswith("//") or any(
            seg in (".", "..") for seg in text.split("/")):
        return False
    asked = f"/s/{system}{path}"
    found = urlsplit(urljoin(_BASE + asked, text))
    if f"{found.scheme}://{found.netloc}" != _BASE or found.query or found.fragment:
        return False
    own = asked.rstrip("/")
    return found.path in (own, own + "/")
