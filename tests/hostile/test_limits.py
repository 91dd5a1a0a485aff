"""Oversized and numerous things and slow clients, on the application's routes, through
the real server.

tests/proxy/test_server_protocol.py has the head on every route (a 1 MB header, too
many fields, a 40 KB target: 431; slow heads: 408) on both protocols;
tests/proxy/test_proxy.py the proxy's bodies (413 declared or streamed) and a body that
stops arriving (408); tests/catalogue/test_api_bodies.py the JSON API's bodies (1 MiB,
depth); tests/gateway/test_every_route.py a 2 MB body on every route (never a 5xx).
Here what the application's other routes (the sign-in, the token endpoint, every
portal form) do with a body far larger than any of them takes, declared or streamed,
with one that stops arriving, and with thousands of query parameters and form fields."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.app import create_app
from tests.proxy.conftest import Served, World, exchange, raw_request, status_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

FORM_ROUTES = ["/portal/login", "/oauth2/token", "/oauth2/introspect", "/oauth2/logout",
               "/portal/logout", "/portal/account/password", "/saml/sso"]


def post_head(path: str, length: int | None, content_type: str =
              "application/x-www-form-urlencoded") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else \
        "Transfer-Encoding: chunked"
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Type: {content_type}\r\n{framing}\r\n\r\n").encode()


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
        proxy_world: World) -> None:
    for path in [*FORM_ROUTES, "/api/v1/account/password"]:
        started = time.monotonic()
        answer = await exchange(proxy_world.gateway.port, post_head(
            path, 100 * 1024 * 1024, "application/json" if "/api/" in path
            else "application/x-www-form-urlencoded") + b"a" * 1000, wait=3.0)
        assert status_of(answer) == 413, (path, answer[:200])
        assert b"content_too_large" in answer, path
        assert time.monotonic() - started < 2.0
    refused = [r for r in proxy_world.audit.records if r.status == 413]
    assert len(refused) >= len(FORM_ROUTES)  # audited with the target as sent


def _stream_until_answered(port: int, head: bytes, total: int) -> tuple[bytes, int]:
    """Send ``head`` and then up to ``total`` body bytes in 64 KiB chunks of a chunked
    body (a form of fields of 64 KiB each: none too large alone), stopping when the
    server answers or closes: the answer and the bytes sent."""
    piece = b"&f=" + b"x" * (65536 - 3)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(5)
        sock.sendall(head)
        sock.setblocking(False)
        answer = b""
        while sent < total:
            with contextlib.suppress(BlockingIOError):
                answer += sock.recv(65536)
            if answer:
                break
            try:
                sock.sendall(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                time.sleep(0.01)
                continue
            sent += len(piece)
        sock.setblocking(True)
        with contextlib.suppress(OSError):
            while data := sock.recv(65536):
                answer += data
    return answer, sent


async def test_a_streamed_body_is_cut_off_at_the_limit(proxy_world: World) -> None:
    """A chunked form of 32 MiB to the token endpoint and the sign-in: answered 413 once
    the limit is passed, long before all of it was sent (nothing holds 32 MiB)."""
    for path in ("/oauth2/token", "/portal/login"):
        answer, sent = await asyncio.to_thread(
            _stream_until_answered, proxy_world.gateway.port, post_head(path, None),
            32 * 1024 * 1024)
        assert status_of(answer) == 413, (path, answer[:200])
        assert sent < 16 * 1024 * 1024, (path, sent)  # the limit and the socket buffers


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def impatient(proxy_world: World) -> AsyncIterator[Served]:
    """The gateway again, with a body timeout of half a second."""
    services = proxy_world.services
    normal = services.settings
    services.settings = dataclasses.replace(normal, body_timeout_seconds=0.5)
    try:
        async with Served(create_app(proxy_world.built)) as served:
            yield served
    finally:
        services.settings = normal


async def test_a_body_that_stops_arriving_is_answered_408(impatient: Served) -> None:
    """Slow clients: a form that stops after ten bytes (or sends a byte at a time too
    slowly) is answered 408 and the connection freed; the server goes on answering."""
    started = time.monotonic()
    answers = await asyncio.gather(*(
        exchange(impatient.port, post_head(path, 100) + b"username=a", wait=5.0)
        for path in FORM_ROUTES))
    for path, answer in zip(FORM_ROUTES, answers, strict=True):
        # 408; or, for a page that needs a session first, its redirect (the body unread)
        expected = (303, 408) if path.startswith(("/portal/account", "/portal/logout")) \
            else (408,)
        assert status_of(answer) in expected, (path, answer[:200])
    assert time.monotonic() - started < 3.0
    r = await raw_request(impatient.port, "GET", "/healthz", [])
    assert r.status == 200


async def test_a_complete_body_is_not_held_to_the_timeout(impatient: Served) -> None:
    """The deadline is for the body only: a response that takes longer than it is not
    cut off (Starlette listens on the same channel for a disconnect meanwhile)."""
    r = await raw_request(impatient.port, "POST", "/portal/login",
                          [("Content-Type", "application/x-www-form-urlencoded")],
                          b"username=a&password=b")
    assert r.status in (200, 400)
    await asyncio.sleep(0.6)
    r = await raw_request(impatient.port, "GET", "/healthz", [])
    assert r.status == 200


async def test_thousands_of_parameters_and_fields(proxy_world: World) -> None:
    port = proxy_world.gateway.port
    query = "&".join(f"p{i}=v" for i in range(3000))  # 21 KB: under the head limit
    for path in ("/portal/login", "/oauth2/authorize", "/healthz", "/cas/login",
                 "/.well-known/openid-configuration"):
        started = time.monotonic()
        r = await raw_request(port, "GET", f"{path}?{query}", [])
        assert r.status < 500, (path, r.status)
        assert time.monotonic() - started < 2.0, path
    many = "&".join(f"f{i}=v" for i in range(100_000)).encode()  # 1.2 MB of fields
    for path in ("/portal/login", "/oauth2/token"):
        started = time.monotonic()
        r = await raw_request(port, "POST", path, [
            ("Content-Type", "application/x-www-form-urlencoded")], many)
        assert r.status < 500, (path, r.status)
        assert time.monotonic() - started < 3.0, path
    boundary = "b0undary"
    parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\n"
                    f"v\r\n" for i in range(5000)) + f"--{boundary}--\r\n"
    r = await raw_request(port, "POST", "/portal/login", [
        ("Content-Type", f"multipart/form-data; boundary={boundary}")], parts.encode())
    assert 400 <= r.status < 500, r.status
