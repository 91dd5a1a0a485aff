"""gateway.proxy.upstream_http against real servers on 127.0.0.1: raw asyncio servers
for the misbehaving cases, uvicorn for a well-behaved HTTP/1.1 peer. Every
scenario runs on the default asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import hashlib
import ipaddress
import json
import re
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from gateway.proxy.upstream_http import (
    Origin,
    UpstreamBodyLengthError,
    UpstreamBodyTooLarge,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamReadTimeout,
)
from tests.proxy.conftest import Served

MiB = 1024 * 1024
BLOCK = bytes(range(256)) * 256  # 64 KiB


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    def runner(coro: Coroutine[Any, Any, Any]) -> Any:
        if request.param == "uvloop":
            return uvloop.run(coro)
        return asyncio.run(coro)
    return runner


# ---------------------------------------------------------------------------
# servers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One request off the wire: (head, decoded body). IncompleteReadError at EOF."""
    head = await reader.readuntil(b"\r\n\r\n")
    low = head.lower()
    if b"transfer-encoding: chunked" in low:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(data[:-2])
        return head, b"".join(parts)
    m = re.search(rb"\r\ncontent-length: *(\d+)", low)
    return head, (await reader.readexactly(int(m.group(1))) if m else b"")


class RawServer:
    """A TCP server whose handler writes whatever bytes the test wants."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl = ssl_context
        self.connections = 0
        self.heads: list[bytes] = []
        self.tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        self.origin = Origin("https" if self.ssl else "http", "127.0.0.1", self.port)
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            self.tasks.discard(task)

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


def serve_forever(response: bytes = OK) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      idx: int) -> None:
        while True:
            await read_request(reader)
            writer.write(response)
    return handler


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo of what arrived, plus a few canned behaviours picked by path."""
    path = scope["path"]
    digest = hashlib.sha256()
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        digest.update(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            break
    if path == "/big":
        total = int(scope["query_string"] or 0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        sent = 0
        while sent < total:
            piece = BLOCK[:total - sent]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            sent += len(piece)
        await send({"type": "http.response.body", "body": b""})
        return
    if path.startswith("/status/"):
        await send({"type": "http.response.start", "status": int(path[8:]),
                    "headers": [(b"etag", b'"x"')]})
        await send({"type": "http.response.body", "body": b""})
        return
    payload = json.dumps({
        "method": scope["method"], "path": path, "port": scope["client"][1],
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body_len": size, "body_sha256": digest.hexdigest(),
    }).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    if path == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class Uvicorn(Served):
    """The normal upstream (``asgi_app``) on a free port, with its Origin."""

    def __init__(self) -> None:
        super().__init__(asgi_app)
        self.origin = Origin("http", "127.0.0.1", self.port)


async def get_json(client: UpstreamClient, origin: Origin, target: bytes,
                   method: str = "GET", **kw: Any) -> dict[str, Any]:
    async with await client.request(method, origin, target, [], **kw) as resp:
        assert resp.status == 200, resp.status
        return json.loads(await resp.read(MiB))  # type: ignore[no-any-return]


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------
# tests


def test_origin_parse() -> None:
    assert Origin.parse("http://127.0.0.1:8081") == Origin("http", "127.0.0.1", 8081)
    assert Origin.parse("https://x.gov.cn") == Origin("https", "x.gov.cn", 443)
    assert Origin.parse("HTTP://X.gov.cn/").host_header == b"x.gov.cn"
    assert Origin.parse("http://x.gov.cn:8080").host_header == b"x.gov.cn:8080"
    assert Origin.parse("http://[::1]:81").host_header == b"[::1]:81"
    for bad in ("ftp://x", "http://", "http://x/api", "http://u:p@x", "http://x?a=1",
                "http://x:99999", "x.gov.cn", "http://x:0"):
        with pytest.raises(ValueError):
            Origin.parse(bad)


def test_keepalive_reuse_and_exact_request(run: Any) -> None:
    async def main() -> None:
        async with RawServer(serve_forever()) as srv:
            seen = srv.heads

            async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                idx: int) -> None:
                while True:
                    head, _ = await read_request(reader)
                    seen.append(head)
                    writer.write(OK)

            srv.handler = recording
            client = UpstreamClient()
            for i in range(20):
                async with await client.request("GET", srv.origin, b"/a?i=%d" % i,
                                                [(b"X-Trace", b"t")]) as resp:
                    assert resp.status == 200
                    assert resp.content_length == 2
                    assert await resp.read(100) == b"ok"
            assert srv.connections == 1
            # exactly the caller's headers plus Host (with the non-default port)
            assert seen[0] == (b"GET /a?i=0 HTTP/1.1\r\nX-Trace: t\r\n"
                               b"Host: 127.0.0.1:%d\r\n\r\n" % srv.port)
            # a caller's Host wins; a bytes body is framed by Content-Length, in one piece
            resp = await client.request("POST", srv.origin, b"/p", [(b"host", b"svc.local")],
                                        body=b"hello")
            resp.close()
            assert seen[-1] == b"POST /p HTTP/1.1\r\nhost: svc.local\r\nContent-Length: 5\r\n\r\n"
            (await client.request("POST", srv.origin, b"/p", [])).close()
            assert seen[-1].endswith(b"Content-Length: 0\r\n\r\n")
            assert srv.connections == 1
            await client.aclose()
    run(main())


def test_uvicorn_reuse_content_length_and_chunked(run: Any) -> None:
    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient()
            ports = {(await get_json(client, up.origin, b"/x"))["port"] for _ in range(10)}
            assert len(ports) == 1
            got = await get_json(client, up.origin, b"/x")
            names = [k for k, _ in got["headers"]]
            assert names == ["host"]  # no User-Agent, Accept, Accept-Encoding of our own
            async with await client.request("GET", up.origin, b"/big?300000", []) as resp:
                assert resp.content_length is None
                assert any(k.lower() == b"transfer-encoding" for k, _ in resp.headers)
                body = await resp.read(MiB)
            assert body == (BLOCK * 5)[:300000]
            assert (await get_json(client, up.origin, b"/x"))["port"] in ports
            await client.aclose()
    run(main())


def test_read_until_close_and_http10(run: Any) -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          idx: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-A: b\r\n\r\n")
        for _ in range(5):
            writer.write(BLOCK)
            await writer.drain()
            await asyncio.sleep(0.01)

    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     idx: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await asyncio.sleep(1)  # keeps the socket open: the client must not pool it anyway

    async def main() -> None:
        client = UpstreamClient()
        async with RawServer(until_close) as srv:
            for _ in range(2):
                async with await client.request("GET", srv.origin, b"/", []) as resp:
                    assert resp.content_length is None
                    assert resp.headers == [(b"X-A", b"b")]
                    assert await resp.read(MiB) == BLOCK * 5
            assert srv.connections == 2
        async with RawServer(http10) as srv:
            for _ in range(2):
                async with await client.request("GET", srv.origin, b"/", []) as resp:
                    assert resp.http_version == "1.0"
                    assert await resp.read(10) == b"ok"
            assert srv.connections == 2
        await client.aclose()
    run(main())


def test_head_204_304_have_no_body(run: Any) -> None:
    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient(read_timeout=2)
            async with await client.request("HEAD", up.origin, b"/x", []) as resp:
                assert resp.status == 200
                assert int(dict(resp.headers)[b"content-length"]) > 0
                assert resp.content_length == 0
                assert await resp.read(10) == b""
            for code in (204, 304):
                async with await client.request("GET", up.origin, b"/status/%d" % code,
                                                []) as resp:
                    assert resp.status == code
                    assert await resp.read(10) == b""
            # the connection survived all three and still parses the next response
            ports = {(await get_json(client, up.origin, b"/x"))["port"] for _ in range(2)}
            assert len(ports) == 1
            await client.aclose()
    run(main())


def test_interim_100_continue_skipped(run: Any) -> None:
    async def main() -> None:
        reply = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                 b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew")
        async with RawServer(serve_forever(reply)) as srv:
            client = UpstreamClient()
            for _ in range(2):
                async with await client.request("POST", srv.origin, b"/", [],
                                                body=b"x") as resp:
                    assert resp.status == 201
                    assert resp.headers == [(b"Content-Length", b"3")]
                    assert await resp.read(10) == b"new"
            assert srv.connections == 1
            await client.aclose()
    run(main())


def test_streaming_request_body(run: Any) -> None:
    data = (BLOCK * 80)[: 5 * MiB - 7]
    want = hashlib.sha256(data).hexdigest()

    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient()
            got = await get_json(client, up.origin, b"/up", "POST",
                                 body=chunks_of(data, 100_000))
            assert (got["body_len"], got["body_sha256"]) == (len(data), want)
            assert ["transfer-encoding", "chunked"] in got["headers"]
            got = await get_json(client, up.origin, b"/up", "PUT",
                                 body=chunks_of(data, 100_000), content_length=len(data))
            assert (got["body_len"], got["body_sha256"]) == (len(data), want)
            assert ["content-length", str(len(data))] in got["headers"]
            got = await get_json(client, up.origin, b"/up", "POST", body=data)
            assert got["body_sha256"] == want
            await client.aclose()
    run(main())


def test_streaming_response_backpressure(run: Any) -> None:
    total = 20 * MiB
    want = hashlib.sha256(BLOCK * (total // len(BLOCK))).hexdigest()

    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient()
            resp = await client.request("GET", up.origin, b"/big?%d" % total, [])
            conn = resp._conn
            assert conn is not None
            digest = hashlib.sha256()
            size = 0
            async with resp:
                async for chunk in resp.iter_chunks():
                    if size == 0:
                        await asyncio.sleep(0.3)  # a slow consumer: the upstream must wait
                    digest.update(chunk)
                    size += len(chunk)
            assert (size, digest.hexdigest()) == (total, want)
            assert 256 * 1024 < conn.peak <= MiB  # reading paused; never near 20 MiB
            assert not conn.closed  # fully read: back in the pool
            assert (await get_json(client, up.origin, b"/x"))["port"] \
                == conn.transport.get_extra_info("sockname")[1]  # type: ignore[union-attr]
            await client.aclose()
    run(main())


class Boom(Exception):
    pass


def test_body_iterator_exception_propagates(run: Any) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise Boom("client went away")

    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient()
            for length in (None, 5000):
                with pytest.raises(Exception) as info:
                    await client.request("POST", up.origin, b"/", [], body=failing(),
                                         content_length=length)
                assert isinstance(info.value, Boom)
            # the half-sent exchanges were not pooled: the next request works
            assert (await get_json(client, up.origin, b"/x"))["path"] == "/x"
            for length in (10, 3000):  # iterator gives 2000 bytes
                with pytest.raises(UpstreamBodyLengthError):
                    await client.request("POST", up.origin, b"/", [],
                                         body=chunks_of(b"y" * 2000, 1000),
                                         content_length=length)
            assert (await get_json(client, up.origin, b"/x"))["path"] == "/x"
            await client.aclose()
    run(main())


def test_connect_refused_and_timeout(run: Any) -> None:
    import socket

    async def main() -> None:
        client = UpstreamClient(connect_timeout=0.2)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, not listening: refused
            with pytest.raises(UpstreamConnectError):
                await client.request("GET", Origin("http", "127.0.0.1", port), b"/", [])
        # A listener that never accepts, its accept queue filled: Linux drops
        # further SYNs, so the handshake hangs as with a black-holed address
        # (outbound addresses are no use here: the sandbox may answer them all).
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            fillers = []
            try:
                for _ in range(8):
                    f = socket.socket()
                    fillers.append(f)
                    f.settimeout(0.2)
                    try:
                        f.connect(listener.getsockname())
                    except TimeoutError:
                        break
                else:
                    pytest.skip("the kernel keeps accepting connections into a full queue")
                origin = Origin("http", "127.0.0.1", listener.getsockname()[1])
                t0 = time.monotonic()
                with pytest.raises(UpstreamConnectTimeout):
                    await client.request("GET", origin, b"/", [])
                assert time.monotonic() - t0 < 2
            finally:
                for f in fillers:
                    f.close()
        await client.aclose()
    run(main())


def test_read_timeouts(run: Any) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     idx: int) -> None:
        await read_request(reader)
        await asyncio.sleep(10)

    async def stalls_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              idx: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        for _ in range(4):  # trickles: idle gaps shorter than the timeout are fine
            await asyncio.sleep(0.1)
            writer.write(b"d")
        await asyncio.sleep(10)

    async def main() -> None:
        client = UpstreamClient(read_timeout=0.4)
        async with RawServer(silent) as srv:
            t0 = time.monotonic()
            with pytest.raises(UpstreamReadTimeout):
                await client.request("GET", srv.origin, b"/", [])
            assert 0.35 < time.monotonic() - t0 < 3
        async with RawServer(stalls_mid_body) as srv:
            resp = await client.request("GET", srv.origin, b"/", [])
            t0 = time.monotonic()
            with pytest.raises(UpstreamReadTimeout):
                await resp.read(1000)
            assert 0.75 < time.monotonic() - t0 < 4
            resp.close()
        await client.aclose()
    run(main())


def test_stale_pooled_connection(run: Any) -> None:
    async def drops_second(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           idx: int) -> None:
        # The keep-alive race, made deterministic: the first connection takes
        # one request, then closes on the next without a byte of answer.
        n = 0
        while True:
            await read_request(reader)
            n += 1
            if idx == 1 and n == 2:
                return
            writer.write(OK)

    async def main() -> None:
        client = UpstreamClient()
        async with RawServer(drops_second) as srv:
            for method in ("GET", "PUT"):
                srv.connections = 0
                for _ in range(2):
                    async with await client.request(method, srv.origin, b"/", [],
                                                    body=b"x" if method == "PUT" else None
                                                    ) as resp:
                        assert await resp.read(10) == b"ok"
                assert srv.connections == 2  # retried once, on a fresh connection
                await client.aclose()
        async with RawServer(drops_second) as srv:
            (await client.request("POST", srv.origin, b"/", [], body=b"x")).close()
            with pytest.raises(UpstreamProtocolError):  # not idempotent: never replayed
                await client.request("POST", srv.origin, b"/", [], body=b"x")
            assert srv.connections == 1
        async with RawServer(drops_second) as srv:
            (await client.request("PUT", srv.origin, b"/", [])).close()
            with pytest.raises(UpstreamProtocolError):  # a stream cannot be replayed
                await client.request("PUT", srv.origin, b"/", [], body=chunks_of(b"z", 1))
            assert srv.connections == 1
        await client.aclose()
    run(main())


def test_server_closes_idle_connection(run: Any) -> None:
    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                idx: int) -> None:
        await read_request(reader)
        writer.write(OK)
        await asyncio.sleep(0.05)  # keep-alive timeout of a stingy server

    async def main() -> None:
        client = UpstreamClient()
        async with RawServer(answer_then_close) as srv:
            for _ in range(3):
                async with await client.request("GET", srv.origin, b"/", []) as resp:
                    assert await resp.read(10) == b"ok"
                await asyncio.sleep(0.15)
            assert srv.connections == 3
            assert not client._idle.get(srv.origin)  # closed ones left the pool
        await client.aclose()
    run(main())


def test_keepalive_timeout_and_idle_cap(run: Any) -> None:
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      idx: int) -> None:
        while True:
            await read_request(reader)
            await asyncio.sleep(0.05)
            writer.write(OK)

    async def main() -> None:
        client = UpstreamClient(keepalive_timeout=0.3, max_idle_per_origin=3)
        async with RawServer(slow_ok) as srv:
            async def one() -> None:
                async with await client.request("GET", srv.origin, b"/", []) as resp:
                    await resp.read(10)

            await asyncio.gather(*(one() for _ in range(8)))
            assert srv.connections == 8
            assert len(client._idle[srv.origin]) == 3
            await one()
            assert srv.connections == 8
            await asyncio.sleep(0.45)
            await one()  # every pooled connection is past keepalive_timeout
            assert srv.connections == 9
        await client.aclose()
    run(main())


def test_malformed_responses(run: Any) -> None:
    replies = {
        "garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        "bad length": b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "one huge header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        "many headers": b"HTTP/1.1 200 OK\r\n" + b"X-H: 0123456789\r\n" * 5000 + b"\r\n",
        "switch": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    }

    async def main() -> None:
        client = UpstreamClient(read_timeout=2)
        for name, reply in replies.items():
            async with RawServer(serve_forever(reply)) as srv:
                with pytest.raises(UpstreamProtocolError):
                    await client.request("GET", srv.origin, b"/", [])
                assert name and srv.connections == 1
        small = UpstreamClient(max_header_bytes=1024)
        async with RawServer(serve_forever(
                b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 2000 + b"\r\nContent-Length: 0\r\n\r\n")
        ) as srv:
            with pytest.raises(UpstreamProtocolError, match="too large"):
                await small.request("GET", srv.origin, b"/", [])

        async def dies_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                idx: int) -> None:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

        async with RawServer(dies_mid_body) as srv:
            resp = await client.request("GET", srv.origin, b"/", [])
            with pytest.raises(UpstreamProtocolError, match="mid-response"):
                await resp.read(100)
            resp.close()
        await client.aclose()
        await small.aclose()
    run(main())


def test_connection_close_not_reused_and_read_limit(run: Any) -> None:
    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient()
            ports = [(await get_json(client, up.origin, b"/close"))["port"] for _ in range(3)]
            assert len(set(ports)) == 3
            with pytest.raises(UpstreamBodyTooLarge):  # declared length over the limit
                async with await client.request("GET", up.origin, b"/x", []) as resp:
                    await resp.read(10)
            resp = await client.request("GET", up.origin, b"/big?2000000", [])
            conn = resp._conn
            assert conn is not None
            with pytest.raises(UpstreamBodyTooLarge):  # chunked, found out while reading
                await resp.read(MiB)
            resp.close()
            await asyncio.sleep(0.05)
            assert conn.closed
            # abandoning a body mid-way closes that connection; the client goes on
            resp = await client.request("GET", up.origin, b"/big?2000000", [])
            async for _ in resp.iter_chunks():
                break
            resp.close()
            assert (await get_json(client, up.origin, b"/x"))["path"] == "/x"
            await client.aclose()
    run(main())


def test_concurrent_requests(run: Any) -> None:
    async def main() -> None:
        async with Uvicorn() as up:
            client = UpstreamClient()

            async def one(i: int) -> None:
                got = await get_json(client, up.origin, b"/item/%d" % i, "POST",
                                     body=b"%d" % i)
                assert got["path"] == f"/item/{i}"
                assert got["body_sha256"] == hashlib.sha256(b"%d" % i).hexdigest()

            await asyncio.gather(*(one(i) for i in range(200)))
            await asyncio.gather(*(one(i) for i in range(200)))  # on the pooled connections
            assert 0 < len(client._idle[up.origin]) <= 200
            await client.aclose()
    run(main())


def test_https_self_signed(run: Any, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "govgate test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def main() -> None:
        async with RawServer(serve_forever(), ssl_context=server_ctx) as srv:
            untrusting = UpstreamClient()
            with pytest.raises(UpstreamConnectError):
                await untrusting.request("GET", srv.origin, b"/", [])
            client = UpstreamClient(
                ssl_context=ssl.create_default_context(cafile=str(tmp_path / "cert.pem")))
            for _ in range(3):
                async with await client.request("GET", srv.origin, b"/", []) as resp:
                    assert await resp.read(10) == b"ok"
            assert srv.connections == 1  # the failed handshake never reached the handler
            await client.aclose()
            await untrusting.aclose()
    run(main())


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_used_from_a_second_loop() -> None:
    ready = threading.Event()
    state: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            srv = RawServer(serve_forever())
            async with srv:
                state["srv"], state["loop"] = srv, asyncio.get_running_loop()
                state["stop"] = stop = asyncio.Event()
                ready.set()
                await stop.wait()
        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    srv: RawServer = state["srv"]
    client = UpstreamClient()

    async def once() -> bytes:
        async with await client.request("GET", srv.origin, b"/", []) as resp:
            return await resp.read(10)

    try:
        assert asyncio.run(once()) == b"ok"  # leaves a pooled connection on a dead loop
        assert uvloop.run(once()) == b"ok"
        gc.collect()
        assert srv.connections == 2
        uvloop.run(client.aclose())
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(5)


def test_request_splitting_refused(run: Any) -> None:
    async def main() -> None:
        client = UpstreamClient()
        origin = Origin("http", "127.0.0.1", 9)
        for headers, target in (([(b"X-A", b"a\r\nX-B: b")], b"/"),
                                ([(b"X-A\n", b"a")], b"/"),
                                ([], b"/ HTTP/1.1\r\nX: y"),
                                ([(b"Content-Length", b"5")], b"/"),
                                ([(b"transfer-encoding", b"chunked")], b"/")):
            with pytest.raises(ValueError):
                await client.request("GET", origin, target, headers)
        assert not issubclass(ValueError, UpstreamError)
        await client.aclose()
    run(main())


def test_early_response_stops_the_upload(run: Any) -> None:
    async def refuses_upload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             idx: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nbig!")
        while await reader.read(65536):  # drained and dropped, as servers do
            pass

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield BLOCK
            await asyncio.sleep(0.001)

    async def main() -> None:
        client = UpstreamClient(read_timeout=5)
        async with RawServer(refuses_upload) as srv:
            for length in (None, 100 * MiB):
                async with await client.request("POST", srv.origin, b"/", [], body=endless(),
                                                content_length=length) as resp:
                    assert resp.status == 413
                    assert await resp.read(100) == b"big!"
            assert srv.connections == 2  # a half-sent request's connection is not reused
        await client.aclose()
    run(main())


def test_cancelled_request_closes_its_connection(run: Any) -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   idx: int) -> None:
        while True:
            head, _ = await read_request(reader)
            if b"/slow" in head:
                await asyncio.sleep(0.5)
            writer.write(OK)

    async def main() -> None:
        client = UpstreamClient()
        async with RawServer(slow) as srv:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.request("GET", srv.origin, b"/slow", []), 0.1)
            for _ in range(2):
                async with await client.request("GET", srv.origin, b"/", []) as resp:
                    assert await resp.read(10) == b"ok"
            # the cancelled exchange's connection was dropped, not handed on with a
            # late answer still in flight
            assert srv.connections == 2
        await client.aclose()
    run(main())


def test_upload_respects_write_flow_control(run: Any) -> None:
    data = BLOCK * 256  # 16 MiB: more than loopback socket buffers hold

    async def late_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          idx: int) -> None:
        await asyncio.sleep(0.3)  # the kernel buffers fill; then the client's must not
        _, body = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n"
                     + hashlib.sha256(body).hexdigest().encode())

    async def main() -> None:
        client = UpstreamClient()
        peak = 0

        async def watched() -> AsyncIterator[bytes]:
            nonlocal peak
            async for chunk in chunks_of(data, 256 * 1024):
                yield chunk
                for conn in client._live:
                    assert conn.transport is not None
                    peak = max(peak, conn.transport.get_write_buffer_size())

        async with RawServer(late_reader) as srv:
            resp = await client.request("PUT", srv.origin, b"/", [], body=watched(),
                                        content_length=len(data))
            async with resp:
                assert await resp.read(100) == hashlib.sha256(data).hexdigest().encode()
        # the transport buffer held a chunk or so, not the megabytes the
        # iterator could have pushed while the server was not reading
        assert 0 < peak < 2 * MiB
        await client.aclose()
    run(main())
