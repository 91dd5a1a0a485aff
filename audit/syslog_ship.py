"""Shipping to a syslog receiver (a SIEM, rsyslog, syslog-ng): RFC 5424 messages
(:mod:`audit.syslog_message`) over TCP or TLS (RFC 5425), at least once.

    ship_syslog(engine, target)   send what the receiver has not accepted, then advance

A round reads the records above the target's watermarks (:mod:`audit.ship_marks`,
chain by chain in ``seq`` order), opens one connection, writes them, and then closes
its sending side and waits for the receiver to close too. A syslog receiver closes
after it has read everything up to the end of the stream, so that close is the
receiver's word that it took every byte; a reset, a timeout or any other error on the
way means no such word, and the watermarks stay where they were: the next round sends
the same records again (at least once; the receiver drops repeats by ``id``). RFC 5425
has no acknowledgement of its own: what the receiver does after it accepted a message
(its queue, its disk) is its business (rsyslog: a disk-assisted queue).

TLS is the standard library's ``ssl``: TLS 1.2 at least, the receiver's certificate
checked against the CA file (the system's CAs without one) and its name against the
target's host; a client certificate when the receiver asks for one.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from audit.errors import ShipError
from audit.query import row_dict
from audit.ship_marks import advance, chain_heads, read_marks
from audit.syslog_message import DOCUMENTATION_PEN, FACILITIES, frame, message
from audit.tables import records
from texts import Text

TARGET = "syslog"  # the watermarks' name: one syslog receiver, wherever it moves
BATCH = 500  # records per query
CONNECT_SECONDS = 5.0
IO_SECONDS = 10.0  # the longest a write, or the wait for the receiver's close, may take
# how long a new connection must stay open before anything is sent: a receiver that
# refuses this client (no client certificate it trusts, a sender it does not allow)
# closes at once, and a close after the records would look like their acceptance
PROBE_SECONDS = 0.1


@dataclass(frozen=True)
class SyslogTarget:
    host: str
    port: int
    tls: bool = True
    ca_file: str = ""  # empty: the system's CAs
    cert_file: str = ""  # a client certificate (with key_file), when the receiver asks
    key_file: str = ""
    facility: str = "local0"
    hostname: str = ""  # HOSTNAME of the messages; empty: this host's name
    enterprise: int = DOCUMENTATION_PEN

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class SyslogShipped:
    records: int
    chains: int


def parse_address(value: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; ValueError otherwise."""
    host, sep, port = value.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(value)
    return host, int(port)


def tls_context(target: SyslogTarget) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=target.ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if target.cert_file:
        ctx.load_cert_chain(target.cert_file, target.key_file or None)
    return ctx


def _failed(target: SyslogTarget, reason: str) -> ShipError:
    return ShipError(Text("audit.syslog_failed", "syslog receiver {address}: {reason}",
                          address=target.address, reason=reason))


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{exc.reason}: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return exc.strerror or str(exc) or type(exc).__name__


def _connect(target: SyslogTarget) -> socket.socket:
    sock = socket.create_connection((target.host, target.port), timeout=CONNECT_SECONDS)
    sock.settimeout(IO_SECONDS)
    if not target.tls:
        return sock
    try:
        return tls_context(target).wrap_socket(sock, server_hostname=target.host)
    except BaseException:
        sock.close()
        raise


def _probe(sock: socket.socket) -> None:
    """Raise ConnectionRefusedError when the receiver closes the new connection before
    anything was sent (rsyslog does so to a client whose certificate it refuses)."""
    sock.settimeout(PROBE_SECONDS)
    try:
        if not sock.recv(1):
            raise ConnectionRefusedError("the receiver closed the connection before any "
                                         "record was sent")
    except TimeoutError:
        pass  # quiet and open, as a syslog receiver is
    except ssl.SSLEOFError:
        raise ConnectionRefusedError("the receiver closed the connection before any "
                                     "record was sent") from None
    finally:
        sock.settimeout(IO_SECONDS)


def _await_close(sock: socket.socket) -> None:
    """End our stream (TLS: close_notify) and wait for the receiver's close: a syslog
    receiver closes once it has read everything before our end. rsyslog answers a
    close_notify by closing the TCP connection without one of its own (a "ragged" EOF,
    which is that close here); a reset or a timeout raise."""
    if isinstance(sock, ssl.SSLSocket):
        try:
            sock = sock.unwrap()
        except ssl.SSLEOFError:
            return
    else:
        sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + IO_SECONDS
    while sock.recv(4096):
        if time.monotonic() > deadline:
            raise TimeoutError("the receiver did not close")


def _deliver(target: SyslogTarget, payload: bytes) -> None:
    """Write ``payload`` and see the receiver close after reading it all; ShipError
    (nothing accepted, as far as we can know) otherwise."""
    try:
        sock = _connect(target)
    except OSError as exc:  # ssl.SSLError among them
        raise _failed(target, _reason(exc)) from None
    try:
        _probe(sock)
        sock.sendall(payload)
        _await_close(sock)
    except OSError as exc:  # ssl.SSLError among them
        raise _failed(target, _reason(exc)) from None
    finally:
        sock.close()


def _pending(conn: sa.Connection, shipped: dict[str, int], limit: int
             ) -> tuple[list[Any], dict[str, int]]:
    """Up to ``limit`` records above ``shipped``, chain by chain in seq order, and the
    heads they reach."""
    rows: list[Any] = []
    heads: dict[str, int] = {}
    for chain_id, head in sorted(chain_heads(conn).items()):
        done = shipped.get(chain_id, 0)
        while head > done and len(rows) < limit:
            batch = conn.execute(
                sa.select(records).where(records.c.chain_id == chain_id, records.c.seq > done)
                .order_by(records.c.seq).limit(min(BATCH, limit - len(rows)))).fetchall()
            if not batch:
                break
            rows += batch
            done = heads[chain_id] = int(batch[-1].seq)
        if len(rows) >= limit:
            break
    return rows, heads


def ship_syslog(engine: sa.Engine, target: SyslogTarget, *, limit: int = 2000
                ) -> SyslogShipped:
    """Send up to ``limit`` records the receiver has not accepted; the watermarks move
    only once it has. ShipError (naming the receiver) when it cannot be reached, the
    TLS handshake fails or it does not take the records."""
    with engine.connect() as conn:
        rows, heads = _pending(conn, read_marks(conn, TARGET), limit)
    if not rows:
        return SyslogShipped(0, 0)
    facility = FACILITIES[target.facility]
    hostname = target.hostname or socket.gethostname()
    procid = str(os.getpid())
    payload = b"".join(frame(message(row_dict(r), facility=facility, hostname=hostname,
                                     procid=procid, enterprise=target.enterprise))
                       for r in rows)
    _deliver(target, payload)
    advance(engine, TARGET, heads, int(time.time() * 1000))
    return SyslogShipped(len(rows), len(heads))
