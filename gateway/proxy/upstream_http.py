"""A lean pooled HTTP/1.1 client for the proxy's upstream leg.

aiohttp's client was a large share of the proxy's CPU, most of it generality the
proxy never uses. This one does only what a reverse proxy needs: one request at
a time per keep-alive connection, an ``asyncio.Protocol`` fed straight into
httptools (llhttp), bytes in and bytes out. It never adds headers beyond Host
and body framing, never decompresses, never follows redirects, keeps no cookies.

Usage::

    resp = await client.request("GET", origin, b"/path?q", headers)
    try:
        async for chunk in resp.iter_chunks(): ...
    finally:
        resp.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import httptools

# Reading pauses above this many buffered body bytes; memory per response stays
# bounded by it plus one socket read, whatever the consumer's pace.
_HIGH_WATER = 256 * 1024
# Bodies up to this size go out in the same write as the head (one syscall);
# larger ones are written separately rather than copied.
_COALESCE = 64 * 1024
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# RFC 9110 8.6: a body-carrying method without a body still says so, or some
# servers answer 411.
_WANTS_LENGTH = frozenset({"POST", "PUT", "PATCH"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UpstreamError(Exception):
    """Base of everything this module raises about the upstream."""


class UpstreamConnectError(UpstreamError):
    """Refused, unresolvable, TLS failure, or closed before any response byte
    on a fresh connection."""


class UpstreamConnectTimeout(UpstreamError):
    pass


class UpstreamReadTimeout(UpstreamError):
    """No progress (bytes in, or request bytes accepted) for read_timeout seconds."""


class UpstreamProtocolError(UpstreamError):
    """A malformed response, an oversize header block, or the connection lost
    mid-exchange."""


class UpstreamBodyTooLarge(UpstreamError):
    pass


class UpstreamBodyLengthError(UpstreamError):
    """The streamed request body did not match the content_length announced."""


class _Stale(Exception):
    """The connection died before any response byte: maybe retryable."""

    def __init__(self, wrote: bool, cause: BaseException | None) -> None:
        self.wrote = wrote
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    # how to speak TLS to it (gateway.proxy.upstream_tls.UpstreamTLS: CA, client certificate,
    # floor); None: the default context. Part of the pool's key: connections made
    # with one setting are never reused for another
    tls: Any = None
    host_header: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.scheme not in _DEFAULT_PORTS or not self.host or not 0 < self.port < 65536:
            raise ValueError(f"not an http(s) origin: {self.scheme}://{self.host}:{self.port}")
        name = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != _DEFAULT_PORTS[self.scheme]:
            name = f"{name}:{self.port}"
        object.__setattr__(self, "host_header", name.encode("idna"))

    @classmethod
    def parse(cls, url: str, *, tls: Any = None) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise ValueError(f"not an http(s) URL: {url!r}")
        if (parts.path not in ("", "/") or parts.query or parts.fragment
                or parts.username is not None or parts.password is not None):
            raise ValueError(f"an origin has no path, query, fragment or userinfo: {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        port = parts.port  # raises ValueError itself when malformed
        return cls(scheme, parts.hostname, _DEFAULT_PORTS[scheme] if port is None else port,
                   tls)


class _Conn(asyncio.Protocol):
    """One upstream connection; also the httptools callback target."""

    def __init__(self, client: UpstreamClient, origin: Origin,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.origin = origin
        self.loop = loop
        self.read_timeout = client.read_timeout
        self.max_header_bytes = client.max_header_bytes
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.pooled = False
        self.idle_since = 0.0
        self.read_paused = False
        self.write_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.last = 0.0
        self.peak = 0  # largest body buffer seen: lets tests check backpressure
        self.begin(False)
        self.active = False

    def begin(self, is_head: bool) -> None:
        self.active = True
        self.is_head = is_head
        self.got_bytes = False
        self.head_done = False
        self.complete = False
        self.interim = False
        self.exc: UpstreamError | None = None
        self.must_close = False
        self.until_close = False
        self.keep_alive = False
        self.head_seen = 0
        self.body: list[bytes] = []
        self.buffered = 0
        self._reset_head()

    def _reset_head(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_size = 0
        self.connection = b""
        self.length_header: bytes | None = None
        self.te_header: bytes | None = None
        self.content_length: int | None = None
        self.version = ""

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio's
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:
            # Nothing is owed on an idle connection: whatever this is, the
            # stream is out of step and must not carry the next request.
            self.close()
            return
        self.got_bytes = True
        self.last = self.loop.time()
        if not self.head_done:
            self.head_seen += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            if self.complete:
                self.close()
            else:
                self._fail(UpstreamProtocolError(f"malformed response: {exc}"))
        else:
            if not self.head_done and self.head_seen > self.max_header_bytes:
                self._fail(UpstreamProtocolError("response header block too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.client._forget(self)
        if self.active and not self.complete:
            if self.head_done and self.until_close and exc is None:
                self.complete = True  # the body was delimited by the close itself
            elif self.exc is None:
                what = "mid-response" if self.got_bytes else "before the response"
                err = UpstreamProtocolError(f"the upstream closed the connection {what}")
                err.__cause__ = exc
                self.exc = err
        self.must_close = True
        self._wake()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.last = self.loop.time()
        self._wake()

    # -- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # A second response nobody asked for: stop parsing; the one we
            # have stands, the connection does not.
            raise UpstreamProtocolError("stop")
        self._reset_head()

    def on_status(self, status: bytes) -> None:
        self.reason += status
        self.head_size += len(status)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:
            # a trailer field of a chunked body: llhttp reports it as a header, but
            # it must not join the head (RFC 9110 6.5.1) that went out or was
            # checked already: a trailer Content-Type, Set-Cookie or a data field
            # would pass only when the body came whole with its head
            return
        self.headers.append((name, value))
        self.head_size += len(name) + len(value) + 4
        n = len(name)
        # Only three headers matter for framing; the length test spares a
        # lower() on all the others.
        if n == 10 or n == 14 or n == 17:
            low = name.lower()
            if low == b"connection":
                self.connection += b"," + value.lower()
            elif low == b"content-length":
                self.length_header = value
            elif low == b"transfer-encoding":
                self.te_header = value.lower()
        if self.head_size > self.max_header_bytes:
            self._fail(UpstreamProtocolError("response header block too large"))
            raise UpstreamProtocolError("stop")  # makes httptools abandon the feed

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                self._fail(UpstreamProtocolError("the upstream switched protocols"))
                raise UpstreamProtocolError("stop")
            self.interim = True  # 100 Continue and friends: the real answer follows
            return
        if self.head_size > self.max_header_bytes:
            self._fail(UpstreamProtocolError("response header block too large"))
            raise UpstreamProtocolError("stop")
        self.status = status
        self.version = version = self.parser.get_http_version()
        if version == "1.1":
            keep_alive = b"close" not in self.connection
        else:
            keep_alive = version == "1.0" and b"keep-alive" in self.connection
        if self.is_head or status == 204 or status == 304:
            self.content_length = 0
        elif self.te_header is not None:
            self.until_close = not self.te_header.rstrip().endswith(b"chunked")
        elif self.length_header is not None:
            self.content_length = int(self.length_header)
        else:
            self.until_close = True
        self.keep_alive = keep_alive and not self.until_close
        self.head_done = True
        if self.is_head:
            # llhttp cannot be told the request was HEAD and would wait for
            # Content-Length bytes that never come: end it here, fresh parser
            # for the next exchange.
            self.complete = True
            self.parser = httptools.HttpResponseParser(self)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:
            self.must_close = True  # bytes after a HEAD response: out of step
            return
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER:
            if self.buffered > self.peak:
                self.peak = self.buffered
            if not self.read_paused and self.transport is not None:
                self.read_paused = True
                self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self._wake()

    # -- helpers for the client ---------------------------------------------------

    def _fail(self, exc: UpstreamError) -> None:
        if self.exc is None:
            self.exc = exc
        self.close()
        self._wake()

    def close(self) -> None:
        self.must_close = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the protocol has news; fails the exchange after read_timeout of silence."""
        self.waiter = waiter = self.loop.create_future()
        self.last = self.loop.time()
        if self.timer is None:
            # One timer re-armed lazily rather than one per wait or per read.
            self.timer = self.loop.call_at(self.last + self.read_timeout, self._on_timer)
        try:
            await waiter
        finally:
            self.waiter = None

    def _on_timer(self) -> None:
        self.timer = None
        if self.waiter is None or self.closed:
            return
        due = self.last + self.read_timeout
        if self.loop.time() >= due:
            self._fail(UpstreamReadTimeout(
                f"no data from the upstream for {self.read_timeout:g} s"))
        else:
            self.timer = self.loop.call_at(due, self._on_timer)

    def take(self) -> bytes:
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        self.body = []
        self.buffered = 0
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            self.transport.resume_reading()
        return data


class UpstreamResponse:
    """Status and headers are here once ``request`` returns; the body follows."""

    __slots__ = ("_chunks", "_client", "_conn", "content_length", "headers", "http_version",
                 "reason", "status")

    def __init__(self, client: UpstreamClient, conn: _Conn) -> None:
        self.status = conn.status
        self.reason = conn.reason
        self.headers = conn.headers
        self.content_length = conn.content_length
        self.http_version = conn.version
        self._client = client
        self._chunks: list[bytes] = []
        self._conn: _Conn | None = conn
        if conn.complete:
            # The usual small response arrived whole with its head: hand the
            # connection back now, before the caller even looks at the body.
            self._chunks = conn.body
            conn.body = []
            self._conn = None
            client._release(conn)

    async def _next(self) -> bytes:
        """The next piece of body, b"" at its end."""
        conn = self._conn
        if conn is None:
            chunks = self._chunks
            if not chunks:
                return b""
            self._chunks = []
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        while True:
            if conn.body:
                return conn.take()
            if conn.complete:
                self._conn = None
                self._client._release(conn)
                return b""
            if conn.exc is not None:
                self._conn = None
                conn.close()
                raise conn.exc
            await conn.wait()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        while chunk := await self._next():
            yield chunk

    async def read(self, limit: int) -> bytes:
        if self.content_length is not None and self.content_length > limit:
            self.close()
            raise UpstreamBodyTooLarge(f"response body of {self.content_length} bytes")
        parts = []
        size = 0
        while chunk := await self._next():
            size += len(chunk)
            if size > limit:
                self.close()
                raise UpstreamBodyTooLarge(f"response body over {limit} bytes")
            parts.append(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._chunks = []
        if conn is not None:
            conn.close()

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class UpstreamReply(Protocol):
    """What the proxy reads of an upstream's answer (``UpstreamResponse`` here)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    content_length: int | None

    async def read(self, limit: int) -> bytes: ...

    def iter_chunks(self) -> AsyncIterator[bytes]: ...

    def close(self) -> None: ...


class UpstreamTransport(Protocol):
    """What the proxy asks of its upstream client: ``UpstreamClient``, or what a test
    or an embedding puts in its place (``Seams.upstream_client``)."""

    async def request(self, method: str, origin: Origin, target: bytes,
                      headers: list[tuple[bytes, bytes]],
                      body: bytes | AsyncIterator[bytes] | None = None,
                      content_length: int | None = None) -> UpstreamReply: ...

    def verifies(self, origin: Origin) -> bool: ...

    async def aclose(self) -> None: ...


class UpstreamClient:
    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 30.0,
                 max_idle_per_origin: int = 256, keepalive_timeout: float = 30.0,
                 max_header_bytes: int = 64 * 1024,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle_per_origin = max_idle_per_origin
        self.keepalive_timeout = keepalive_timeout
        self.max_header_bytes = max_header_bytes
        self._ssl = ssl_context
        self._contexts: dict[Any, ssl.SSLContext] = {}  # per origin.tls, built once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: dict[Origin, deque[_Conn]] = {}
        self._live: set[_Conn] = set()

    async def request(self, method: str, origin: Origin, target: bytes,
                      headers: list[tuple[bytes, bytes]],
                      body: bytes | AsyncIterator[bytes] | None = None,
                      content_length: int | None = None) -> UpstreamResponse:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        streaming = body is not None and not isinstance(body, bytes | bytearray | memoryview)
        head = _head(method, origin, target, headers, body, streaming, content_length)
        conn = self._take_idle(origin, loop)
        if conn is not None:
            try:
                return await self._exchange(conn, method, head, body, content_length, streaming)
            except _Stale as stale:
                # The server may close an idle connection just as we reuse it.
                # Replaying is safe if it saw nothing, or if the request can be
                # sent again as it was and means the same the second time.
                if stale.wrote and (streaming or method not in _IDEMPOTENT):
                    raise UpstreamProtocolError(
                        "the upstream closed a pooled connection before responding"
                    ) from stale.cause
        conn = await self._connect(origin, loop)
        try:
            return await self._exchange(conn, method, head, body, content_length, streaming)
        except _Stale as stale:
            raise UpstreamConnectError(
                "the upstream closed the connection before responding") from stale.cause

    async def aclose(self) -> None:
        """Close every connection, pooled or in use."""
        live, self._live = self._live, set()
        self._idle.clear()
        same_loop = self._loop is not None and _running_loop() is self._loop
        for conn in live:
            conn.must_close = True
            if conn.transport is not None and same_loop:
                conn.transport.abort()  # no TLS close_notify dance on shutdown
        if live and same_loop:
            await asyncio.sleep(0)  # lets the transports run connection_lost and free sockets

    # -- internals ------------------------------------------------------------------

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        # Transports belong to the loop that made them; from another loop all
        # we can do is ask that loop to close them, if it still runs.
        old = self._loop
        if old is not None and not old.is_closed():
            for conn in self._live:
                if conn.transport is not None:
                    with contextlib.suppress(RuntimeError):
                        old.call_soon_threadsafe(conn.transport.close)
        self._live = set()
        self._idle = {}
        self._loop = loop

    def _take_idle(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> _Conn | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = loop.time()
        while idle:
            conn = idle.pop()
            conn.pooled = False
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > self.keepalive_timeout:
                # LIFO: if the newest is too old, so is everything under it.
                conn.close()
                while idle:
                    old = idle.pop()
                    old.pooled = False
                    old.close()
                return None
            return conn
        return None

    def _release(self, conn: _Conn) -> None:
        conn.active = False
        if (conn.must_close or not conn.keep_alive or conn.closed or conn.transport is None
                or conn.transport.is_closing() or conn.loop is not self._loop
                or self.max_idle_per_origin <= 0):
            conn.close()
            return
        if conn.read_paused:
            conn.read_paused = False
            conn.transport.resume_reading()
        idle = self._idle.get(conn.origin)
        if idle is None:
            idle = self._idle[conn.origin] = deque()
        now = conn.loop.time()
        conn.idle_since = now
        # Trim from the old end so connections idle past keepalive_timeout do not
        # linger under a LIFO that never reaches them.
        while idle and (len(idle) >= self.max_idle_per_origin
                        or now - idle[0].idle_since > self.keepalive_timeout):
            old = idle.popleft()
            old.pooled = False
            old.close()
        conn.pooled = True
        idle.append(conn)

    def _forget(self, conn: _Conn) -> None:
        """A connection is gone (called from connection_lost)."""
        if conn.loop is not self._loop:
            return
        self._live.discard(conn)
        if conn.pooled:
            conn.pooled = False
            idle = self._idle.get(conn.origin)
            if idle is not None:
                with contextlib.suppress(ValueError):
                    idle.remove(conn)

    def _context(self, origin: Origin) -> ssl.SSLContext | None:
        """The TLS context connections to ``origin`` use; None for http."""
        if origin.scheme != "https":
            return None
        if origin.tls is not None:
            context = self._contexts.get(origin.tls)
            if context is None:
                if len(self._contexts) >= 1000:
                    self._contexts.clear()
                context = self._contexts[origin.tls] = origin.tls.context()
            return context
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def verifies(self, origin: Origin) -> bool:
        """Connections to ``origin`` are TLS that checks the certificate chain and the
        host name (what a system's ``identity_over_tls_only`` asks for)."""
        context = self._context(origin)
        return (context is not None and context.verify_mode == ssl.CERT_REQUIRED
                and context.check_hostname)

    async def _connect(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> _Conn:
        context = self._context(origin)
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Conn(self, origin, loop), origin.host, origin.port,
                    ssl=context, server_hostname=origin.host if context else None)
        except TimeoutError as exc:  # the deadline, or the kernel's ETIMEDOUT
            raise UpstreamConnectTimeout(
                f"no connection to {origin.host}:{origin.port} within "
                f"{self.connect_timeout:g} s") from exc
        except OSError as exc:  # refused, unreachable, DNS, TLS (SSLError is an OSError)
            raise UpstreamConnectError(
                f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        self._live.add(conn)
        return conn

    async def _exchange(self, conn: _Conn, method: str, head: bytes,
                        body: bytes | AsyncIterator[bytes] | None,
                        content_length: int | None, streaming: bool) -> UpstreamResponse:
        transport = conn.transport
        if conn.closed or transport is None or transport.is_closing():
            raise _Stale(False, None)
        conn.begin(method == "HEAD")
        try:
            if body is None:
                transport.write(head)
            elif not streaming:
                assert isinstance(body, bytes | bytearray | memoryview)
                if len(body) <= _COALESCE:
                    transport.write(head + body)
                else:
                    transport.write(head)
                    transport.write(body)
            else:
                assert not isinstance(body, bytes | bytearray | memoryview | None)
                transport.write(head)
                await _send_stream(conn, transport, body, content_length)
            while not conn.head_done:
                if conn.exc is not None:
                    if not conn.got_bytes and not isinstance(conn.exc, UpstreamReadTimeout):
                        raise _Stale(True, conn.exc.__cause__ or conn.exc)
                    raise conn.exc
                await conn.wait()
        except BaseException:
            conn.close()  # half an exchange leaves the stream out of step
            raise
        return UpstreamResponse(self, conn)


async def _send_stream(conn: _Conn, transport: asyncio.Transport, body: AsyncIterator[bytes],
                       content_length: int | None) -> None:
    sent = 0
    # The iterator's own exceptions (client gone, body too large) must reach
    # the caller as they are: no wrapping here.
    async for chunk in body:
        if not chunk:
            continue
        if _interrupted(conn, transport):
            return
        if content_length is None:
            transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        else:
            sent += len(chunk)
            if sent > content_length:
                raise UpstreamBodyLengthError(
                    f"request body longer than the {content_length} bytes announced")
            transport.write(chunk)
        while conn.write_paused and not (conn.got_bytes or conn.exc or conn.closed):
            await conn.wait()
    if _interrupted(conn, transport):
        return
    if content_length is None:
        transport.write(b"0\r\n\r\n")
    elif sent != content_length:
        raise UpstreamBodyLengthError(
            f"request body of {sent} bytes, {content_length} announced")


def _interrupted(conn: _Conn, transport: asyncio.Transport) -> bool:
    if conn.got_bytes or conn.exc is not None or transport.is_closing():
        # The upstream answered early (a 413, say) or the connection died: stop
        # sending, leave the connection unusable, let the caller read the answer.
        conn.must_close = True
        return True
    return False


def _head(method: str, origin: Origin, target: bytes, headers: list[tuple[bytes, bytes]],
          body: bytes | AsyncIterator[bytes] | None, streaming: bool,
          content_length: int | None) -> bytes:
    if not target or b" " in target:
        raise ValueError("bad request target")
    out = bytearray(method.encode("ascii"))
    out += b" "
    out += target
    out += b" HTTP/1.1\r\n"
    lines = 2 + len(headers)
    has_host = False
    for name, value in headers:
        n = len(name)
        if n == 4 or n == 14 or n == 17:
            low = name.lower()
            if low == b"host":
                has_host = True
            elif low in (b"content-length", b"transfer-encoding"):
                # Framing is ours alone: a second opinion is how requests get smuggled.
                raise ValueError(f"{name.decode('latin-1')} is set by the client from the body")
        out += name
        out += b": "
        out += value
        out += b"\r\n"
    if not has_host:
        out += b"Host: "
        out += origin.host_header
        out += b"\r\n"
        lines += 1
    if body is None:
        if content_length:
            raise ValueError("content_length without a body")
        if method in _WANTS_LENGTH:
            out += b"Content-Length: 0\r\n"
            lines += 1
    elif streaming:
        if content_length is None:
            out += b"Transfer-Encoding: chunked\r\n"
        elif content_length < 0:
            raise ValueError("negative content_length")
        else:
            out += b"Content-Length: %d\r\n" % content_length
        lines += 1
    else:
        assert isinstance(body, bytes | bytearray | memoryview)
        if content_length is not None and content_length != len(body):
            raise ValueError("content_length differs from the body's length")
        out += b"Content-Length: %d\r\n" % len(body)
        lines += 1
    out += b"\r\n"
    # Each line adds exactly one CR LF; any other CR or LF came from a caller's
    # name or value and would split the request.
    if out.count(b"\n") != lines or out.count(b"\r") != lines:
        raise ValueError("CR or LF in the method, target or a header")
    return bytes(out)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
