"""A real upstream (echo) and a real gateway, both uvicorn servers on 127.0.0.1,
and a raw HTTP/1.1 client that sends request targets exactly as written."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route

from audit.record import AuditRecord
from audit.writer import AuditLog
from gateway.app import create_app
from gateway.proxy.endpoint import ProxyConfig
from gateway.root import Gateway
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.web.http_server import HeadLimits, ServerConfig
from tests.conftest import UNKNOWN_PASSWORD, initialised
from tests.in_process import AsgiUpstreams, Resp, call
from tests.served import QuickServer
from tests.tokens import access_token, own_client
from tests.wiring import apply_state, gateway_for


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def front_proxy(argv: list[str], port: int, *, env: dict[str, str] | None = None,
                      tries: int = 200, log: Path | None = None) -> AsyncIterator[int]:
    """A front proxy (nginx, Caddy) run as ``argv``, once it accepts on ``port`` (tried
    every 20 ms, ``tries`` times); stopped after. One that exits first fails the test
    with its error output, and ``log``'s content when given (an nginx whose
    configuration names an ``error_log`` writes its errors there once it has read it)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        for _ in range(tries):
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                if log is not None and log.exists():
                    err += log.read_text(errors="replace")
                raise AssertionError(f"{argv[0]} exited: {err}")
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                await w.wait_closed()
                break
            except OSError:
                await asyncio.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


class Served:
    """``app`` on a uvicorn server as ``govgate serve`` runs it (gateway.web.http_server's
    protocol: httptools, or ``http="h11"``; ``limits`` default to the settings')."""

    def __init__(self, app: Any, *, http: str = "httptools",
                 limits: HeadLimits | None = None, **tls: Any) -> None:
        """``tls``: uvicorn's ``ssl_*`` options, for an HTTPS server."""
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.server = QuickServer(ServerConfig(
            app, limits=limits or HeadLimits(), http=http, lifespan="off",
            log_level="error", ws="none", access_log=False, proxy_headers=False, **tls))
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Served:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            await asyncio.sleep(0.002)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task
        self.sock.close()


@dataclass
class Echo:
    """What the upstream received, request by request."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    def paths(self) -> list[str]:
        return [s["raw_path"] for s in self.seen]


def echo_app(echo: Echo) -> Starlette:
    async def anything(request: Request) -> Response:
        path = request.url.path
        if path.endswith("/redirect"):
            # a redirect to ?to=, "{self}" standing for the upstream's own origin
            to = request.query_params.get("to", "").replace(
                "{self}", f"{request.url.scheme}://{request.headers['host']}")
            return Response(status_code=307, headers={
                "Location": to, "Content-Location": to, "Refresh": f"0; url={to}"})
        if path == "/slow":
            await asyncio.sleep(3)
        if path == "/big":
            async def gen() -> AsyncIterator[bytes]:
                for _ in range(32):
                    yield b"x" * 65536
            return StreamingResponse(gen(), media_type="application/octet-stream")
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
        record = {
            "method": request.method,
            "raw_path": request.scope.get("raw_path", b"").decode("latin-1"),
            "query": request.scope.get("query_string", b"").decode("latin-1"),
            "headers": [(k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in request.scope["headers"]],
            "client_port": request.client.port if request.client else None,
            "body_len": size,
            "body_sha256": digest.hexdigest(),
        }
        echo.seen.append(record)
        return JSONResponse(record, headers={"Set-Cookie": "govgate_session=evil; Path=/",
                                             "X-Upstream": "yes"})

    async def vehicles(request: Request) -> Response:
        return JSONResponse({"items": []})

    # Starlette's own trailing-slash redirect, absolute and naming the upstream
    # (GET /slashy/api/vehicles/ → 307 Location: http://127.0.0.1:<port>/slashy/api/vehicles)
    slashy = Starlette(routes=[Route("/api/vehicles", vehicles)])
    return Starlette(routes=[Mount("/slashy", slashy),
                             Route("/{path:path}", anything,
                                   methods=["GET", "POST", "PUT", "DELETE", "PATCH"])])


class RecordingAudit:
    """A real, durable AuditLog that also keeps the records for the test to read;
    ``fail = True`` makes every append raise, as a dead database would."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.records: list[AuditRecord] = []
        self.fail = False

    def __getattr__(self, name: str) -> Any:
        # everything but append (start, close, queue_depth, ...) is the real log's
        return getattr(self.log, name)

    async def append(self, record: AuditRecord) -> Any:
        if self.fail:
            from audit.errors import AuditWriteError

            raise AuditWriteError("disk on fire")
        stored = await self.log.append(record)
        self.records.append(record)
        return stored

    async def append_durable(self, record: AuditRecord) -> None:
        await self.append(record)


ORG: dict[str, Any] = {
    "regions": [{"code": "gx", "name": "某省"}],
    "departments": [
        {"code": "jgswj", "name": "机关事务管理局", "region": "gx"},
        {"code": "czt", "name": "财政厅", "region": "gx"},
    ],
}


@pytest.fixture
def base_services(settings: Settings) -> Iterator[Services]:
    initialised(settings, UNKNOWN_PASSWORD)
    svc = open_services(settings)
    apply_state(svc, ORG)
    yield svc
    svc.close()


@dataclass
class World:
    services: Services
    echo: Echo
    upstream: Served | None  # None: the echo app answers in process
    gateway: Served | None  # the app, listening; None: called in process (``app``)
    audit: RecordingAudit
    built: Gateway  # what the app is made of (gateway.root)
    app: Any = None

    @contextlib.asynccontextmanager
    async def rebuilt(self, **seams: Any) -> AsyncIterator[Gateway]:
        """The gateway served anew with ``seams`` (another proxy config, extra
        decide or shape steps) for the requests inside the block."""
        given = {"proxy_config": self.built.seams.proxy_config,
                 "upstream_client": self.built.seams.upstream_client, **seams}
        built = gateway_for(self.services, **given)
        old = self.gateway, self.built, self.app
        if self.gateway is None:
            self.built, self.app = built, create_app(built)
            try:
                yield built
            finally:
                self.gateway, self.built, self.app = old
                await built.aclose()
            return
        async with Served(create_app(built),
                          limits=HeadLimits.from_settings(self.services.settings)) as served:
            self.gateway, self.built = served, built
            try:
                yield built
            finally:
                self.gateway, self.built, self.app = old
                await built.aclose()  # the app runs without its lifespan here

    def token(self, **claims: Any) -> str:
        """An access token of ``zhang.san`` (jgswj, staff) through ``office-web``, with
        ``claims`` changed (``_typ``: the JOSE ``typ``); a user of another department
        through a client of theirs (:func:`own_client`) unless ``client_id`` is given."""
        given = {"sub": "zhang.san", "department": "jgswj", "roles": ["staff"], **claims}
        # through a system of the user's own department (a client of another one makes
        # a request by that department's system: decided for both, gateway.proxy.through)
        given.setdefault("client_id", own_client(str(given["department"]))
                         if given["sub"] is not None else "office-web")
        return access_token(self.services, typ=given.pop("_typ", "at+jwt"), **given)

    async def request(self, method: str, target: str, *, token: str | None = None,
                      headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
                      chunks: list[bytes] | None = None) -> Resp:
        hdrs = list(headers or [])
        if token:
            hdrs.append(("Authorization", f"Bearer {token}"))
        if self.gateway is None:
            assert chunks is None, "a chunked body needs the real server (world)"
            return await call(self.app, method, target, hdrs, body)
        return await raw_request(self.gateway.port, method, target, hdrs, body, chunks)


async def exchange(port: int, data: bytes, *, wait: float = 5.0) -> bytes:
    """Send ``data`` at once and return every byte the server answers, until it closes
    (or ``wait`` passes): the response exactly as sent, repeated headers included."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = bytearray()
    try:
        writer.write(data)
        await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(wait):
                while chunk := await reader.read(65536):
                    out += chunk
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return bytes(out)


def status_of(response: bytes) -> int:
    """The status of a raw response; 0 for none (the connection closed unanswered)."""
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


async def raw_request(port: int, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes | None = None, chunks: list[bytes] | None = None) -> Resp:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buf = bytearray()

    async def read_all() -> None:
        # read while sending: a server refusing a body closes early, and a reset
        # would otherwise throw away the answer it already sent
        try:
            while chunk := await reader.read(65536):
                buf.extend(chunk)
        except ConnectionError:
            pass

    reading = asyncio.create_task(read_all())
    try:
        lines = [f"{method} {target} HTTP/1.1"]
        if not any(k.lower() == "host" for k, _ in headers):
            lines.append(f"Host: 127.0.0.1:{port}")
        lines.append("Connection: close")
        lines += [f"{k}: {v}" for k, v in headers]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        if chunks is not None:
            lines.append("Transfer-Encoding: chunked")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if body:
            writer.write(body)
        if chunks is not None:
            try:
                for c in chunks:
                    writer.write(f"{len(c):x}\r\n".encode() + c + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.001)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
            except ConnectionError:
                pass
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        await asyncio.wait_for(reading, 10)
        data = bytes(buf)
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs: dict[str, str] = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding") == "chunked":
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        rest = out
    return Resp(int(status_line.split()[1]), hdrs, rest)


# the echo system's upstream URL in a world without sockets (nothing listens there)
IN_PROCESS_ECHO = "127.0.0.1:59999"


@pytest.fixture
async def quick_world(base_services: Services) -> AsyncIterator[World]:
    """``world`` without sockets: the app called in process, the echo upstream an app
    in process behind the proxy (``tests.in_process``). For tests about decisions,
    headers and audit records; what the wire shows needs ``world``."""
    echo = Echo()
    log = AuditLog(base_services.engine, writer_id="proxy-test")
    audit = RecordingAudit(log)
    base_services.audit = audit  # type: ignore[assignment]
    built = gateway_for(base_services, proxy_config=WORLD_PROXY, upstream_client=AsgiUpstreams(
        {IN_PROCESS_ECHO: echo_app(echo)}))
    built.state_applier().apply({"systems": world_systems(f"http://{IN_PROCESS_ECHO}")})
    yield World(base_services, echo, None, None, audit, built, app=create_app(built))
    await built.aclose()
    await log.close()


WORLD_PROXY = ProxyConfig(max_body_bytes=64 * 1024, read_timeout=2.0, connect_timeout=5.0,
                          rate=1000, burst=1000)


def world_systems(echo_upstream: str) -> list[dict[str, Any]]:
    return [
        {"code": "echo", "name": "回显系统", "department": "jgswj", "upstream": echo_upstream},
        {"code": "down", "name": "停机系统", "department": "jgswj",
         "upstream": "http://127.0.0.1:9"},
    ]


@contextlib.asynccontextmanager
async def served_world(base_services: Services) -> AsyncIterator[World]:
    """The gateway and the echo upstream, each a real server on 127.0.0.1."""
    echo = Echo()
    log = AuditLog(base_services.engine, writer_id="proxy-test")
    audit = RecordingAudit(log)
    base_services.audit = audit  # type: ignore[assignment]
    built = gateway_for(base_services, proxy_config=WORLD_PROXY)
    async with Served(echo_app(echo)) as upstream:
        built.state_applier().apply({"systems": world_systems(
            f"http://127.0.0.1:{upstream.port}")})
        limits = HeadLimits.from_settings(base_services.settings)
        async with Served(create_app(built), limits=limits) as gateway:
            yield World(base_services, echo, upstream, gateway, audit, built)
        await built.aclose()
    await log.close()


@pytest.fixture
async def world(base_services: Services) -> AsyncIterator[World]:
    async with served_world(base_services) as made:
        yield made


@pytest.fixture
async def socket_world(base_services: Services) -> AsyncIterator[World]:
    """``world``, for a test in a module whose ``world`` is the ``quick_world``."""
    async with served_world(base_services) as made:
        yield made
