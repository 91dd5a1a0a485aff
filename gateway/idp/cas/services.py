"""Which service URLs may receive a CAS ticket: pure checks, no I/O.

A system registers its services in the state file::

    systems: [{code: office, ..., cas_services: ["https://office.example/app/*",
                                                 "https://office.example/cb"]}]

| pattern | matches |
| --- | --- |
| ``https://x.example/cb`` | that URL, letter for letter (a query string too) |
| ``https://x.example/app/*`` | every URL starting with ``https://x.example/app/`` |

A ``*`` is allowed only at the end, right after a ``/`` of the path, so a prefix
never ends inside a host name or a path segment (``https://x.example*`` would match
``https://x.example.evil.test``). There is no open pattern. Registered URLs are
https, or http on a loopback host. A requested service is refused before any match
when it is not a plain absolute URL: control characters, spaces, backslashes,
non-ASCII, user information, a fragment, or a ``.``/``..`` path segment (which a
browser would resolve out of a registered prefix).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

from texts import Text

MAX_SERVICE_LENGTH = 2048
MAX_SERVICES = 50
_PLAIN = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_problem(url: object) -> str | None:
    """Why ``url`` cannot be a CAS service URL, or None."""
    if not isinstance(url, str) or not url:
        return Text("cas.url_empty", "must be a non-empty URL")
    if len(url) > MAX_SERVICE_LENGTH:
        return Text("cas.url_long", "longer than {n} characters", n=MAX_SERVICE_LENGTH)
    if not _PLAIN.fullmatch(url) or "\\" in url:
        return Text("cas.url_chars", "holds spaces, control characters, backslashes or non-ASCII")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return Text("cas.url_bad", "is not a URL")
    if parts.scheme not in ("https", "http") or not host:
        return Text("cas.url_absolute", "must be an absolute http(s) URL")
    if parts.scheme == "http" and not _loopback(host):
        return Text("cas.url_https", "must be https (http only on a loopback host)")
    if "@" in parts.netloc:
        return Text("cas.url_userinfo", "must not hold user information")
    if parts.fragment or "#" in url:
        return Text("cas.url_fragment", "must not hold a fragment")
    if any(unquote(seg) in (".", "..") for seg in parts.path.split("/")):
        return Text("cas.url_dots", "must not hold . or .. path segments")
    return None


def pattern_problem(pattern: object) -> str | None:
    """Why ``pattern`` cannot be registered, or None."""
    if isinstance(pattern, str) and pattern.endswith("*"):
        prefix = pattern[:-1]
        if "*" in prefix:
            return Text("cas.star_end", "a * only at the end")
        if not prefix.endswith("/") or not urlsplit(prefix).path.startswith("/"):
            return Text("cas.star_slash", "a * only right after a / of the path (https://host/path/*)")
        if urlsplit(prefix).query:
            return Text("cas.star_query", "a * only in the path, not in the query")
        return url_problem(prefix)
    if isinstance(pattern, str) and "*" in pattern:
        return Text("cas.star_end", "a * only at the end")
    return url_problem(pattern)


def list_problems(value: object) -> list[str]:
    """The state file's ``cas_services``: a list of registrable patterns."""
    if not isinstance(value, list) or not value:
        return [Text("cas.services_list", "cas_services must be a non-empty list of service URLs")]
    if len(value) > MAX_SERVICES:
        return [Text("cas.services_many", "cas_services: at most {n} entries", n=MAX_SERVICES)]
    out: list[str] = []
    for i, pattern in enumerate(value):
        if problem := pattern_problem(pattern):
            out.append(Text("cas.service_bad", "cas_services[{i}] {pattern!r}: {problem}", i=i,
                            pattern=str(pattern)[:100], problem=problem))
    return out


def matches(pattern: str, service: str) -> bool:
    if pattern.endswith("*"):
        return service.startswith(pattern[:-1])
    return service == pattern


def match(registered: Mapping[str, Iterable[str]], service: str) -> str | None:
    """The system whose registered pattern matches ``service`` (the longest pattern
    wins), or None; None too for a service that is no plain URL."""
    if url_problem(service) is not None:
        return None
    best: tuple[int, str] | None = None
    for system, patterns in registered.items():
        for pattern in patterns:
            if matches(pattern, service) and (best is None or len(pattern) > best[0]):
                best = (len(pattern), system)
    return best[1] if best else None


def overlap(a: str, b: str) -> bool:
    """Whether some service URL matches both registered patterns ``a`` and ``b``:
    one of them is the other, or a prefix (``.../*``) the other lies in."""
    pa, pb = (p[:-1] if p.endswith("*") else None for p in (a, b))
    if pa is not None and pb is not None:
        return pa.startswith(pb) or pb.startswith(pa)
    if pa is not None:
        return b.startswith(pa)
    if pb is not None:
        return a.startswith(pb)
    return a == b


def launch_url(patterns: Iterable[str]) -> str | None:
    """The service the portal launcher opens: the first registered pattern, its
    ``*`` dropped (a prefix ``https://x/app/*`` opens ``https://x/app/``)."""
    for pattern in patterns:
        return pattern[:-1] if pattern.endswith("*") else pattern
    return None
