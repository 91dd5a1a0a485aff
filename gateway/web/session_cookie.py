"""One session cookie, or none: a request that names the portal session cookie twice is
treated as signed out, on every route (the portal, the APIs, the proxy).

The gateway sets its session cookie once, host-only, ``Path=/``: ``gg_session`` on a
plain-http gateway, ``__Host-gg_session`` over https (``provider.cookie_name``), which no
other host can set at all; this check stays for the plain name. A page on a sibling
subdomain (same site) can set a ``gg_session`` of its own for the parent domain (cookie
tossing, RFC 6265bis section 8.6), holding the attacker's session; the browser then
sends both, the older first, and the server took the last: the victim went on in the
session the attacker chose (session fixation without touching the victim's own). No
rule tells the two apart, so neither counts; the sign-in still works (its new cookie is
one of the two again, and the next request is signed out while the tossed one stays,
which is all a sibling subdomain can then do).
"""

from __future__ import annotations

from starlette.types import Scope

from gateway.idp.oauth2.provider import SESSION_COOKIE


def _is_session(pair: bytes, name: bytes) -> bool:
    return pair.split(b"=", 1)[0].strip() == name


def drop_ambiguous_session(scope: Scope, name: str = SESSION_COOKIE) -> None:
    """Remove the session cookie ``name`` (the provider's ``session_cookie``) from
    ``scope``'s ``Cookie`` headers when they name it more than once (see the module)."""
    bname = name.encode("ascii")
    headers = scope["headers"]
    cookies = [v for k, v in headers if k == b"cookie" or k.lower() == b"cookie"]
    if sum(v.count(bname + b"=") for v in cookies) < 2:  # the usual case, in one pass
        return
    if sum(_is_session(pair, bname) for v in cookies for pair in v.split(b";")) < 2:
        return
    kept = []
    for k, v in headers:
        if k.lower() == b"cookie":
            v = b";".join(p for p in v.split(b";")
                          if not _is_session(p, bname)).strip(b"; ")
            if not v:
                continue
        kept.append((k, v))
    scope["headers"] = kept
