"""The response head held for its body (gateway.web.http_server._HeadWithBody): a small
answer leaves in one write, a streamed one still gets its head at once, nothing is
reordered or lost (HEAD, keep-alive, close)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.web.http_server import _COALESCE, _HeadWithBody
from tests.proxy.conftest import Served


class Recording:
    """A transport that keeps each write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_head_and_small_body_in_one_write_large_body_apart() -> None:
    loop = asyncio.get_running_loop()
    t = Recording()
    w = _HeadWithBody(t, loop)  # type: ignore[arg-type]
    w.write(b"HEAD\r\n\r\n")
    assert t.writes == []
    w.write(b"body")
    assert t.writes == [b"HEAD\r\n\r\nbody"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert t.writes == [b"HEAD\r\n\r\nbody"]
    big = b"x" * (_COALESCE + 1)
    t2 = Recording()
    w2 = _HeadWithBody(t2, loop)  # type: ignore[arg-type]
    w2.write(b"H")
    w2.write(big)
    w2.write(b"more")
    assert t2.writes == [b"H", big, b"more"]


async def test_a_head_without_a_body_leaves_at_the_end_of_the_turn_or_on_close() -> None:
    loop = asyncio.get_running_loop()
    t = Recording()
    w = _HeadWithBody(t, loop)  # type: ignore[arg-type]
    w.write(b"HEAD")
    await asyncio.sleep(0)
    assert t.writes == [b"HEAD"]
    w.write(b"later")
    assert t.writes == [b"HEAD", b"later"]
    t2 = Recording()
    w2 = _HeadWithBody(t2, loop)  # type: ignore[arg-type]
    w2.write(b"HEAD")
    w2.close()
    assert t2.writes == [b"HEAD"] and t2.closed


def streaming_app(release: asyncio.Event) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain")]})
            await release.wait()  # the body only after the client saw the head
            await send({"type": "http.response.body", "body": b"late", "more_body": False})
            return
        body = b"small:" + scope["path"].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_through_the_server_streamed_head_first_keep_alive_and_head() -> None:
    release = asyncio.Event()
    async with Served(streaming_app(release)) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        try:
            writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ") and b"chunked" in head
            release.set()
            async with asyncio.timeout(5):
                assert await reader.readuntil(b"0\r\n\r\n") == b"4\r\nlate\r\n0\r\n\r\n"
            # the same connection: two small answers, then a HEAD, in order
            writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /bb HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"HEAD /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            async with asyncio.timeout(5):
                rest = await reader.read(-1)
        finally:
            writer.close()
    answers = rest.split(b"HTTP/1.1 ")[1:]
    assert [a.split(b"\r\n\r\n", 1)[1] for a in answers] == [b"small:/a", b"small:/bb", b""]
    assert all(a.startswith(b"200 ") for a in answers)
    assert b"content-length: 8" in answers[2]
