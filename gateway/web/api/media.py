"""State-changing calls to the JSON API (``/api/...``) must say ``application/json``.

The portal session cookie is ``SameSite=Lax``, and a page on a sibling subdomain is
same-site: its cross-origin ``POST`` carries the cookie. A browser sends such a request
without a CORS preflight only as a "simple" request: a body of ``text/plain``,
``application/x-www-form-urlencoded`` or ``multipart/form-data``, or no body at all
(``fetch(url, {method: "POST", mode: "no-cors"})`` sends no Content-Type). Declaring
``application/json`` forces a preflight, which the gateway never grants (it sends no
CORS headers). So a ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` under ``/api/`` is
refused with 415 unless its one Content-Type is ``application/json`` (parameter
``charset=utf-8`` allowed) when it

- has a body (``Content-Length`` above 0, or ``Transfer-Encoding``), or
- names any Content-Type at all (an empty form post), or
- would be authenticated by the session cookie (a ``Cookie`` and no ``Authorization``
  header): even without a body, a cookie request must say JSON.

A bodyless call with a bearer token needs no Content-Type: no browser attaches a
bearer token on its own. The check runs before authentication and reads nothing of
the body.
"""

from __future__ import annotations

from starlette.types import Scope

from gateway.errors import UnsupportedMediaType
from texts import Text

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PREFIX = "/api/"


def is_json(value: str) -> bool:
    """``application/json``, optionally with ``charset=utf-8`` (any case, quoted or not);
    anything else (other types, other parameters, other charsets) is not."""
    essence, *params = value.split(";")
    if essence.strip(" \t").lower() != "application/json":
        return False
    for param in params:
        if not param.strip(" \t"):
            continue
        name, _, val = param.partition("=")
        if name.strip(" \t").lower() != "charset":
            return False
        if val.strip(" \t").strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def refuse_non_json(scope: Scope) -> UnsupportedMediaType | None:
    """The 415 for a state-changing API request in ``scope`` that does not declare
    JSON (see the module), or None."""
    if scope["method"] not in UNSAFE_METHODS:
        return None
    types: list[bytes] = []
    body = False
    authorization: bytes | None = None
    cookie = False
    for k, v in scope["headers"]:
        k = k.lower()
        if k == b"content-type":
            types.append(v)
        elif k == b"content-length":
            value = v.strip()
            body = body or not (value.isdigit() and int(value) == 0)
        elif k == b"transfer-encoding":
            body = True
        elif k == b"authorization":
            if authorization is None:
                authorization = v  # the authenticator reads the first one
        elif k == b"cookie":
            cookie = True
    by_cookie = cookie and not authorization
    if not (body or types or by_cookie):
        return None
    if len(types) == 1 and is_json(types[0].decode("latin-1")):
        return None
    return UnsupportedMediaType(Text(
        "api.not_json",
        "a request that changes state must send its body as application/json "
        "(Content-Type: application/json), and so must a bodyless one that relies on "
        "the session cookie"))
