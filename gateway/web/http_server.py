"""The HTTP/1.1 server the gateway runs on: uvicorn's two protocols with three rules
added, for every route (``/healthz`` and the login page as much as ``/s/``).

RFC 9112 (HTTP/1.1) section 2.2 and 5 (the request head), section 7.1.2 (the chunked
trailer section); RFC 9110 section 6.5 (trailer fields), 15.5.9 (408) and RFC 6585
section 5 (431).

1. **One size limit on the request head.** The request line and header fields
   (counted as ``method target HTTP/1.1`` plus ``name: value`` and CRLF per field)
   at most ``max_header_bytes``, at most ``max_headers`` fields: otherwise 431 and
   the connection closed. A head still arriving is cut off as soon as the bytes read
   for it pass the limit (plus at most one socket read when it starts in the same
   read as the end of the previous request), so a 64 MB header costs about
   ``max_header_bytes`` of memory, not 64 MB.
2. **A header read timeout.** A request head must be complete within
   ``header_timeout_seconds`` of the moment the connection could send it (opened,
   or the previous response finished); otherwise the connection is closed (after a
   408 when part of a head had arrived). Slow-header connections cannot pile up.
3. **Trailer fields never join the request's headers.** uvicorn's httptools
   protocol appends every field the parser reports, trailers of a chunked body
   included, to the very list the ASGI scope holds, so a trailer arriving with the
   body became a request header after the fact (a bearer token sent only as a
   trailer authenticated). Here the header list is closed when the head is
   complete; trailer fields are discarded (RFC 9110 6.5.1 lets a recipient discard
   them), never reach a decision nor an upstream, and their section is bounded by
   the same size limit. uvicorn's h11 protocol already drops them (h11 reports them
   on ``EndOfMessage``, which uvicorn ignores).
4. **One reading of the body's length.** RFC 9112 section 6.1 and 6.3: a request
   with both ``Content-Length`` and ``Transfer-Encoding``, a ``Transfer-Encoding``
   in an HTTP/1.0 request, or a header folded over lines (obs-fold, section 5.2)
   is refused with 400 and the connection closed. A front proxy that reads such a
   message otherwise (by its length rather than its chunks, or with the folded line
   as a header of its own) would see another request boundary than the gateway, and
   a request hidden in the body would run without ever being decided on. httptools
   (llhttp) refuses the first and the last; h11 took ``Transfer-Encoding`` over
   ``Content-Length`` and unfolded folded lines, and both took a chunked HTTP/1.0
   body.

And one saving (httptools protocol): a response's head is held for its body's first
write (``_HeadWithBody``), so a small answer leaves in one write, one system call,
instead of two; a head whose body does not follow in the same turn of the event loop
(a stream) goes out at the end of that turn.

:class:`ServerConfig` is ``uvicorn.Config`` carrying the limits; ``govgate serve``,
``govgate demo`` and the tests' servers all use it, so every listening socket has
these rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

import h11
import httptools
import uvicorn
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.server import ServerState

__all__ = ["H11Protocol", "HeadLimits", "HttpToolsProtocol", "ServerConfig"]


@dataclass(frozen=True)
class HeadLimits:
    max_header_bytes: int = 32 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any) -> HeadLimits:
        return cls(max_header_bytes=settings.max_header_bytes,
                   max_headers=settings.max_headers,
                   header_timeout=settings.header_timeout_seconds)


class ServerConfig(uvicorn.Config):
    """``uvicorn.Config`` with the gateway's protocol (httptools, or ``http="h11"``)
    and its :class:`HeadLimits`. A plain module-level class, so it pickles to the
    worker processes of ``govgate serve --workers N``."""

    def __init__(self, app: Any, *, limits: HeadLimits, http: str = "httptools",
                 **kwargs: Any) -> None:
        protocols: dict[str, type[asyncio.Protocol]] = {
            "httptools": HttpToolsProtocol, "h11": H11Protocol}
        super().__init__(app, http=protocols[http],
                         h11_max_incomplete_event_size=limits.max_header_bytes, **kwargs)
        self.head_limits = limits


def _limits(config: uvicorn.Config) -> HeadLimits:
    found = getattr(config, "head_limits", None)
    return found if isinstance(found, HeadLimits) else HeadLimits()


def head_size(method: int, target: int, fields: int) -> int:
    """The request head's size as the limit counts it, from the lengths of the method
    and target: ``method SP target SP HTTP/1.1 CRLF``, then ``fields`` (the sum of
    ``len(name) + len(value) + 4``), then the final CRLF."""
    return method + 1 + target + 11 + fields + 2


_PROBLEM_431 = json.dumps({
    "type": "urn:govgate:error:headers_too_large",
    "title": "Request header fields too large", "status": 431,
    "detail": "the request head is over the size limit",
}).encode()


def _answer(server_state: ServerState, status: bytes, body: bytes,
            content_type: bytes) -> bytes:
    """A whole response refusing the connection (the server's Date included, once)."""
    out = [b"HTTP/1.1 " + status + b"\r\n"]
    for name, value in server_state.default_headers:
        out += [name, b": ", value, b"\r\n"]
    out += [b"content-type: ", content_type, b"\r\n",
            b"content-length: ", str(len(body)).encode(), b"\r\n",
            b"connection: close\r\n\r\n", body]
    return b"".join(out)


class _HeadGuard(asyncio.Protocol):
    """The timer and refusals both protocols share (a mixin; the protocol supplies
    ``transport``, ``loop``, ``server_state`` and ``cycle``)."""

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    server_state: ServerState
    cycle: Any
    limits: HeadLimits
    # when the head being waited for must be complete (None: not waiting for one), and
    # the one timer handle checking it. The handle is not cancelled and re-created per
    # request (that cost ~3 µs a request): it stays, and when it fires it follows the
    # deadline that is current then
    _head_deadline: float | None = None
    _head_timer: asyncio.TimerHandle | None = None

    def _guard(self, config: uvicorn.Config) -> None:
        """Set up the guard's state (each protocol's ``__init__`` calls it)."""
        self.limits = _limits(config)
        self._head_deadline = None
        self._head_timer = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._drop_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_deadline is not None or self.transport.is_closing():
            return
        self._head_deadline = self.loop.time() + self.limits.header_timeout
        if self._head_timer is None:
            self._head_timer = self.loop.call_at(self._head_deadline, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        self._head_deadline = None

    def _drop_head_timer(self) -> None:
        self._head_deadline = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_started(self) -> bool:
        """Whether part of a request head has arrived (then a timeout answers 408)."""
        raise NotImplementedError

    def _head_timed_out(self) -> None:
        self._head_timer = None
        deadline = self._head_deadline
        if deadline is None or self.transport.is_closing():
            return  # no head awaited any more (the next arming schedules anew)
        if self.loop.time() < deadline:
            self._head_timer = self.loop.call_at(deadline, self._head_timed_out)
            return
        self._head_deadline = None
        if self.cycle is not None and not self.cycle.response_complete:
            # a request is being served (a pipelined head waits behind it): its own
            # timeouts govern; the head's clock starts again
            self._arm_head_timer()
            return
        if self._head_started():
            self.transport.write(_answer(self.server_state, b"408 Request Timeout",
                                         b"request head not received in time",
                                         b"text/plain; charset=utf-8"))
        self._close()

    def _refuse_too_large(self) -> None:
        self._drop_head_timer()
        # behind a response still being written (a pipelined head) an answer would land
        # in the middle of it: then the connection is just closed
        busy = self.cycle is not None and not self.cycle.response_complete
        if not self.transport.is_closing() and not busy:
            self.transport.write(_answer(self.server_state,
                                         b"431 Request Header Fields Too Large",
                                         _PROBLEM_431, b"application/problem+json"))
        self._close()

    def _close(self) -> None:
        self.transport.close()


class _TooLarge(Exception):
    """Raised from a parser callback: the head is over the limit."""


class _AmbiguousFraming(Exception):
    """Raised from a parser callback: the body's length could be read two ways."""


def _framing_problem(version: str, names: list[bytes]) -> str | None:
    """Why a request head with these (lower-case) field ``names`` frames its body
    ambiguously (rule 4 of the module docstring), or None."""
    chunked = b"transfer-encoding" in names
    if chunked and b"content-length" in names:
        return "both Content-Length and Transfer-Encoding"
    if chunked and version == "1.0":
        return "Transfer-Encoding in an HTTP/1.0 request"
    return None


# a body up to this size goes out in one write with the response head held for it;
# a larger one is written on its own rather than copied
_COALESCE = 64 * 1024


class _HeadWithBody:
    """A response cycle's transport: the first write (the response head) is held for
    the body's first write, so that a small answer leaves in one write, one system
    call, instead of two; if no body write follows in the same turn of the event loop
    (a streamed response waiting for its upstream) the head goes out at its end.
    Ordering is kept: nothing is written before the held head, and close flushes it."""

    __slots__ = ("_held", "_loop", "_transport", "_waiting")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._waiting = True  # for the first write

    def write(self, data: bytes) -> None:
        if self._waiting:
            self._waiting = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _COALESCE:
                data = held + data
            else:
                self._transport.write(held)
        self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else a cycle may ask
        return getattr(self._transport, name)


class HttpToolsProtocol(_HeadGuard, httptools_impl.HttpToolsProtocol):
    """uvicorn's httptools protocol with the head limits, the header timeout and the
    trailer rule (module docstring)."""

    def __init__(self, config: uvicorn.Config, server_state: ServerState,
                 app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard(config)
        self._in_head = False  # a message began and its head is not complete yet
        self._between = True  # no message in progress (none yet, or the last one ended)
        self._max_bytes = self.limits.max_header_bytes
        self._max_fields = self.limits.max_headers
        self._fields = 0
        self._head_bytes = 0  # the head so far, counted as head_size() counts it
        self._raw_head = 0  # bytes read while the head was arriving
        self._stalled = 0  # bytes read after the head that gave no body byte (trailers)
        self._progress = False
        self._too_large = False

    def _head_started(self) -> bool:
        return self._in_head

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with the head and trailer accounting around the feed
        self._unset_keepalive_if_required()
        # every byte of this read belongs to a head until it completes, unless the read
        # starts inside the body of a previous message
        whole_head = self._in_head or self._between
        self._progress = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._too_large:
                self._refuse_too_large()
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self.transport.is_closing():
            return
        limit = self.limits.max_header_bytes
        if self._in_head:
            if whole_head:
                self._raw_head += len(data)
            if self._raw_head > limit:
                self._refuse_too_large()
        elif not self._between and not self._progress:
            # after the head, bytes that carried no body: chunk framing, or a trailer
            # section the parser buffers whole before reporting it
            self._stalled += len(data)
            if self._stalled > limit:
                self._close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._between = True, False
        self._fields = self._raw_head = self._stalled = 0
        self._head_bytes = head_size(0, 0, 0)
        self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > self._max_bytes:
            self._too_large = True
            raise _TooLarge
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # this runs for every field of every request: kept to a few operations
        if not self._in_head:
            return  # a trailer field: discarded, never a request header
        self._fields += 1
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._max_bytes or self._fields > self._max_fields:
            self._too_large = True
            raise _TooLarge
        # uvicorn's on_header, inline
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        # what the fields left out: the method (its length known only now)
        if self._head_bytes + len(self.parser.get_method()) > self._max_bytes:
            self._too_large = True
            raise _TooLarge
        if self.parser.get_http_version() == "1.0" and _framing_problem(
                "1.0", [name for name, _ in self.headers]):
            # llhttp refuses Content-Length beside Transfer-Encoding itself; it reads a
            # chunked HTTP/1.0 body, which a front proxy may take for the next request
            raise _AmbiguousFraming
        # the scope's list is closed from here on: nothing appends to it after the head
        self.headers = list(self.headers)
        self.scope["headers"] = self.headers
        before = self.cycle
        super().on_headers_complete()
        if self.cycle is not before:  # none for an upgrade answered elsewhere
            # the new cycle's task has not run yet: its response head waits for its body
            self.cycle.transport = _HeadWithBody(  # type: ignore[assignment]
                self.transport, self.loop)

    def on_body(self, body: bytes) -> None:
        self._progress = True
        self._stalled = 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._progress = True
        self._between = True
        self._stalled = 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # idle now (no pipelined request was started): the next head's clock starts
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._arm_head_timer()


# a line of the head that begins with white space continues the previous one (obs-fold)
_FOLDED = re.compile(rb"\n[ \t]")
_BLANK_LINE = re.compile(rb"\n\r?\n")


def _head_end(data: bytes) -> int:
    """Where the request head at the start of ``data`` ends (its blank line)."""
    found = _BLANK_LINE.search(data)
    return found.start() if found else len(data)


class _Connection(h11.Connection):
    """h11's connection, which also refuses a head over the field count or size and
    remembers why it refused (for the 431)."""

    def __init__(self, limits: HeadLimits) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.limits = limits
        self.refused_status: int | None = None

    def next_event(self) -> Any:
        # the head as it arrived, for the folded lines h11 joins silently
        arriving = self.trailing_data[0] if self.their_state is h11.IDLE else b""
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.refused_status = exc.error_status_hint
            raise
        if isinstance(event, h11.Request):
            version = event.http_version.decode("ascii", "replace")
            why = _framing_problem(version, [name for name, _ in event.headers])
            if why is None and _FOLDED.search(arriving, 0, _head_end(arriving)):
                why = "a header folded over lines (obs-fold)"
            if why is not None:
                self.refused_status = 400
                raise h11.RemoteProtocolError(why, error_status_hint=400)
            fields = sum(len(k) + len(v) + 4 for k, v in event.headers)
            if len(event.headers) > self.limits.max_headers or head_size(
                    len(event.method), len(event.target), fields) > (
                    self.limits.max_header_bytes):
                self.refused_status = 431
                raise h11.RemoteProtocolError("request head too large",
                                              error_status_hint=431)
        return event


class H11Protocol(_HeadGuard, h11_impl.H11Protocol):
    """uvicorn's h11 protocol with the head limits and the header timeout (h11 already
    keeps trailers out of the headers)."""

    def __init__(self, config: uvicorn.Config, server_state: ServerState,
                 app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._guard(config)
        self.conn = _Connection(self.limits)

    def _head_started(self) -> bool:
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:
            self._cancel_head_timer()  # a head arrived whole

    def send_400_response(self, msg: str) -> None:
        if isinstance(self.conn, _Connection) and self.conn.refused_status == 431:
            self._refuse_too_large()
            return
        super().send_400_response(msg)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_head_timer()

    def _close(self) -> None:
        if self.conn.our_state is not h11.ERROR:
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
        self.transport.close()
