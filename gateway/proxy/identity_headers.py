"""Plain identity headers, for department systems that cannot verify a JWT.

Many systems an agency runs were built to sit behind a single sign-on proxy that
tells them the user in a request header (oauth2-proxy's ``--pass-user-headers``,
LemonLDAP::NG handlers, Apache's ``REMOTE_USER``). A system declares what it
reads (``systems: [{identity_headers: ..., remote_user: ...}]``):

    identity_headers   assertion (default)  X-Govgate-Assertion only (a signed JWT)
                       plain                the headers below only
                       both                 both
    remote_user        true                 also Remote-User: the username

    X-Govgate-User        the username (a client-credentials call: client:<client id>)
    X-Govgate-Department  the caller's department code
    X-Govgate-Roles       the roles, comma-separated, sorted
    X-Govgate-Name        the display name, when known
    X-Govgate-Client      the OAuth client id, when the call came with a token
    X-Govgate-Acting-User the colleague acting for the user under a delegation (委托)

A value that is printable ASCII is sent as it is; any other (a Chinese name) as an
RFC 8187 ext-value, ``UTF-8''`` followed by the percent-encoded UTF-8 bytes
(``X-Govgate-Name: UTF-8''%E5%BC%A0%E4%B8%89`` is 张三). Every client-sent header
of these names, in any spelling, was dropped before (``gateway.proxy.headers``):
the system sees exactly one of each, and only the gateway's.

Safe only when the system cannot be reached except through the gateway (it
listens on a private address the gateway alone can reach, or requires mTLS):
anyone who reaches it directly can send these headers themselves. The assertion
does not have that weakness: prefer it where the system can verify it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

ASSERTION = "assertion"
PLAIN = "plain"
BOTH = "both"
MODES = (ASSERTION, PLAIN, BOTH)


def header_value(value: str) -> bytes:
    """``value`` as a header field value: printable ASCII as it is, anything else as
    an RFC 8187 ext-value."""
    if value.isascii() and value.isprintable():
        return value.encode("ascii")
    return ("UTF-8''" + quote(value, safe="")).encode("ascii")


def plain_headers(principal: Any, *, remote_user: bool) -> list[tuple[bytes, bytes]]:
    """The plain identity headers of ``principal`` (module docstring)."""
    user = principal.username or f"client:{principal.client_id}"
    out = [
        (b"x-govgate-user", header_value(user)),
        (b"x-govgate-department", header_value(principal.department or "")),
        (b"x-govgate-roles", header_value(",".join(sorted(principal.roles)))),
    ]
    name = getattr(principal, "name", None)
    if name:
        out.append((b"x-govgate-name", header_value(name)))
    if principal.client_id:
        out.append((b"x-govgate-client", header_value(principal.client_id)))
    delegate = getattr(principal, "delegate", None)
    if delegate:
        out.append((b"x-govgate-acting-user", header_value(delegate)))
    if remote_user and principal.username:
        out.append((b"remote-user", header_value(principal.username)))
    return out
