"""One worker against two, on PostgreSQL: ``govgate serve --workers 1`` and
``--workers 2`` in front of ``bench.upstream``, the same proxied request with a
client-credentials token (token check, policy decision, durable audit on the
worker's own chain), one after the other on one fresh database. Nothing is pinned:
on a 2-core machine the workers, the upstream, PostgreSQL and the load generator
share both cores, so the ratio says what a second worker buys there, not on a
machine with cores to spare.

    python -m bench bench_workers
    python bench/bench_workers.py [--duration 10] [--connections 32] [--database-url URL]

The database server comes from ``--database-url`` or GOVGATE_TEST_DATABASE_URL (a
PostgreSQL URL); a database ``gg_bench_<hex>`` is made on it and dropped at the end.
Load: wrk (1 thread, --latency) when installed, else a bounded aiohttp client.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_proxy import WRK, _ms, run_python_load  # noqa: E402
from bench.gateway_world import LOADER, SYSTEM, GatewayProcess, Upstream, prepare  # noqa: E402


@contextlib.contextmanager
def database(server_url: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server of ``server_url``, dropped afterwards."""
    url = sa.make_url(server_url)
    if not url.drivername.startswith("postgresql"):
        sys.exit("bench_workers needs PostgreSQL: --database-url or GOVGATE_TEST_DATABASE_URL")
    name = "gg_bench_" + secrets.token_hex(4)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def run_wrk(url: str, duration: int, connections: int, token: str) -> dict[str, float]:
    """wrk, not pinned (bench_proxy's pins it to the second core)."""
    out = subprocess.run(
        [str(WRK), "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    found = {k: re.search(p, out) for k, p in (
        ("rps", r"Requests/sec:\s+([\d.]+)"), ("p50", r"\s50%\s+(\S+)"),
        ("p99", r"\s99%\s+(\S+)"), ("non2xx", r"Non-2xx or 3xx responses:\s+(\d+)"))}
    rps, p50, p99, bad = (m.group(1) if m else None for m in found.values())
    assert rps and p50 and p99, out
    return {"rps": float(rps), "p50": _ms(p50), "p99": _ms(p99),
            "non2xx": float(bad) if bad else 0.0}


def all_up(gateway: GatewayProcess, home: Path, workers: int) -> None:
    """/healthz answers once the first worker is up: wait for every worker's metrics
    files (each worker writes its gauges as it builds its gateway)."""
    directory = home / "run" / f"metrics-{gateway.port}"
    deadline = time.monotonic() + 60
    while workers > 1 and len(list(directory.glob("gauge_livesum_*.db"))) < workers:
        if time.monotonic() > deadline:
            sys.exit(f"only some of the {workers} workers started")
        time.sleep(0.1)


def measure(gateway: GatewayProcess, duration: int, connections: int) -> dict[str, float]:
    r = httpx.post(f"{gateway.url}/oauth2/token", data={"grant_type": "client_credentials"},
                   auth=LOADER, timeout=10)
    r.raise_for_status()
    token = r.json()["access_token"]
    url = f"{gateway.url}/s/{SYSTEM}/api/ping"
    if WRK:
        run_wrk(url, 2, connections, token)  # warm-up: every worker's pools and caches
        return run_wrk(url, duration, connections, token)
    headers = [f"Authorization: Bearer {token}"]
    run_python_load(url, 2, connections, headers)
    return run_python_load(url, duration, connections, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default=os.environ.get("GOVGATE_TEST_DATABASE_URL",
                                                                 ""))
    args = parser.parse_args()
    duration = max(1, min(args.duration, 60))
    home = Path(tempfile.mkdtemp(prefix="govgate-bench-workers-"))
    results: dict[int, dict[str, float]] = {}
    upstream = Upstream()
    try:
        with database(args.database_url) as db_url:
            env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
            env.update(GOVGATE_HOME=str(home), GOVGATE_DATABASE_URL=db_url)
            prepare(env, upstream.url)
            for workers in (1, 2):
                gateway = GatewayProcess(env, workers=workers)
                gateway.start(timeout=60.0 * workers)
                try:
                    all_up(gateway, home, workers)
                    results[workers] = measure(gateway, duration, args.connections)
                finally:
                    gateway.stop()
                r = results[workers]
                print(f"--workers {workers}: {r['rps']:.0f} req/s, p50 {r['p50']:.2f} ms, "
                      f"p99 {r['p99']:.2f} ms, non-2xx {r['non2xx']:.0f}", file=sys.stderr)
    finally:
        upstream.close()
        shutil.rmtree(home, ignore_errors=True)
    one, two = results[1], results[2]
    print(f"\nWorkers on PostgreSQL, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"unpinned, load: {'wrk' if WRK else 'python aiohttp'}, {args.connections} "
          f"connections, {duration} s per case\n")
    print("| serve | req/s | p50 ms | p99 ms | non-2xx |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for workers, r in results.items():
        print(f"| --workers {workers} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
              f"{r['non2xx']:.0f} |")
    print(f"\nratio 2 workers / 1: {two['rps'] / one['rps']:.2f}")


if __name__ == "__main__":
    main()
