"""Header hygiene between the client and the upstream.

RFC 9110 section 7.6.1 (hop-by-hop fields: ``Connection`` and the fields it
names, never forwarded) and RFC 7239 / the de-facto ``X-Forwarded-*`` fields
(set only by the gateway). Identity headers a client sends are dropped, in
every spelling a framework might map to the same name (case, ``_`` for
``-``): the upstream learns who calls only from ``X-Govgate-Assertion``.

Headers an edge proxy sets for the systems behind it (the client certificate it
verified, the user it authenticated, the client's address) are dropped by family,
by prefix or by a fragment of the name (:data:`SPOOFABLE_PREFIXES`,
:data:`SPOOFABLE_INFIXES`): an upstream that trusts one of them because its own
nginx, IIS, Kong, Authelia or cloud load balancer used to set it would otherwise
take a client's word for "verified, CN=admin". docs/proxy.md lists them.

A system may also name the only client headers it receives (``forward_headers``
in the state file): then every other client header is dropped too, except
:data:`ALWAYS_FORWARDED`, without which a body cannot be read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from gateway.proxy.redirect import REWRITTEN, rewrite_refresh, rewrite_url

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
# met by the gateway's own server (it answers 100 Continue as the proxy starts reading
# the body) and never the upstream's to meet: the body is sent at once, often already
# read whole (a shaped or form POST), and an upstream refusing the expectation (417)
# would refuse a request whose body it was about to get
ANSWERED_HERE = frozenset({"expect"})
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
# Families of headers that edge proxies set for the systems behind them, dropped by
# prefix: anything whose (normalised) name starts with one of these. Broad on purpose
# (a new member of a family is dropped before anyone lists it); the price is that a
# harmless header of the same spelling (X-Client-Version, X-Auth-Token) is dropped
# too. The gateway terminates TLS and authenticates: none of these can come from it.
SPOOFABLE_PREFIXES = (
    # the client certificate and TLS session a TLS-terminating proxy verified
    "client-cert",  # RFC 9440 Client-Cert, Client-Cert-Chain
    "x-client-",  # X-Client-Cert, -Certificate, -Verify, -S-DN, -I-DN, -IP, ...
    "x-ssl-", "ssl-",  # X-SSL-Client-Verify, -S-DN, X-SSL-Cert; SSL-Client-Cert, -Verify
    "x-tls-", "tls-",  # X-Tls-Client-Cert, ...
    "x-arr-",  # IIS Application Request Routing: X-ARR-ClientCert, X-ARR-SSL
    "x-amzn-mtls-",  # AWS ALB mutual TLS: X-Amzn-Mtls-Clientcert, ...
    # the user an authenticating proxy signed in
    "x-auth-", "auth-",  # X-Auth-User, X-Auth-Request-*, X-Auth-Token; Auth-User
    "x-authenticated-",  # X-Authenticated-User, -Userid, -Groups, -Scope
    "x-proxy-user",  # X-Proxy-User, X-Proxy-User-*
    "x-credential-", "x-consumer-", "x-anonymous-",  # Kong: X-Credential-Username, ...
    "x-ms-client-principal", "x-ms-token-",  # Azure App Service authentication
    "x-amzn-oidc-",  # AWS ALB: X-Amzn-Oidc-Identity, -Data, -Accesstoken
    "cf-access-",  # Cloudflare Access: Cf-Access-Authenticated-User-Email, -Jwt-Assertion
    "x-goog-authenticated-", "x-goog-iap-",  # Google IAP
    "x-pomerium-",  # Pomerium: X-Pomerium-Jwt-Assertion, X-Pomerium-Claim-*
    "remote-", "x-remote-",  # Remote-User, Authelia's Remote-Groups, -Email, -Name
    "oidc-",  # mod_auth_openidc's OIDC_CLAIM_* (any name with "_" is dropped anyway)
    "x-jwt-",  # WSO2: X-JWT-Assertion
    # Envoy sidecars believe x-envoy-* (external address, internal, retries, timeouts)
    "x-envoy-",
)
# the client's address under names other than X-Forwarded-For: any name containing
# one of these (X-Client-IP, True-Client-IP, X-Cluster-Client-IP, Fastly-Client-IP,
# Client-IP, Cf-Connecting-IP, X-Originating-IP, X-Real-IP)
SPOOFABLE_INFIXES = ("client-ip", "connecting-ip", "originating-ip", "real-ip")
# in allow-list mode (a system's forward_headers), the client headers that pass
# besides the named ones: without them the body the upstream receives cannot be read.
# Content-Length and Transfer-Encoding are not among them: the upstream client sets
# the framing of what it actually forwards.
ALWAYS_FORWARDED = frozenset({"content-type", "content-encoding"})
# on a shaped request (the catalogue cuts, masks or encrypts the answer for this caller):
# the upstream must answer the whole representation, unencoded, unconditionally. A
# range would be a raw slice of it; a validator matched against the raw body's ETag or
# date (304 / 412 against 200) tells the caller something about items it is not
# granted (an ETag that hashes the body makes a guess at a cut item checkable); an
# encoding the gateway cannot read would only be refused
SHAPED_DROP = frozenset({
    "range", "if-range", "if-match", "if-none-match", "if-modified-since",
    "if-unmodified-since", "accept-encoding",
})
IDENTITY_ONLY = (b"accept-encoding", b"identity")  # RFC 9110 12.5.3: no header = any coding
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
        self._response_kinds: dict[bytes, tuple[bytes, str, str]] = {}

    def is_identity(self, name: str) -> bool:
        """Whether ``name`` says who the caller is, which certificate it showed or which
        address it has (the families above, and the operator's ``proxy_strip_headers``)."""
        n = _norm(name)
        return (n in IDENTITY_EXACT or n.startswith(IDENTITY_PREFIXES)
                or n.startswith(SPOOFABLE_PREFIXES)
                or any(part in n for part in SPOOFABLE_INFIXES) or n in self.extra)

    def request_headers(
        self, raw: Sequence[tuple[bytes, bytes]], *, allow: frozenset[bytes] | None = None,
        shaped: bool = False,
    ) -> tuple[list[tuple[bytes, bytes]], str | None]:
        """Client headers to forward (as bytes), and the client's Host; everything else
        dropped. ``allow`` (a system's ``forward_headers``, lower-case names): only
        those and :data:`ALWAYS_FORWARDED` may pass, and still none this policy drops.
        ``shaped``: none of :data:`SHAPED_DROP` either, and ``Accept-Encoding: identity``."""
        connection_named: set[str] = set()
        for k, v in raw:
            if len(k) == 10 and k.lower() == b"connection":  # the length first: cheaper
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
            if shaped and _norm(k.decode("latin-1")) in SHAPED_DROP:
                continue
            if allow is not None and k not in allow and k not in _ALWAYS_B:
                lower = k.lower()
                if lower not in allow and lower not in _ALWAYS_B:
                    continue
            if verdict is _COOKIE:
                value = strip_gateway_cookies(v.decode("latin-1"))
                if value:
                    out.append((k, value.encode("latin-1")))
            else:
                out.append((k, v))
        if shaped:
            out.append(IDENTITY_ONLY)
        return out, host

    def _verdict(self, raw_name: bytes) -> str:
        name = raw_name.decode("latin-1")
        n = _norm(name)
        if n == "host":
            return _HOST
        if (n in HOP_BY_HOP or n in GATEWAY_SET or n in METHOD_OVERRIDE or n in PATH_OVERRIDE
                or n in ANSWERED_HERE or n in FORWARDING_EXTRA or n.startswith(FORWARDING_PREFIX)
                or self.is_identity(name) or "_" in name):
            return _DROP
        return _COOKIE if n == "cookie" else _KEEP

    def response_headers(
        self, raw: Iterable[tuple[bytes, bytes]], *, system: str, base: str = "",
        upstream: str | None = None,
    ) -> list[tuple[bytes, bytes]]:
        """Upstream response headers to pass back: no hop-by-hop, no gateway cookies, and
        every other cookie scoped to ``/s/{system}/`` (:func:`scope_set_cookie`; ``base``
        is the upstream address's own path, e.g. ``/legacy/app``); ``Location``,
        ``Content-Location`` and ``Refresh`` pointing at ``upstream`` (the system's
        address) pointing at the gateway instead (gateway.proxy.redirect); no ``Date``
        (the gateway's server sends its own, and a response carries one); one
        ``Cache-Control`` that no shared cache may keep the answer under
        (:func:`private_cache_control`), and nothing a front proxy obeys
        (:data:`_FRONT_CONTROL`)."""
        raw = list(raw)
        connection_named: set[str] = set()
        for k, v in raw:
            if len(k) == 10 and k.lower() == b"connection":  # the length first: cheaper
                connection_named.update(_norm(t) for t in v.decode("latin-1").split(","))
        out = []
        cache: list[bytes] = []
        kinds = self._response_kinds
        for k, v in raw:
            found = kinds.get(k)
            if found is None:
                found = _response_kind(k)
                if len(kinds) < 4096:  # names are few; a flood of odd ones is not cached
                    kinds[k] = found
            lower, n, kind = found
            if kind is _DROP or (connection_named and n in connection_named):
                continue
            if kind is _CACHE:
                cache.append(v)
                continue
            if kind is _REWRITE and upstream is not None:
                value = v.decode("latin-1")
                new = (rewrite_refresh if n == "refresh" else rewrite_url)(
                    value, system, upstream)
                if new is not value:
                    v = new.encode("latin-1")
            # a cookie with an empty name ("=gg_session=x", or no "=" at all) goes back
            # from the browser as its bare value, "gg_session=x" (RFC 6265bis 5.8.3)
            elif kind is _COOKIE:
                value = v.decode("latin-1")
                if value.lstrip(" \t=").lower().startswith(GATEWAY_COOKIE_PREFIXES):
                    continue
                scoped = scope_set_cookie(value, system, base)
                if scoped is None:
                    continue
                v = scoped.encode("latin-1")
            out.append((lower, v))
        out.append((b"cache-control", private_cache_control(cache)))
        return out


_REWRITE, _CACHE = "rewrite", "cache"
# what would let a cache shared between callers keep an answer (RFC 9111 5.2.2.9,
# 5.2.2.10): every answer is one caller's, given after the gateway decided for them
_SHARED_DIRECTIVES = frozenset({"public", "s-maxage"})


def private_cache_control(values: list[bytes]) -> bytes:
    """The upstream's ``Cache-Control`` (all its fields) for this caller alone: its own
    directives kept (a browser may still cache), none for shared caches, ``private``
    unless it says ``no-store``."""
    kept = []
    for value in values:
        for directive in value.split(b","):
            directive = directive.strip()
            name = directive.partition(b"=")[0].strip().lower()
            if directive and name.decode("latin-1") not in _SHARED_DIRECTIVES:
                kept.append(directive)
    # bare only: ``private="Set-Cookie"`` (RFC 9111 5.2.2.7) lets a shared cache keep
    # the answer without the fields it names
    bare = {d.lower() for d in kept}
    if b"private" not in bare and b"no-store" not in bare:
        kept.insert(0, b"private")
    return b", ".join(kept)


def _response_kind(raw_name: bytes) -> tuple[bytes, str, str]:
    """What ``response_headers`` does with a response header name, whatever the
    response: (its lower-case bytes, its normalised name, drop / rewrite / cookie /
    keep). Decided once per spelling."""
    n = _norm(raw_name.decode("latin-1"))
    if n in HOP_BY_HOP or n in _RESPONSE_DROP or n.startswith(_FRONT_CONTROL):
        kind = _DROP
    elif n == "cache-control":
        kind = _CACHE
    elif n in REWRITTEN or n == "refresh":
        kind = _REWRITE
    elif n == "set-cookie":
        kind = _COOKIE
    else:
        kind = _KEEP
    return raw_name.lower(), n, kind


# from the upstream's response: the gateway sets its own request id, and its server
# its own Date (RFC 9110 6.6.1: one; nginx does the same)
_RESPONSE_DROP = frozenset({"x-request-id", "date"})
# fields a front proxy obeys from the answers it passes, above the answer's own
# Cache-Control: a cache lifetime for CDNs (RFC 9213 CDN-Cache-Control, Surrogate-
# Control), nginx's X-Accel-Expires and its internal redirect X-Accel-Redirect (any
# location of the front, ``internal`` ones too), a file to send (X-Sendfile). An
# upstream speaks to the gateway, never past it to the proxy in front
_FRONT_CONTROL = ("cdn-cache-control", "surrogate-control", "x-accel-", "x-sendfile",
                  "x-lighttpd-send-file", "x-litespeed-")
_ALWAYS_B = frozenset(n.encode("ascii") for n in ALWAYS_FORWARDED)
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^`|~-]+")


def forward_header_problems(names: object) -> list[str]:
    """What is wrong with a system's ``forward_headers`` (empty when nothing): a list
    of header names, none of which the gateway drops anyway (naming one would read as
    if it passed)."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return ["forward_headers must be a list of header names"]
    problems = []
    policy = HeaderPolicy()
    for name in names:
        if not _TOKEN.fullmatch(name) or "_" in name:
            problems.append(f"forward_headers: {name!r} is not a header name")
        elif policy._verdict(name.encode("latin-1")) in (_DROP, _HOST):
            problems.append(f"forward_headers: {name} is never forwarded (see docs/proxy.md)")
    return problems


def normalise_forward_headers(names: Iterable[str]) -> list[str]:
    """``forward_headers`` as stored: lower case, sorted, each once."""
    return sorted({n.strip().lower() for n in names})


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
