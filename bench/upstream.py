"""A department system for load and fault runs: a small HTTP/1.1 server on 127.0.0.1
in its own process, which answers JSON fast and, on the paths below, misbehaves
the ways an upstream does (issue #16). It counts its open connections, so a run can
check that the gateway's pool gives back every connection a fault took.

    python -m bench.upstream --port 9300          (prints "ready <port>" when listening)

    GET  /api/items...       200 JSON {"items": [...]}: a catalogue resource's records
    GET  /api/badjson        200 application/json that is not JSON (a shaped route: 502)
    *    /api/...            200 JSON {"ok": true, "path": ...}
    GET  /fault/slow?ms=N    the JSON answer after N ms
    GET  /fault/hang         reads the request and never answers
    GET  /fault/reset        a head declaring 200 000 bytes, 1 000 of them, then a TCP reset
    GET  /fault/reset-stream the same with chunked framing (streamed through the gateway)
    GET  /fault/garbage      bytes that are not HTTP, then close
    GET  /_stats             {"open": connections open besides this one, "served": requests}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
from urllib.parse import parse_qs

ITEMS = {"items": [{"id": i, "name": f"item-{i}", "owner": "张三", "phone": "13907710021"}
                   for i in range(1, 6)]}
_ITEMS = json.dumps(ITEMS, ensure_ascii=False).encode()


class _Counts:
    open = 0
    served = 0


def _response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (b"HTTP/1.1 %d OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (status, content_type, len(body), body))


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN: SO_LINGER on, zero seconds."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport = writer.transport
    transport.abort()


async def _answer(path: str, query: str, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> bool:
    """Write the answer to one request; False: the connection is finished."""
    if path.startswith("/api/items"):
        writer.write(_response(200, _ITEMS))
    elif path == "/api/badjson":
        writer.write(_response(200, b'{"items": [{"id": 1, "name": '))
    elif path.startswith("/api/"):
        writer.write(_response(200, json.dumps({"ok": True, "path": path}).encode()))
    elif path == "/fault/slow":
        ms = int(parse_qs(query).get("ms", ["500"])[0])
        await asyncio.sleep(ms / 1000)
        writer.write(_response(200, b'{"slow": true}'))
    elif path == "/fault/hang":
        await reader.read()  # until the gateway gives up and closes the connection
        return False
    elif path == "/fault/reset":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 200000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.05)
        _reset(writer)
        return False
    elif path == "/fault/reset-stream":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"x" * 1000 + b"\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        _reset(writer)
        return False
    elif path == "/fault/garbage":
        writer.write(b"SSH-2.0-OpenSSH_9.2 this is not HTTP\r\n\r\n\x00\xff\xfe")
        await writer.drain()
        return False
    elif path == "/_stats":
        writer.write(_response(200, json.dumps(
            {"open": _Counts.open - 1, "served": _Counts.served}).encode()))
    else:
        writer.write(_response(404, b'{"error": "not found"}'))
    return True


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    _Counts.open += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            request_line, *lines = head.decode("latin-1").split("\r\n")
            target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
            length = 0
            chunked = False
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
                elif name.strip().lower() == "transfer-encoding":
                    chunked = "chunked" in value.lower()
            if chunked:
                while True:  # read and drop the chunks
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            path, _, query = target.partition("?")
            _Counts.served += 1
            if not await _answer(path, query, reader, writer):
                return
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        _Counts.open -= 1
        with contextlib.suppress(Exception):
            writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(_connection, "127.0.0.1", port, backlog=1024)
    print(f"ready {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port))
        return
    uvloop.run(serve(args.port))


if __name__ == "__main__":
    sys.exit(main())
