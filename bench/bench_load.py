"""Load run (issue #16): a real ``govgate serve`` under many clients, then the audit log.

    python -m bench bench_load            (or: python bench/bench_load.py
                                            [--clients 50] [--requests 2000]
                                            [--database-url URL])

A fresh gateway (SQLite in a temporary directory unless ``--database-url`` names an
empty PostgreSQL database or schema) in front of ``bench.upstream``, both their own
processes on 127.0.0.1. ``--clients`` people (``bench.load.Client``) each sign in by
the authorization-code flow and then make ``--requests`` calls of the mix in
``bench.load.MIX``: proxy calls allowed, shaped and refused, catalogue searches,
token refreshes, client-credentials tokens and portal sign-ins. A warm-up run of
the same mix comes first; the gateway's resident memory (VmRSS) and open file
descriptors are sampled every second.

Checks, the same as ``tests/faults/test_load.py`` makes on a run of a few seconds:
no answer a healthy gateway does not give (no 5xx at all: the mix has no designed
one), exactly one audit record per audited answer and no other, ``govgate audit
verify`` passes, memory flat after the warm-up (growth within ``RSS_TOLERANCE``)
and no file descriptor growth (within ``FD_TOLERANCE``). Prints the figures; exit
status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway_world import GatewayProcess, Upstream, govgate, prepare  # noqa: E402
from bench.load import (  # noqa: E402
    Run,
    newest_record_id,
    record_count_problems,
    run_clients,
    sample,
    settled_trail,
    unaudited_successes,
)

# resident memory may grow this much after the warm-up: allocator arenas of the
# threads the first sign-ins start (argon2 takes 19 MiB a hash) settle at their
# high-water mark, caches (verified tokens up to 60 s, decisions) fill up to their
# bound; a leak of even 1 KiB a request would pass it within the full run
RSS_TOLERANCE_KIB = 48 * 1024
RSS_TOLERANCE_RATIO = 0.20
# descriptors: each client's keep-alive connection may be open or closed at the
# moment of reading, and the pool to the upstream may hold a few more
FD_TOLERANCE = 16


@dataclass
class Figures:
    run: Run
    rss_before: int
    rss_after: int
    rss_peak: int
    fds_before: int
    fds_after: int
    samples: list[tuple[float, int, int]]
    problems: list[str]


def check(gateway: GatewayProcess, env: dict[str, str], db_url: str, run: Run,
          rss_before: int, fds_before: int) -> tuple[list[str], int, int]:
    """The run's problems, and the gateway's RSS and descriptors after it."""
    problems: list[str] = []
    unexpected = run.unexpected()
    if unexpected:
        problems.append(f"answers a healthy gateway does not give: {dict(unexpected)}")
    fives = sum(1 for a in run.answers if a.status >= 500 or a.status == 0)
    if fives:
        problems.append(f"{fives} answers 5xx or none")
    trail = settled_trail(db_url, run.since_id, run.answers)
    problems += unaudited_successes(run.answers, trail)
    problems += record_count_problems(run.answers, trail)
    verified = govgate(env, "audit", "verify")
    if verified.returncode != 0:
        problems.append(f"audit verify: {verified.stdout[-500:]} {verified.stderr[-500:]}")
    rss_after, fds_after = settled(gateway)
    if rss_after - rss_before > max(RSS_TOLERANCE_KIB, rss_before * RSS_TOLERANCE_RATIO):
        problems.append(f"resident memory grew {rss_before} -> {rss_after} KiB")
    if fds_after - fds_before > FD_TOLERANCE:
        problems.append(f"open descriptors grew {fds_before} -> {fds_after}")
    return problems, rss_after, fds_after


def settled(gateway: GatewayProcess) -> tuple[int, int]:
    """RSS and descriptors once the clients' connections are closed (the server
    closes an idle keep-alive connection after 5 s; the clients close theirs at the
    end of the run, so within a moment)."""
    fds = gateway.fd_count()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = gateway.fd_count()
        if now >= fds:
            break
        fds = now
    return gateway.rss_kib(), gateway.fd_count()


Samples = list[tuple[float, int, int]]  # (seconds, RSS KiB, open descriptors)


async def measured(gateway: GatewayProcess, db_url: str, *, clients: int, requests: int,
                   warmup: int, user_count: int) -> tuple[Run, int, int, Samples]:
    """A warm-up run, the gateway's figures after it, then the measured run."""
    warm = await run_clients(gateway.url, clients=clients, requests=warmup, seed=7,
                             user_count=user_count)
    rss_before, fds_before = await asyncio.to_thread(settled, gateway)
    # journal mode: the warm-up's records in the tables before the run's first id is taken
    await asyncio.to_thread(settled_trail, db_url, 0, warm.answers, counts=False)
    since = newest_record_id(db_url)
    samples: Samples = []
    stop = asyncio.Event()
    sampler = sample(lambda: (gateway.rss_kib(), gateway.fd_count()), 1.0, samples, stop)
    try:
        run = await run_clients(gateway.url, clients=clients, requests=requests, seed=11,
                                user_count=user_count)
    finally:
        stop.set()
        await sampler
    run.since_id = since
    return run, rss_before, fds_before, samples


async def load_run(gateway: GatewayProcess, env: dict[str, str], db_url: str, *,
                   clients: int, requests: int, warmup: int, user_count: int) -> Figures:
    """The warm-up and the measured run against a running ``gateway`` whose database
    (``db_url``) was prepared with ``user_count`` users, then every check."""
    run, rss_before, fds_before, samples = await measured(
        gateway, db_url, clients=clients, requests=requests, warmup=warmup,
        user_count=user_count)
    problems, rss_after, fds_after = await asyncio.to_thread(
        check, gateway, env, db_url, run, rss_before, fds_before)
    peak = max([rss_after, *(s[1] for s in samples)])
    return Figures(run, rss_before, rss_after, peak, fds_before, fds_after, samples, problems)


def report(f: Figures, *, database: str) -> str:
    run = f.run
    statuses = ", ".join(f"{op} {status}: {n}" for (op, status), n in
                         sorted(run.statuses().items()))
    lines = [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}, cpus: {os.cpu_count()}, "
        f"database: {database}",
        f"clients x requests: {run.clients} x {run.requests} "
        f"({len(run.answers)} answers with the sign-ins) in {run.seconds:.1f} s: "
        f"{len(run.answers) / run.seconds:.0f} answers/s",
        f"answers: {statuses}",
        f"resident memory after warm-up {f.rss_before / 1024:.1f} MiB, after the run "
        f"{f.rss_after / 1024:.1f} MiB, peak {f.rss_peak / 1024:.1f} MiB",
        f"open descriptors after warm-up {f.fds_before}, after the run {f.fds_after}",
        "RSS MiB every 10 s: " + " ".join(f"{s[1] / 1024:.0f}" for s in f.samples[::10]),
        "checks: " + ("all passed (statuses, one record per answer, audit verify, "
                      "memory, descriptors)" if not f.problems else "; ".join(f.problems)),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=40, help="requests per client first")
    parser.add_argument("--database-url", default="",
                        help="an empty database (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    upstream = Upstream()
    try:
        with tempfile.TemporaryDirectory(prefix="govgate-load-") as home:
            db_url = args.database_url or f"sqlite:///{home}/govgate.db"
            env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
            env.update(GOVGATE_HOME=home, GOVGATE_DATABASE_URL=db_url, LANG="C.UTF-8")
            users = min(args.clients, 250)
            prepare(env, upstream.url, user_count=users)
            with GatewayProcess(env).running() as gateway:
                figures = asyncio.run(load_run(
                    gateway, env, db_url, clients=args.clients, requests=args.requests,
                    warmup=args.warmup, user_count=users))
    finally:
        upstream.close()
    print(report(figures, database=db_url.split(":")[0]))
    return 1 if figures.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
