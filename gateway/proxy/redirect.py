"""Upstream URLs in response headers, rewritten to the gateway (as nginx's
``proxy_redirect default`` does for ``Location`` and ``Refresh``).

An upstream knows itself by its own address, so its redirects name it: behind the
gateway ``GET /s/vehicles/api/vehicles/`` came back as ``307 Location:
http://127.0.0.1:9101/api/vehicles``, which tells the client where the upstream
listens and sends it there, past the gateway. ``Location``, ``Content-Location``
(RFC 9110 sections 10.2.2 and 8.7) and the URL of ``Refresh`` are rewritten when
they point at the system's upstream: same scheme, host and port (default ports
counted), path the upstream address's base path or below it. They become a path
on the gateway: ``http://127.0.0.1:9101/api/vehicles?x=1`` → ``/s/vehicles/api/vehicles?x=1``;
with the upstream ``http://10.0.0.5:8080/legacy/app``, ``http://10.0.0.5:8080/legacy/app/r``
→ ``/s/{system}/r`` and the base itself → ``/s/{system}/``. A network-path
reference (``//127.0.0.1:9101/x``) naming the upstream is rewritten too; browsers
read ``\\`` as ``/`` and skip tabs and newlines in such URLs, and so does the match.

An absolute-path reference (``/api/vehicles/``, Express's and many frameworks'
trailing-slash and login redirects) is the upstream's own path too: the client
resolves it against the gateway's origin, outside ``/s/{system}/`` (the gateway's own
``/api/...``). It is read as the upstream's origin followed by that path and rewritten
under the same rules (``/api/vehicles/`` → ``/s/vehicles/api/vehicles/``; under a base
path only a path below it), as nginx's ``proxy_redirect / /s/{system}/`` does. One
already under ``/s/{system}/`` is left alone: the upstream knows where the gateway
serves it.

Everything else passes unchanged, as with nginx: absolute URLs of other origins
(another scheme, host or port, or a path outside the base path), and relative
references (``x``, ``../x``, ``?q``), which the client resolves against the gateway
URL it asked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

REWRITTEN = frozenset({"location", "content-location"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _endpoint(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, rest) of an absolute URL, ``rest`` the raw path, query and
    fragment; None when it is not one or its port is bad."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not parts.netloc or scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    rest = url.split("//", 1)[1]
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0),
              default=len(rest))
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme], rest[cut:]


def _origin(upstream: str) -> str:
    """``scheme://host[:port]`` of the upstream address ``scheme://host[:port][/base]``."""
    scheme, _, rest = upstream.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


def rewrite_url(value: str, system: str, upstream: str) -> str:
    """``value`` on the gateway (``/s/{system}/...``) if it points at ``upstream``
    (``scheme://host[:port][/base]``), else ``value`` unchanged."""
    probe = value.strip(" \t").replace("\\", "/")
    probe = probe.replace("\t", "").replace("\n", "").replace("\r", "")
    if probe.startswith("//"):
        probe = upstream.split(":", 1)[0] + ":" + probe
    elif probe.startswith("/"):
        if probe == f"/s/{system}" or probe.startswith(f"/s/{system}/"):
            return value  # an upstream that knows the gateway's path for it
        # absolute-path: the upstream's own path, which the client would resolve
        # against the gateway's origin, outside /s/{system}/
        probe = _origin(upstream) + probe
    if "//" not in probe:
        return value  # relative: the client resolves it against the gateway URL
    target = _endpoint(probe)
    origin = _endpoint(upstream)
    if target is None or origin is None or target[:3] != origin[:3]:
        return value
    base = origin[3].split("?", 1)[0].split("#", 1)[0].rstrip("/")
    rest = target[3]
    path_end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    path, tail = rest[:path_end], rest[path_end:]
    if base:
        if path != base and not path.startswith(base + "/"):
            return value  # outside the system's base path: not this system
        path = path[len(base):]
    return f"/s/{system}{path or '/'}{tail}"


def rewrite_refresh(value: str, system: str, upstream: str) -> str:
    """``Refresh: 5; url=...`` with its URL rewritten as :func:`rewrite_url` does."""
    at = value.lower().find("url=")
    if at < 0:
        return value
    url = value[at + 4:]
    quote = url[:1] if url[:1] in ("'", '"') else ""
    inner = url[1:].split(quote, 1)[0] if quote else url
    new = rewrite_url(inner, system, upstream)
    if new == inner:
        return value
    return value[:at + 4] + (quote + new + quote + url[len(inner) + 2:] if quote else new)
