"""The gateway and its upstreams in this process, no sockets: for proxy tests that are
about decisions, headers and audit records, not about bytes on the wire.

``AsgiUpstreams`` stands where the proxy's upstream client stands
(``Seams.upstream_client``) and hands each request to the ASGI app registered for its
origin; ``call`` sends one request to an ASGI app with its target exactly as written
(raw path and query as a server would pass them on). What only a real server shows
(request smuggling, head limits, slow clients, connection reuse) stays in tests over
real sockets (``tests.proxy.conftest.Served``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import ASGIApp, Message

from gateway.proxy.upstream_http import (
    Origin,
    UpstreamBodyTooLarge,
    UpstreamConnectError,
)


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _scope(method: str, target: bytes, headers: list[tuple[bytes, bytes]], *,
           client: tuple[str, int], server: tuple[str, int]) -> dict[str, Any]:
    raw_path, _, query = target.partition(b"?")
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http",
        # as uvicorn: the path percent-decoded, the raw path as sent
        "path": unquote(raw_path.decode("latin-1")), "raw_path": raw_path,
        "query_string": query, "root_path": "", "headers": headers,
        "client": client, "server": server, "state": {},
    }


async def _run(app: ASGIApp, scope: dict[str, Any],
               body: bytes | AsyncIterator[bytes] | None) -> tuple[int, list[tuple[bytes, bytes]],
                                                                 bytes]:
    """The app's whole answer to one request."""
    chunks: AsyncIterator[bytes] | None
    if body is None or isinstance(body, bytes | bytearray | memoryview):
        chunks = None
        pending = [bytes(body or b"")]
    else:
        chunks, pending = body, []
    status = 0
    headers: list[tuple[bytes, bytes]] = []
    out = bytearray()

    async def receive() -> Message:
        if chunks is not None:
            try:
                return {"type": "http.request", "body": await chunks.__anext__(),
                        "more_body": True}
            except StopAsyncIteration:
                return {"type": "http.request", "body": b"", "more_body": False}
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            out.extend(message.get("body", b""))

    await app(scope, receive, send)
    return status, headers, bytes(out)


async def call(app: ASGIApp, method: str, target: str, headers: list[tuple[str, str]],
               body: bytes | None = None, *, host: str = "127.0.0.1:8080",
               client: tuple[str, int] = ("127.0.0.1", 50000)) -> Resp:
    """``method target`` to ``app`` as a server would hand it over from ``client`` (the
    connection's peer; 127.0.0.1 unless given)."""
    hdrs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if not any(k == b"host" for k, _ in hdrs):
        hdrs.insert(0, (b"host", host.encode()))
    if body is not None:
        hdrs.append((b"content-length", str(len(body)).encode()))
    port = int(host.rpartition(":")[2] or 80)
    status, out_headers, out = await _run(
        app, _scope(method, target.encode("latin-1"), hdrs, client=client,
                    server=("127.0.0.1", port)), body)
    seen: dict[str, str] = {}
    for k, v in out_headers:
        seen[k.decode("latin-1").lower()] = v.decode("latin-1")
    return Resp(status, seen, out)


class _Reply:
    """A whole answer, read as the proxy reads ``UpstreamResponse``."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.content_length: int | None = len(body)
        self._body = body

    async def read(self, limit: int) -> bytes:
        if len(self._body) > limit:
            raise UpstreamBodyTooLarge(f"response body of {len(self._body)} bytes")
        return self._body

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body

    def close(self) -> None:
        self._body = b""


class AsgiUpstreams:
    """The proxy's upstream client for systems whose upstream is an app in this
    process: ``apps`` maps ``host:port`` of a system's upstream URL to its app; any
    other origin refuses the connection, as a closed port does."""

    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = apps
        self.requests = 0

    async def request(self, method: str, origin: Origin, target: bytes,
                      headers: list[tuple[bytes, bytes]],
                      body: bytes | AsyncIterator[bytes] | None = None,
                      content_length: int | None = None) -> _Reply:
        app = self.apps.get(f"{origin.host}:{origin.port}")
        if app is None:
            raise UpstreamConnectError(f"nothing listens on {origin.host}:{origin.port}")
        self.requests += 1
        hdrs = [(k.lower(), v) for k, v in headers]
        hdrs.insert(0, (b"host", origin.host_header))
        if content_length is not None:
            hdrs.append((b"content-length", str(content_length).encode()))
        elif body is not None and not isinstance(body, bytes | bytearray | memoryview):
            hdrs.append((b"transfer-encoding", b"chunked"))
        status, out_headers, out = await _run(
            app, _scope(method, target, hdrs, client=("127.0.0.1", 50001),
                        server=(origin.host, origin.port)), body)
        return _Reply(status, out_headers, out)

    def verifies(self, origin: Origin) -> bool:
        return False  # never TLS

    async def aclose(self) -> None:
        return None


class AsgiTransport(httpx.AsyncBaseTransport):
    """httpx's client to an ASGI app in this process, handing the app what uvicorn
    would after reading the request off the wire: the target's path and query as the
    client wrote them (``raw_path``), the path percent-decoded, the headers as sent
    (httpx's own ``ASGITransport`` rebuilds some of these)."""

    def __init__(self, app: ASGIApp, *, client: tuple[str, int] = ("127.0.0.1", 50000)
                 ) -> None:
        self.app = app
        self.client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        body = await request.aread()
        status, headers, out = await _run(
            self.app, _scope(request.method, raw,
                             [(k.lower(), v) for k, v in request.headers.raw],
                             client=self.client, server=(request.url.host, port)),
            body)
        return httpx.Response(status, headers=headers, content=out)
