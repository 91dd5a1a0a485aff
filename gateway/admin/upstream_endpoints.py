"""Where a system's upstream address connects, so that a department's system
administrator cannot register another department's upstream as a system of their own.

The proxy carries a system's callers to its ``upstream`` under that system's policy
lines and catalogue. A system trusting the gateway's plain identity headers, or only
its network ("nobody but the gateway reaches it", docs/proxy.md), answers whatever
the gateway sends; had nn-jgsw's admin registered jgswj's vehicles address as an
nn-jgsw system, nn-jgsw's security admin could open it to nn-jgsw's staff, who would
read jgswj's records whole, past jgswj's lines and grants.

Two addresses are one endpoint when their ports are equal and their hosts connect to
a common address: as spelled (letters folded), every address the resolver gives
(``localhost``, ``2130706433``, ``0x7f000001``, ``127.1``), an IPv4-mapped IPv6
address as its IPv4, and every loopback or unspecified address as one (a server on
``0.0.0.0`` answers ``127.0.0.2``; a connection to ``0.0.0.0`` reaches this host).
What it cannot see: the host's other interfaces under their own addresses, a name
that resolves elsewhere at check time and here later (only the upstream's own check
of the assertion's ``aud``, or mTLS, tells systems apart there).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

_PORTS = {"http": 80, "https": 443}
_THIS_HOST = "this-host"  # loopback and unspecified addresses: all this machine


def _address(text: str) -> str:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return _THIS_HOST if ip.is_loopback or ip.is_unspecified else str(ip)


def endpoint(url: str, resolved: dict[str, frozenset[str]] | None = None
             ) -> tuple[int, frozenset[str]] | None:
    """The port and the addresses ``url`` connects to; None for no http(s) URL.
    ``resolved`` remembers lookups across calls (one check, many systems)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.scheme not in _PORTS:
        return None
    port = port or _PORTS[parts.scheme]
    cache = {} if resolved is None else resolved
    if host not in cache:
        found = {_address(host)}
        if host == "localhost" or host.endswith(".localhost"):
            found.add(_THIS_HOST)
        # unresolvable now: compared as spelled
        with contextlib.suppress(OSError, UnicodeError, ValueError):
            found |= {_address(str(info[4][0])) for info in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM)}
        cache[host] = frozenset(found)
    return port, cache[host]


def shared(url: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` that is the same endpoint as ``url``, or None."""
    resolved: dict[str, frozenset[str]] = {}
    mine = endpoint(url, resolved)
    if mine is None:
        return None
    for other in others:
        theirs = endpoint(other, resolved)
        if theirs is not None and theirs[0] == mine[0] and theirs[1] & mine[1]:
            return other
    return None
