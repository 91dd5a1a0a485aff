"""The server protocol under every route (gateway.web.http_server), on both of uvicorn's
HTTP/1.1 implementations: trailers never become headers, one head size limit, a
header read timeout."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from gateway.web.http_server import HeadLimits
from tests.proxy.conftest import Served, World, exchange, status_of

LIMITS = HeadLimits(max_header_bytes=32 * 1024, max_headers=100, header_timeout=1.0)


@pytest.fixture(params=["httptools", "h11"])
async def gateway(request: pytest.FixtureRequest, world: World) -> AsyncIterator[Served]:
    """A second gateway over the world's services, on the implementation named by the
    parameter, with a 1 s header timeout."""
    from gateway.app import create_app

    async with Served(create_app(world.services), http=request.param,
                      limits=LIMITS) as served:
        yield served


def chunked_post(target: str, headers: list[str], trailers: list[str]) -> bytes:
    head = [f"POST {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
            "Transfer-Encoding: chunked", *headers]
    return ("\r\n".join(head) + "\r\n\r\n" + "5\r\nhello\r\n0\r\n"
            + "".join(f"{t}\r\n" for t in trailers) + "\r\n").encode("latin-1")


# -- trailers ----------------------------------------------------------------------


async def test_a_bearer_token_sent_only_as_a_trailer_never_authenticates(
    world: World, gateway: Served
) -> None:
    token = world.token()
    response = await exchange(gateway.port, chunked_post(
        "/s/echo/api/upload", ["Trailer: Authorization"], [f"Authorization: Bearer {token}"]))
    assert status_of(response) == 401, response[:300]
    assert world.echo.seen == []
    record = world.audit.records[-1]
    assert record.status == 401 and record.actor_user is None


async def test_trailer_fields_never_reach_the_upstream(world: World, gateway: Served) -> None:
    response = await exchange(gateway.port, chunked_post(
        "/s/echo/api/upload", [f"Authorization: Bearer {world.token()}"],
        ["X-Smuggled: yes", "X-Remote-User: admin", "Content-Type: text/evil"]))
    assert status_of(response) == 200, response[:300]
    seen = world.echo.seen[-1]
    names = [k.lower() for k, _ in seen["headers"]]
    assert "x-smuggled" not in names and "x-remote-user" not in names
    assert "content-type" not in names
    assert seen["body_len"] == 5


async def test_a_huge_trailer_section_is_cut_off(world: World, gateway: Served) -> None:
    data = chunked_post("/s/echo/api/upload", [f"Authorization: Bearer {world.token()}"],
                        ["X-Big: " + "a" * (512 * 1024)])
    response = await exchange(gateway.port, data)
    assert status_of(response) != 200  # refused or closed, never buffered whole


# -- one size limit for the head, on every route ------------------------------------


def _send_head_blocking(port: int, head: bytes) -> bytes:
    """Send ``head`` in 16 KiB slices from a plain socket (no copy of it is kept) and
    return what the server answered; stops when the server stops reading."""
    view = memoryview(head)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            for start in range(0, len(view), 16384):
                sock.sendall(view[start:start + 16384])
        got = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                got += chunk
        return got


@pytest.mark.parametrize("path", ["/healthz", "/portal/login", "/s/echo/api/x"])
async def test_a_1_mb_header_is_refused_everywhere_without_being_buffered(
    gateway: Served, path: str
) -> None:
    head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".encode()
            + b"a" * (1024 * 1024) + b"\r\nConnection: close\r\n\r\n")
    tracemalloc.start()
    try:
        response = await asyncio.to_thread(_send_head_blocking, gateway.port, head)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status_of(response) in (431, 0), response[:200]
    if response:
        assert b"headers_too_large" in response and response.count(b"\r\ndate: ") == 1
    # the parser held at most the limit plus one socket read, never the megabyte
    assert peak < 768 * 1024, peak


async def test_the_limit_counts_fields_and_bytes_and_lets_a_normal_head_pass(
    gateway: Served,
) -> None:
    def get(path: str, fields: list[str]) -> bytes:
        return ("\r\n".join([f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                             *fields]) + "\r\n\r\n").encode()

    ok = await exchange(gateway.port, get("/healthz", [f"X-F{i}: v" for i in range(90)]))
    assert status_of(ok) == 200
    ok = await exchange(gateway.port, get("/healthz", ["X-Pad: " + "p" * 30_000]))
    assert status_of(ok) == 200
    many = await exchange(gateway.port, get("/healthz", [f"X-F{i}: v" for i in range(101)]))
    assert status_of(many) == 431
    # 40 fields of 1000 bytes arrive in one read, complete: counted all the same
    big = await exchange(gateway.port, get("/portal/login",
                                           [f"X-Pad-{i}: {'v' * 1000}" for i in range(40)]))
    assert status_of(big) == 431
    long_target = await exchange(gateway.port, get("/healthz?" + "q" * 40_000, []))
    assert status_of(long_target) in (431, 0)


# -- the header read timeout --------------------------------------------------------


async def test_slow_header_connections_are_closed_and_the_gateway_keeps_serving(
    world: World, gateway: Served
) -> None:
    opened = time.monotonic()
    slow: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(50):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        if i % 5:  # most send part of a head; every fifth says nothing at all
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        slow.append((reader, writer))

    async def trickle() -> None:
        # a byte every 0.2 s: activity must not extend the deadline
        with contextlib.suppress(ConnectionError):
            for _ in range(20):
                for _, writer in slow[1::5]:
                    if not writer.is_closing():
                        writer.write(b"a")
                await asyncio.sleep(0.2)

    trickling = asyncio.create_task(trickle())
    token = world.token()
    try:
        # meanwhile, ordinary requests are answered at once
        for _ in range(5):
            started = time.monotonic()
            r = await exchange(gateway.port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                             b"Connection: close\r\n\r\n")
            assert status_of(r) == 200
            r = await exchange(gateway.port, (
                f"GET /s/echo/api/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                f"Authorization: Bearer {token}\r\n\r\n").encode())
            assert status_of(r) == 200
            assert time.monotonic() - started < 1.0

        async def closed(reader: asyncio.StreamReader) -> bytes:
            got = b""
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(4096):
                    got += chunk
            return got

        answers = await asyncio.wait_for(
            asyncio.gather(*(closed(reader) for reader, _ in slow)), 5.0)
        elapsed = time.monotonic() - opened
        assert 0.9 <= elapsed < 3.0, elapsed
        for i, answer in enumerate(answers):
            # part of a head: 408, then closed; nothing sent: just closed
            assert status_of(answer) == (408 if i % 5 else 0), answer[:100]
    finally:
        trickling.cancel()
        for _, writer in slow:
            writer.close()


async def test_the_clock_restarts_after_each_response_on_a_kept_alive_connection(
    gateway: Served,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    try:
        for _ in range(2):  # each head in time: answered, the connection stays
            await asyncio.sleep(0.6)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            assert status_of(head) == 200
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and no end
        rest = await asyncio.wait_for(reader.read(), 3)
        assert status_of(rest) == 408 and 0.9 <= time.monotonic() - started < 2.5
    finally:
        writer.close()


async def test_pipelined_requests_and_a_body_in_the_same_read_pass(
    world: World, gateway: Served
) -> None:
    token = world.token()
    post = (f"POST /s/echo/api/a HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}"
            f"\r\nContent-Length: 40000\r\n\r\n").encode() + b"b" * 40_000
    last = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    response = await exchange(gateway.port, post + post + last)
    assert response.count(b"HTTP/1.1 200 OK") == 3, response[:300]
    assert [s["body_len"] for s in world.echo.seen] == [40_000, 40_000]
