"""CPU per request in process: the ASGI app called directly, no HTTP server in front.

    .venv/bin/python bench/bench_inprocess.py [--requests 4000] [--no-audit]
                                              [--audit-path database|journal]

Two cases, 32 concurrent requests each, after a warm-up, on uvloop:

    token   POST /oauth2/token, client_credentials (client_secret_basic)
    proxy   GET /s/bench/api/x with a bearer token -> nginx returning a small JSON body
            (again for a system with ``assertion: per_caller``: /s/bench-pc/api/x)
    verify  GET /auth/verify as nginx's auth_request sends it (X-Original-URI /api/x,
            X-Original-Method GET, X-Govgate-System bench) with the same bearer token:
            forward-auth's answer alone, no upstream (``--case verify``)

It prints CPU time per request (this process, all threads: the audit writer's
included), which on this shared VM is much steadier than requests per second.
``--no-audit`` replaces the audit append with a no-op, to see what the durable
audit record costs. Used for the breakdowns in docs/sso.md and docs/proxy.md.
``--case token`` runs one case (repeatable); ``--rounds 5`` measures the requests five
times in the same process and prints the median; ``--profile tottime`` prints cProfile's
top 40 for it (CPU-time clock, the event loop's thread only).
``--freeze-heap``: after the warm-up the heap is frozen (``gc.freeze``) as the servers
freeze theirs once started, so that full collections do not re-scan what start-up
loaded (without it, those collections are part of every figure).
``--audit-path journal``: the record is durable in the journal (docs/audit-journal.md);
the indexer does not run during the measured requests, and its catch-up afterwards
(loading those records into the tables) is measured and printed on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import gc
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_idp  # noqa: E402
import bench_proxy  # noqa: E402


def _scope(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]]
           ) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080), "state": {},
            "app": app}


def _caller(app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]],
            body: bytes) -> Callable[[], Awaitable[None]]:
    async def one() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(_scope(app, method, path, headers), receive, send)
        if status != [200]:
            raise RuntimeError(f"{method} {path}: {status}")

    return one


#: cProfile on the event loop's thread (CPU-time clock) sorted by this key, if set
PROFILE: list[str] = []
#: measure this many rounds of the requests and report their median, if set
ROUNDS: list[int] = []
#: after the warm-up, the heap moved to the collector's permanent generation, as the
#: servers do once started (``create_app(freeze_heap=True)``), if set
FREEZE: list[bool] = []
INDEXED: list[float] = []  # the indexer's CPU per record of the last case (journal mode)


def _overrides(audit_path: str) -> dict[str, Any]:
    # journal mode: no indexer round during the measured requests (measured after them)
    return {"audit_path": audit_path, "audit_index_seconds": 3600.0}


async def _measure(services: Any, one: Callable[[], Awaitable[None]], n: int,
                   no_audit: bool) -> float:
    if no_audit:
        async def noop(record: Any) -> None:
            return None

        services.audit.append = noop
    else:
        await services.audit.start()

    async def run(count: int) -> None:
        async def worker(k: int) -> None:
            for _ in range(k):
                await one()

        await asyncio.gather(*(worker(count // 32) for _ in range(32)))

    indexer = services.audit.indexer
    await run(320)
    if indexer is not None:
        await asyncio.to_thread(indexer.run_once)
    if FREEZE:
        gc.collect()
        gc.freeze()
    profiler = cProfile.Profile(time.thread_time) if PROFILE else None
    if profiler is not None:
        profiler.enable()
    rounds = []
    for _ in range(ROUNDS[0] if ROUNDS else 1):
        started = time.process_time()
        await run(n)
        rounds.append((time.process_time() - started) / n * 1e6)
    hot = sorted(rounds)[len(rounds) // 2]
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler).sort_stats(PROFILE[0]).print_stats(40)
    if indexer is not None:
        started = time.process_time()
        loaded = await asyncio.to_thread(indexer.run_once)
        INDEXED.append((time.process_time() - started) / max(loaded, 1) * 1e6)
    return hot


def token_case(n: int, no_audit: bool, audit_path: str = "database") -> float:
    from gateway.app import create_app
    from gateway.services import open_services
    from gateway.settings import load_settings

    home = Path(tempfile.mkdtemp(prefix="govgate-inproc-idp-"))
    try:
        bench_idp.prepare(home, 8080)
        settings = load_settings(bench_idp._env(home), {"issuer": "http://127.0.0.1:8080",
                                                        **_overrides(audit_path)})
        services = open_services(settings, writer="gateway")
        app = create_app(services)
        basic = base64.b64encode(":".join(bench_idp.FINANCE).encode())
        body = b"grant_type=client_credentials"
        one = _caller(app, "POST", "/oauth2/token", [
            (b"host", b"127.0.0.1:8080"), (b"authorization", b"Basic " + basic),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode())], body)
        return _run(_measure(services, one, n, no_audit))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def proxy_case(n: int, no_audit: bool, audit_path: str = "database",
               system: str = "bench", verify: bool = False) -> float:
    from gateway.app import create_app
    from gateway.proxy.endpoint import ProxyConfig
    from gateway.root import Seams
    from gateway.services import open_services
    from gateway.settings import load_settings

    tmp = Path(tempfile.mkdtemp(prefix="govgate-inproc-proxy-"))
    ports = {k: bench_proxy.free_port() for k in ("a", "b", "c", "e", "f", "g")}
    (tmp / "nginx.conf").write_text(bench_proxy.NGINX_CONF.format(
        tmp=tmp, body=bench_proxy.BODY, **ports))
    nginx = subprocess.Popen([bench_proxy.NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
    try:
        token = bench_proxy.setup_govgate(tmp / "home", ports["a"])
        bench_proxy.wait_port(ports["a"])
        services = open_services(load_settings({"GOVGATE_HOME": str(tmp / "home")},
                                               _overrides(audit_path)))
        app = create_app(services, seams=Seams(proxy_config=ProxyConfig(rate=1e9, burst=1e9)))
        sent = [(b"host", b"127.0.0.1:8080"), (b"authorization", f"Bearer {token}".encode()),
                (b"accept", b"*/*")]
        if verify:  # what nginx's auth_request subrequest carries (bench_proxy's (e))
            one = _caller(app, "GET", "/auth/verify", [
                *sent, (b"x-original-uri", b"/api/x"), (b"x-original-method", b"GET"),
                (b"x-govgate-system", system.encode())], b"")
        else:
            one = _caller(app, "GET", f"/s/{system}/api/x", sent, b"")
        return _run(_measure(services, one, n, no_audit))
    finally:
        nginx.terminate()
        nginx.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def _run(coro: Awaitable[float]) -> float:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type, no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--no-audit", action="store_true")
    parser.add_argument("--audit-path", choices=("database", "journal"), default="database")
    parser.add_argument("--case", action="append",
                        choices=("token", "proxy", "per_caller", "verify", "verify_per_caller"),
                        help="run only these cases (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure the requests this many times, print the median")
    parser.add_argument("--freeze-heap", action="store_true",
                        help="after the warm-up, gc.freeze() the heap as the servers do")
    parser.add_argument("--profile", choices=("tottime", "cumulative"),
                        help="print cProfile's top 40 (CPU-time clock) for each case")
    args = parser.parse_args(sys.argv[2:] if sys.argv[1:2] == ["bench_inprocess"] else None)
    n = max(320, min(args.requests, 100_000))
    path = args.audit_path
    audit = ("no-op audit" if args.no_audit else
             f"durable audit (SQLite, audit_path = {path})")
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    print(f"in process, {when} UTC, 32 concurrent, {n} requests, {audit}")
    if args.profile:
        PROFILE.append(args.profile)
    if args.freeze_heap:
        FREEZE.append(True)
    ROUNDS.append(max(1, min(args.rounds, 50)))
    cases: tuple[tuple[str, str, Callable[[int, bool, str], float]], ...] = (
        ("token", "token (client_credentials) ", token_case),
        ("proxy", "proxy (bearer, -> nginx)   ", proxy_case),
        ("per_caller", "proxy, assertion per_caller", lambda n, no_audit, path: proxy_case(
            n, no_audit, path, system="bench-pc")),
        ("verify", "forward-auth (/auth/verify)", lambda n, no_audit, path: proxy_case(
            n, no_audit, path, verify=True)),
        ("verify_per_caller", "forward-auth, per_caller   ", lambda n, no_audit, path:
            proxy_case(n, no_audit, path, system="bench-pc", verify=True)))
    for key, name, case in cases:
        if args.case and key not in args.case:
            continue
        INDEXED.clear()
        line = f"  {name}  {case(n, args.no_audit, path):6.0f} us CPU/request"
        if INDEXED:
            line += f"  + indexer {INDEXED[0]:4.0f} us CPU/record, afterwards"
        print(line)


if __name__ == "__main__":
    main()
