"""Upstream client benchmark: gateway.proxy.upstream_http against aiohttp's ClientSession,
same process, same loop (uvloop), same upstream, loopback only, a few seconds:

    .venv/bin/python bench/bench_upstream_client.py [--requests 20000] [--concurrency 32]

The upstream is nginx returning a small JSON body (a raw asyncio server in a
child process when nginx is missing). nginx is pinned to CPU 0 and this process
to CPU 1 when there are two CPUs, so the numbers are the client's CPU cost.
Each round runs both clients, alternating which goes first; the best round of
each is reported, with the ratio. CPU time per request (this process only) is
printed too: it is what matters for the proxy and it is steadier than req/s
when other work shares the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the same nginx, body and helpers as the proxy benchmark (its direct server, case (a))
from bench.bench_proxy import BODY, NGINX, NGINX_CONF, free_port, wait_port  # noqa: E402

RAW_SERVER = """
import asyncio, sys
body = sys.argv[2].encode()
resp = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n"
        % len(body)) + body
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t; self.buf = b""
    def data_received(self, d):
        self.buf += d
        n = self.buf.count(b"\\r\\n\\r\\n")
        if n:
            self.buf = self.buf[self.buf.rindex(b"\\r\\n\\r\\n") + 4:]
            self.t.write(resp * n)
async def main():
    srv = await asyncio.get_running_loop().create_server(P, "127.0.0.1", int(sys.argv[1]))
    await srv.serve_forever()
asyncio.run(main())
"""
# roughly what the proxy sends upstream besides the client's own headers
HEADERS = [
    ("Accept", "application/json"),
    ("X-Forwarded-For", "10.1.2.3"),
    ("X-Forwarded-Proto", "https"),
    ("X-Request-ID", "4f6c1f0e9a3b4c5d8e7f6a5b4c3d2e1f"),
    ("X-Govgate-Assertion", "eyJhbGciOiJFZERTQSJ9." + "x" * 400 + ".sig"),
]


def start_upstream(tmp: str, port: int, two_cpus: bool) -> tuple[subprocess.Popen[bytes], str]:
    pin = ["taskset", "-c", "0"] if two_cpus and shutil.which("taskset") else []
    if os.path.exists(NGINX):
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, body=BODY, a=port, b=free_port(),
                                          e=free_port(), g=free_port()))
        proc = subprocess.Popen([*pin, NGINX, "-c", str(conf), "-p", tmp],
                                stderr=subprocess.DEVNULL)
        name = "nginx"
    else:
        proc = subprocess.Popen([*pin, sys.executable, "-c", RAW_SERVER, str(port), BODY])
        name = "raw asyncio server"
    wait_port(port)
    return proc, name


async def drive(one: Callable[[], Awaitable[None]], total: int,
                concurrency: int) -> tuple[float, float]:
    """(requests per second, this process's CPU microseconds per request)."""
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (total / (time.perf_counter() - t0),
            (time.process_time() - c0) / total * 1e6)


async def bench(port: int, total: int, concurrency: int,
                rounds: int) -> dict[str, tuple[float, float]]:
    import aiohttp
    from yarl import URL

    from gateway.proxy.upstream_http import Origin, UpstreamClient

    origin = Origin.parse(f"http://127.0.0.1:{port}")
    client = UpstreamClient()
    raw_headers = [(k.encode(), v.encode()) for k, v in HEADERS]

    async def ours() -> None:
        resp = await client.request("GET", origin, b"/api/items?page=1", list(raw_headers))
        try:
            body = await resp.read(1 << 20)
        finally:
            resp.close()
        assert resp.status == 200 and len(body) == len(BODY)

    # configured as gateway/proxy_client.py does, used as proxy.py does
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=1000, limit_per_host=256, keepalive_timeout=30,
                                       ttl_dns_cache=60),
        cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False, raise_for_status=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
    base = f"http://127.0.0.1:{port}"

    async def theirs() -> None:
        url = URL(base + "/api/items" + "?page=1", encoded=True)
        async with session.request("GET", url, headers=list(HEADERS),
                                   allow_redirects=False) as resp:
            body = await resp.read()
        assert resp.status == 200 and len(body) == len(BODY)

    cases = {"upstream_http": ours, "aiohttp": theirs}
    best = dict.fromkeys(cases, (0.0, 0.0))
    for one in cases.values():  # warm both: connections, caches
        await drive(one, 2000, concurrency)
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            rate, cpu = await drive(cases[name], total, concurrency)
            print(f"   round {r + 1} {name:14s} {rate:9.0f} req/s {cpu:7.1f} us CPU/req",
                  flush=True)
            best[name] = max(best[name], (rate, cpu))
    await session.close()
    await client.aclose()
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import uvloop

    two_cpus = (os.cpu_count() or 1) >= 2
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc, upstream = start_upstream(tmp, port, two_cpus)
        try:
            if two_cpus:
                os.sched_setaffinity(0, {1})
            best = uvloop.run(bench(port, args.requests, args.concurrency, args.rounds))
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"\n{args.requests} GETs per round, {args.concurrency} concurrent, uvloop, "
          f"upstream {upstream}{' (client on CPU 1, upstream on CPU 0)' if two_cpus else ''}")
    print("| client | best req/s | client CPU per request in that round |\n|---|---|---|")
    for name, (rate, cpu) in best.items():
        print(f"| {name} | {rate:.0f} | {cpu:.1f} us |")
    ours, theirs = best["upstream_http"], best["aiohttp"]
    print(f"\nupstream_http / aiohttp: {ours[0] / theirs[0]:.2f}x the requests/s, "
          f"{ours[1] / theirs[1]:.2f}x the CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
