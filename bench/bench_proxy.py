"""Proxy benchmark, one command, loopback only, bounded (about 90 s):

    .venv/bin/python bench/bench_proxy.py [--duration 10] [--connections 32]
                                          [--audit-path journal|database]

Same upstream for every case: nginx returning a small JSON body.

    (a) upstream direct                   nginx
    (b) nginx as a plain reverse proxy    nginx -> nginx
    (c) a bare aiohttp forwarder          aiohttp.web + ClientSession -> nginx
    (c2) govgate's transport alone        uvicorn (httptools, uvloop) + gateway.proxy.upstream_http,
                                          a raw ASGI forwarder: no token, decision, assertion
                                          or audit. What govgate's security adds is (c2) - (d).
    (d) govgate proxy, one worker         token check + policy decision + durable audit
                                          -> nginx (SQLite, synchronous=FULL, group commit):
                                          the record durable in the audit journal (the
                                          SQLite default; docs/audit-journal.md), or with
                                          ``--audit-path database`` in the table
    (d3) the same, assertion per_caller   (d) for a system with ``assertion: per_caller``: one
                                          signed assertion per caller reused up to 30 s
    (d2) gone: ``serve --workers 2`` needs PostgreSQL now (SQLite refuses it); one
         worker against two on PostgreSQL is bench/bench_workers.py
    (e) nginx auth_request -> govgate /auth/verify, then nginx -> nginx
    (e3) the same for the per_caller system

Servers are pinned to CPU 0 and the load generator to CPU 1 (taskset) when the
machine has two or more CPUs. Load: wrk (1 thread, 32 connections, --latency)
when installed, else a bounded aiohttp client. Also: policy decision latency
at 100 / 10,000 / 100,000 lines, cached and uncached, and (``bench_memory``; skip
with ``--no-memory``) the resident memory of one ``govgate serve`` worker idle and
with 100,000 policy lines and 10,000 catalogue resources. Prints a Markdown table,
then every figure of issue #17 beside its target (met / MISSED).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
WRK = shutil.which("wrk")
BODY = '{"status":"ok","items":[{"id":1,"name":"a"},{"id":2,"name":"b"}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(cpu: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the servers this script started; kill any that has not left in 10 s."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


# ---------------------------------------------------------------------------
# servers run as child processes of this script (roles)


def role_forwarder(port: int, upstream: int) -> None:
    import aiohttp
    from aiohttp import web

    async def main() -> None:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar())

        async def handle(request: web.Request) -> web.StreamResponse:
            async with session.request(request.method, f"http://127.0.0.1:{upstream}"
                                       + request.path_qs, headers={"Accept": "*/*"}) as resp:
                body = await resp.read()
                return web.Response(body=body, status=resp.status,
                                    content_type=resp.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def role_transport(port: int, upstream: int) -> None:
    """(c2): the HTTP server and upstream client govgate's proxy runs on, and nothing else."""
    import uvicorn

    from gateway.proxy.upstream_http import Origin, UpstreamClient
    from gateway.web.http_server import HeadLimits, ServerConfig

    client = UpstreamClient()
    origin = Origin("http", "127.0.0.1", upstream)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        target = scope["raw_path"] + (b"?" + scope["query_string"] if scope["query_string"]
                                      else b"")
        resp = await client.request(scope["method"], origin, target, [(b"accept", b"*/*")])
        try:
            body = await resp.read(1 << 20)
        finally:
            resp.close()
        await send({"type": "http.response.start", "status": resp.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    # the server protocol govgate serve runs (gateway.web.http_server), so (c2) and (d)
    # differ only by what govgate does per request
    uvicorn.Server(ServerConfig(
        app, limits=HeadLimits(), host="127.0.0.1", port=port, loop="uvloop",
        lifespan="off", access_log=False, log_level="warning", proxy_headers=False,
        ws="none")).run()


def role_govgate(home: str, port: int) -> None:
    import uvicorn

    from gateway.app import create_app
    from gateway.proxy.endpoint import ProxyConfig
    from gateway.root import Seams
    from gateway.services import open_services
    from gateway.settings import load_settings
    from gateway.web.http_server import HeadLimits, ServerConfig

    env = {"GOVGATE_HOME": home}
    for name in ("GOVGATE_AUDIT_PATH", "GOVGATE_AUDIT_INDEXER",  # else the defaults
                 "GOVGATE_AUDIT_INDEX_SECONDS"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    settings = load_settings(env)
    services = open_services(settings)  # with the production audit log (signed checkpoints)
    app = create_app(services, seams=Seams(proxy_config=ProxyConfig(rate=1e9, burst=1e9)),
                     freeze_heap=True)  # as govgate serve does
    uvicorn.Server(ServerConfig(
        app, limits=HeadLimits.from_settings(settings), host="127.0.0.1", port=port,
        loop="uvloop", lifespan="on", access_log=False, log_level="warning",
        proxy_headers=False, ws="none")).run()


# ---------------------------------------------------------------------------
# setup


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000;
    upstream origin {{ server 127.0.0.1:{a}; keepalive 64; }}
    upstream govgate {{ server 127.0.0.1:{g}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{a};
        location / {{ default_type application/json; return 200 '{body}'; }}
    }}
    server {{
        listen 127.0.0.1:{b};
        location / {{
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass http://origin;
        }}
    }}
    server {{
        listen 127.0.0.1:{e};
        location = /_verify {{
            internal;
            proxy_pass http://govgate/auth/verify;
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass_request_body off; proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Govgate-System bench;
        }}
        location / {{
            auth_request /_verify;
            auth_request_set $gg $upstream_http_x_govgate_assertion;
            proxy_set_header X-Govgate-Assertion $gg;
            proxy_set_header Authorization "";
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass http://origin;
        }}
    }}
    server {{
        listen 127.0.0.1:{f};
        location = /_verify {{
            internal;
            proxy_pass http://govgate/auth/verify;
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass_request_body off; proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Govgate-System bench-pc;
        }}
        location / {{
            auth_request /_verify;
            auth_request_set $gg $upstream_http_x_govgate_assertion;
            proxy_set_header X-Govgate-Assertion $gg;
            proxy_set_header Authorization "";
            proxy_http_version 1.1; proxy_set_header Connection "";
            proxy_pass http://origin;
        }}
    }}
}}
"""


def setup_govgate(home: Path, upstream: int) -> str:
    """Initialise a SQLite gateway with one system; return a bearer token."""
    from gateway.root import Seams, build_gateway
    from gateway.services import open_services
    from gateway.settings import load_settings
    from gateway.setup import initialise

    settings = load_settings({"GOVGATE_HOME": str(home)})
    initialise(settings, password_factory=lambda: secrets.token_urlsafe(16), environ={})
    services = open_services(settings, environ={})
    build_gateway(services, Seams(watch_policies=False)).state_applier().apply({
        "regions": [{"code": "gx", "name": "某省"}],
        "departments": [{"code": "jgswj", "name": "机关事务管理局", "region": "gx"},
                        {"code": "czt", "name": "财政厅", "region": "gx"}],
        # the same upstream twice: one assertion per request (the default), and one
        # per caller reused up to 30 s (gateway.proxy.caller_assertion)
        "systems": [{"code": "bench", "name": "bench", "department": "jgswj",
                     "upstream": f"http://127.0.0.1:{upstream}"},
                    {"code": "bench-pc", "name": "bench per caller", "department": "jgswj",
                     "upstream": f"http://127.0.0.1:{upstream}", "assertion": "per_caller"}],
        # the token's client, registered to the user's department (a user's token naming
        # a client nobody registered is refused: gateway.proxy.through)
        "clients": [{"client_id": "finance-system", "name": "财务核算系统", "department": "czt",
                     "grant_types": ["client_credentials"], "scope": "proxy",
                     "secret": secrets.token_urlsafe(24)}],
        "users": [{"username": "li.si", "name": "李四", "department": "czt",
                   "roles": ["staff", "data_steward"]}],
        "policies": [{"subject": "role:data_steward", "department": "czt",
                      "object": "/s/bench/api/*", "action": "GET"},
                     {"subject": "role:data_steward", "department": "czt",
                      "object": "/s/bench-pc/api/*", "action": "GET"}],
    })
    now = int(time.time())
    token = services.keys.sign_jwt("token", {
        "iss": settings.issuer, "aud": settings.issuer, "iat": now, "nbf": now,
        "exp": now + 3600, "sub": "li.si", "client_id": "finance-system",
        "department": "czt", "region": "gx", "roles": ["staff", "data_steward"],
        "scope": "proxy",
        "jti": secrets.token_hex(8),
    }, headers={"typ": "at+jwt"})
    services.close()
    return token


# ---------------------------------------------------------------------------
# load


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, duration: int, connections: int, headers: list[str]) -> dict[str, float]:
    cmd = [*pin(1), str(WRK), "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=duration + 30,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99,
            "non2xx": float(errors.group(1)) if errors else 0.0}


def run_python_load(url: str, duration: int, connections: int, headers: list[str]
                    ) -> dict[str, float]:
    import aiohttp

    hdrs = dict(h.split(": ", 1) for h in headers)
    lat: list[float] = []
    bad = 0

    async def worker(session: aiohttp.ClientSession, end: float) -> None:
        nonlocal bad
        while time.monotonic() < end:
            t = time.perf_counter()
            async with session.get(url, headers=hdrs) as r:
                await r.read()
                bad += r.status >= 300
            lat.append((time.perf_counter() - t) * 1000)

    async def main() -> float:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
            start = time.monotonic()
            await asyncio.gather(*(worker(s, start + duration) for _ in range(connections)))
            return time.monotonic() - start

    elapsed = asyncio.run(main())
    lat.sort()
    return {"rps": len(lat) / elapsed, "p50": lat[len(lat) // 2],
            "p99": lat[int(len(lat) * 0.99)], "non2xx": float(bad)}


def load(url: str, duration: int, connections: int, headers: list[str]) -> dict[str, float]:
    # warm-up, then measure
    runner = run_wrk if WRK else run_python_load
    runner(url, 2, connections, headers)
    return runner(url, duration, connections, headers)


# ---------------------------------------------------------------------------
# decisions


def bench_decisions() -> list[tuple[int, float, float, float, float]]:
    from policies import PolicyIndex, PolicyLine, Query, subjects_for

    out = []
    for n in (100, 10_000, 100_000):
        rng = random.Random(n)
        lines = [
            PolicyLine(f"role:r{rng.randrange(50)}", f"d{rng.randrange(200)}",
                       f"/s/sys{rng.randrange(100)}/api/{i}*", rng.choice(["GET", "*"]),
                       rng.choice(["allow"] * 9 + ["deny"]), i)
            for i in range(n)
        ]
        index = PolicyIndex(lines)
        subs = subjects_for(username="u", client_id="c", roles=["r1", "r2", "r3"],
                            department="d7")
        queries = [Query(subs, f"d{rng.randrange(200)}",
                         f"/s/sys{rng.randrange(100)}/api/{rng.randrange(n)}/x", "GET", "d1")
                   for _ in range(20_000)]
        uncached = []
        for q in queries:
            t = time.perf_counter_ns()
            index._decide(q)
            uncached.append(time.perf_counter_ns() - t)
        hot = queries[:1000]
        for q in hot:
            index.decide(q)
        cached = []
        for q in hot * 20:
            t = time.perf_counter_ns()
            index.decide(q)
            cached.append(time.perf_counter_ns() - t)
        uncached.sort()
        cached.sort()

        def pct(xs: list[int], p: float) -> float:
            return xs[int(len(xs) * p)] / 1000.0

        out.append((n, pct(uncached, 0.5), pct(uncached, 0.99), pct(cached, 0.5),
                    pct(cached, 0.99)))
    return out


# ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the resident-memory measurement (bench_memory)")
    parser.add_argument("--audit-path", choices=("database", "journal"), default="journal",
                        help="where govgate's audit record is durable first (the setting "
                             "audit_path; docs/audit-journal.md)")
    parser.add_argument("--role", choices=["forwarder", "transport", "govgate"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "forwarder":
        role_forwarder(args.port, args.upstream)
        return
    if args.role == "transport":
        role_transport(args.port, args.upstream)
        return
    if args.role == "govgate":
        role_govgate(args.home, args.port)
        return
    if not Path(NGINX).exists():
        sys.exit("nginx is required (apt-get install nginx)")
    duration = max(1, min(args.duration, 60))
    load_at_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="govgate-bench-"))
    ports = {k: free_port() for k in ("a", "b", "c", "t", "e", "f", "g")}
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, dict[str, float]] = {}
    try:
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, body=BODY, **ports))
        procs.append(subprocess.Popen([*pin(0), NGINX, "-p", str(tmp), "-c",
                                       str(tmp / "nginx.conf")]))
        token = setup_govgate(tmp / "home", ports["a"])
        me = [sys.executable, str(Path(__file__).resolve())]
        procs.append(subprocess.Popen([*pin(0), *me, "--role", "forwarder", "--port",
                                       str(ports["c"]), "--upstream", str(ports["a"])]))
        procs.append(subprocess.Popen([*pin(0), *me, "--role", "transport", "--port",
                                       str(ports["t"]), "--upstream", str(ports["a"])]))
        procs.append(subprocess.Popen([*pin(0), *me, "--role", "govgate", "--port",
                                       str(ports["g"]), "--home", str(tmp / "home")],
                                      env={**os.environ, "GOVGATE_HOME": str(tmp / "home"),
                                           "GOVGATE_AUDIT_PATH": args.audit_path}))
        for port in ports.values():
            wait_port(port)
        time.sleep(0.5)
        if any(p.poll() is not None for p in procs):  # its port taken between choice and bind:
            # another program answers there, and its figures would be read as a server's
            sys.exit("a server of the bench did not start (a port was taken?): run it again")
        auth = [f"Authorization: Bearer {token}"]
        cases = [
            ("(a) upstream direct (nginx)", f"http://127.0.0.1:{ports['a']}/api/x", []),
            ("(b) nginx reverse proxy", f"http://127.0.0.1:{ports['b']}/api/x", []),
            ("(c) bare aiohttp forwarder", f"http://127.0.0.1:{ports['c']}/api/x", []),
            ("(c2) govgate's transport alone", f"http://127.0.0.1:{ports['t']}/api/x", []),
            ("(d) govgate proxy, 1 worker", f"http://127.0.0.1:{ports['g']}/s/bench/api/x",
             auth),
            ("(d3) govgate proxy, 1 worker, assertion per_caller",
             f"http://127.0.0.1:{ports['g']}/s/bench-pc/api/x", auth),
            ("(e) nginx auth_request -> govgate", f"http://127.0.0.1:{ports['e']}/api/x",
             auth),
            ("(e3) the same, assertion per_caller", f"http://127.0.0.1:{ports['f']}/api/x",
             auth),
        ]
        for name, url, headers in cases:
            results[name] = load(url, duration, args.connections, headers)
            r = results[name]
            print(f"{name}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
                  f"p99 {r['p99']:.2f} ms, non-2xx {r['non2xx']:.0f}", file=sys.stderr)
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)

    decisions = bench_decisions()
    memory = None
    if not args.no_memory:
        from bench import bench_memory

        memory = bench_memory.run(100_000, 10_000)
    a = results["(a) upstream direct (nginx)"]["rps"]
    b = results["(b) nginx reverse proxy"]["rps"]
    c = results["(c) bare aiohttp forwarder"]["rps"]
    d = results["(d) govgate proxy, 1 worker"]
    print(f"\nProxy benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"load: {'wrk' if WRK else 'python aiohttp'}, {args.connections} connections, "
          f"{duration} s per case, SQLite, audit_path = {args.audit_path}, "
          f"load average {load_at_start:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("| case | req/s | p50 ms | p99 ms | vs (a) | vs (b) | vs (c) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['rps'] / a:.2f} | {r['rps'] / b:.2f} | {r['rps'] / c:.2f} |")
    print(f"\np99 added by govgate over the bare forwarder: "
          f"{d['p99'] - results['(c) bare aiohttp forwarder']['p99']:.2f} ms")
    t = results["(c2) govgate's transport alone"]
    print(f"server-core time per request (1/rps): (c) {1e6 / c:.0f} µs, (c2) "
          f"{1e6 / t['rps']:.0f} µs, (d) {1e6 / d['rps']:.0f} µs: govgate's security adds "
          f"{1e6 / d['rps'] - 1e6 / t['rps']:.0f} µs per request to its own transport")
    print("\n| policy lines | uncached p50 µs | uncached p99 µs | cached p50 µs | cached p99 µs |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, u50, u99, c50, c99 in decisions:
        print(f"| {n:,} | {u50:.1f} | {u99:.1f} | {c50:.2f} | {c99:.2f} |")
    print_targets(results, memory)


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_targets(results: dict[str, dict[str, float]],
                  memory: tuple[float, float] | None) -> None:
    """Issue #17's proxy figures beside their targets."""
    b = results["(b) nginx reverse proxy"]
    c = results["(c) bare aiohttp forwarder"]
    t = results["(c2) govgate's transport alone"]
    print("\nTargets (issue #17), this run:")
    for label, key in (("", "(d) govgate proxy, 1 worker"),
                       (", assertion per_caller",
                        "(d3) govgate proxy, 1 worker, assertion per_caller")):
        d = results[key]
        added = 1e6 / d["rps"] - 1e6 / t["rps"]
        print(f"  security over govgate's transport{label}, (d) - (c2) <= 100 µs/request: "
              f"{added:.0f} µs: {_verdict(added <= 100)}")
        print(f"  proxy{label} vs the bare aiohttp forwarder, (d) >= 1.0x (c): "
              f"{d['rps'] / c['rps']:.2f}x: {_verdict(d['rps'] >= c['rps'])}")
        p99 = d["p99"] - c["p99"]
        print(f"  p99 added{label} over the bare forwarder at 32 connections < 10 ms: "
              f"{p99:.2f} ms: {_verdict(p99 < 10)}")
    for label, key in (("", "(e) nginx auth_request -> govgate"),
                       (", assertion per_caller", "(e3) the same, assertion per_caller")):
        e = results[key]
        print(f"  nginx auth_request -> govgate{label}, (e) >= 0.25x (b): "
              f"{e['rps'] / b['rps']:.2f}x ({e['rps']:.0f} vs {b['rps']:.0f} req/s): "
              f"{_verdict(e['rps'] >= 0.25 * b['rps'])}")
    if memory is None:
        print("  resident memory: not measured (--no-memory)")
        return
    from bench.bench_memory import verdict

    idle, loaded = memory
    print(f"  one worker idle < 150 MB: {verdict(idle, 150)}")
    print(f"  one worker, 100,000 policy lines and 10,000 catalogue resources < 300 MB: "
          f"{verdict(loaded, 300)}")


if __name__ == "__main__":
    main()
