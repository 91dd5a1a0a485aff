"""Header hygiene between the client and the upstream.

RFC 9110 section 7.6.1 (hop-by-hop fields: ``Connection`` and the fields it
names, never forwarded) and RFC 7239 / the de-facto ``X-Forwarded-*`` fields
(set only by the gateway). Identity headers a client sends are dropped, in
every spelling a framework might map to the same name (case, ``_`` for
``-``): the upstream learns who calls only from ``X-Govgate-Assertion``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
# set by the gateway only: a client's copy is dropped
GATEWAY_SET = frozenset({
    "host", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
    "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "x-request-id",
    "authorization",  # the client's credential for the gateway, never the upstream's
    "content-length",  # re-set from what is actually forwarded
})
IDENTITY_EXACT = frozenset({
    "x-forwarded-user", "x-forwarded-email", "x-forwarded-preferred-username",
    "x-forwarded-groups", "x-forwarded-access-token", "x-remote-user", "remote-user",
    "x-remote-group", "x-remote-email", "x-client-cert", "x-ssl-client-cert",
    "x-ssl-client-dn", "x-client-dn",
})
# the client's word on the gateway's host, scheme or port, under names frameworks read
# besides X-Forwarded-* (every one of which is dropped: X-Forwarded-Server, -Ssl,
# -Scheme, ...): an upstream building absolute URLs from them would build the client's
FORWARDING_EXTRA = frozenset({"x-original-host", "x-host", "x-url-scheme", "front-end-https"})
FORWARDING_PREFIX = "x-forwarded-"
# a method other than the request's, honoured by some upstream frameworks: the decision
# was made on the request's own method, so the upstream never sees another
METHOD_OVERRIDE = frozenset({"x-http-method-override", "x-http-method", "x-method-override"})
# likewise a path other than the request's (IIS URL Rewrite, Zend, Symfony before 2.7.49
# / CVE-2018-14773): the decision was made on the request's own path
PATH_OVERRIDE = frozenset({"x-original-url", "x-rewrite-url"})
IDENTITY_PREFIXES = ("x-auth-request-", "x-user", "x-govgate-", "x-webauth-", "x-remote-")
# cookies of the gateway's own session: never shown to an upstream
GATEWAY_COOKIE_PREFIXES = (
    "gg_", "govgate", "__host-gg_", "__secure-gg_", "__host-govgate", "__secure-govgate",
)


_KEEP, _DROP, _HOST, _COOKIE = "keep", "drop", "host", "cookie"


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-")


class HeaderPolicy:
    """Which request and response headers cross the gateway."""

    def __init__(self, extra_strip: Iterable[str] = ()) -> None:
        self.extra = frozenset(_norm(n) for n in extra_strip)
        # what to do with a header name, decided once per spelling
        self._verdicts: dict[bytes, str] = {}

    def is_identity(self, name: str) -> bool:
        n = _norm(name)
        return n in IDENTITY_EXACT or n.startswith(IDENTITY_PREFIXES) or n in self.extra

    def request_headers(
        self, raw: Sequence[tuple[bytes, bytes]]
    ) -> tuple[list[tuple[bytes, bytes]], str | None]:
        """Client headers to forward (as bytes), and the client's Host; everything else
        dropped."""
        connection_named: set[str] = set()
        for k, v in raw:
            if k.lower() == b"connection":
                connection_named.update(_norm(t) for t in v.decode("latin-1").split(","))
        out: list[tuple[bytes, bytes]] = []
        host = None
        verdicts = self._verdicts
        for k, v in raw:
            verdict = verdicts.get(k)
            if verdict is None:
                verdict = self._verdict(k)
                if len(verdicts) < 4096:  # names are few; a flood of odd ones is not cached
                    verdicts[k] = verdict
            if verdict is _DROP:
                continue
            if verdict is _HOST:
                host = v.decode("latin-1")
                continue
            if connection_named and _norm(k.decode("latin-1")) in connection_named:
                continue
            if verdict is _COOKIE:
                value = strip_gateway_cookies(v.decode("latin-1"))
                if value:
                    out.append((k, value.encode("latin-1")))
            else:
                out.append((k, v))
        return out, host

    def _verdict(self, raw_name: bytes) -> str:
        name = raw_name.decode("latin-1")
        n = _norm(name)
        if n == "host":
            return _HOST
        if (n in HOP_BY_HOP or n in GATEWAY_SET or n in METHOD_OVERRIDE or n in PATH_OVERRIDE
                or n in FORWARDING_EXTRA or n.startswith(FORWARDING_PREFIX)
                or self.is_identity(name) or "_" in name):
            return _DROP
        return _COOKIE if n == "cookie" else _KEEP

    def response_headers(
        self, raw: Iterable[tuple[bytes, bytes]], *, system: str, base: str = ""
    ) -> list[tuple[bytes, bytes]]:
        """Upstream response headers to pass back: no hop-by-hop, no gateway cookies, and
        every other cookie scoped to ``/s/{system}/`` (:func:`scope_set_cookie`; ``base``
        is the upstream address's own path, e.g. ``/legacy/app``)."""
        raw = list(raw)
        connection_named: set[str] = set()
        for k, v in raw:
            if k.lower() == b"connection":
                connection_named.update(_norm(t) for t in v.decode("latin-1").split(","))
        out = []
        for k, v in raw:
            n = _norm(k.decode("latin-1"))
            if n in HOP_BY_HOP or n in connection_named or n == "x-request-id":
                continue
            # a cookie with an empty name ("=gg_session=x", or no "=" at all) goes back
            # from the browser as its bare value, "gg_session=x" (RFC 6265bis 5.8.3)
            if n == "set-cookie":
                value = v.decode("latin-1")
                if value.lstrip(" \t=").lower().startswith(GATEWAY_COOKIE_PREFIXES):
                    continue
                scoped = scope_set_cookie(value, system, base)
                if scoped is None:
                    continue
                v = scoped.encode("latin-1")
            out.append((k.lower(), v))
        return out


def scope_set_cookie(value: str, system: str, base: str = "") -> str | None:
    """An upstream's ``Set-Cookie`` confined to ``/s/{system}/``, or None to drop it.

    Every system is served on the gateway's one origin, so a cookie an upstream sets
    for ``Path=/`` (or for its own domain) would reach every other upstream (and the
    gateway). The cookie keeps its name, value and other attributes; every ``Domain``
    attribute goes (a host-only cookie of the gateway's host), and every ``Path`` is
    replaced by one under ``/s/{system}``: the upstream's ``/x`` (below ``base``, the
    upstream address's own path, if it has one) becomes ``/s/{system}/x``; no path,
    ``/``, a path not starting with ``/`` or one outside ``base`` becomes
    ``/s/{system}/``. A browser takes the last ``Path`` and ``Domain``, so all of
    them are removed, not just the first. A ``__Host-`` cookie must have ``Path=/``
    (RFC 6265bis section 4.1.3.2): it cannot be confined, and is dropped."""
    if value.lstrip(" \t=").lower().startswith("__host-"):
        return None
    pair, *attributes = value.split(";")
    path: str | None = None
    kept = [pair.strip(" \t")]
    for attribute in attributes:
        name, _, attr_value = attribute.partition("=")
        name = name.strip(" \t").lower()
        if name == "path":
            path = attr_value.strip(" \t")
        elif name != "domain" and attribute.strip(" \t"):
            kept.append(attribute.strip(" \t"))
    kept.append(f"Path={cookie_path(path, system, base)}")
    return "; ".join(kept)


def cookie_path(path: str | None, system: str, base: str = "") -> str:
    """The gateway path that serves the upstream path ``path`` of ``system`` (see
    :func:`scope_set_cookie`); always ``/s/{system}/`` or below."""
    root = f"/s/{system}"
    if not path or not path.startswith("/"):
        return root + "/"
    if base:
        if path != base and not path.startswith(base + "/"):
            return root + "/"
        path = path[len(base):] or "/"
    return root + path


def strip_gateway_cookies(value: str) -> str:
    kept = []
    for part in value.split(";"):
        name = part.split("=", 1)[0].strip().lower()
        if not name or name.startswith(GATEWAY_COOKIE_PREFIXES):
            continue
        kept.append(part.strip())
    return "; ".join(kept)
