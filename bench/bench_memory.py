"""Resident memory of one ``govgate serve`` worker: idle, and with a large state
loaded (issue #17's targets: < 150 MB idle, < 300 MB with 100,000 policy lines and
10,000 catalogue resources).

    python -m bench bench_memory        (or: python bench/bench_memory.py [--lines 100000]
                                         [--resources 10000])

A fresh SQLite gateway (``bench_proxy``'s: the organisation and its systems) is served by ``govgate
serve`` (one worker, as deployed); after it answers, a token, a portal page and a
proxied call (refused: no upstream needed) warm it, then VmRSS is read from
/proc after 2 s of idle. Then the policy lines (inserted in bulk, as an import
would leave them) and the catalogue resources (in bulk too, published, each with a
route on the system and three data items) are added, a new ``govgate serve`` is
started over that database, a proxied call makes it load the policies and the
catalogue's snapshot, and VmRSS is read again. Prints both beside the targets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_proxy  # noqa: E402

IDLE_TARGET_MB = 150.0
LOADED_TARGET_MB = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVGATE_")}
    env.update(GOVGATE_HOME=str(home), GOVGATE_PORT=str(port), PYTHONPATH=str(ROOT))
    return env


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 (loopback)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)


def prepare(home: Path) -> tuple[Any, str]:
    """The gateway bench_proxy sets up (its systems point at a closed port here: the
    proxied calls are refused or fail, which loads the same state); its services and
    a bearer token."""
    from gateway.services import open_services
    from gateway.settings import load_settings

    token = bench_proxy.setup_govgate(home, 9)
    return open_services(load_settings({"GOVGATE_HOME": str(home)}), environ={}), token


def load_state(services: Any, lines: int, resources_count: int) -> None:
    import sqlalchemy as sa

    from policies.tables import policy_lines

    now = datetime.now(UTC)
    rows = [{"subject": f"role:r{i % 50}", "department": ("czt", "jgswj")[i % 2],
             "object": f"/s/sys{i % 100}/api/{i}/*", "action": ("GET", "*")[i % 2],
             "effect": "deny" if i % 10 == 0 else "allow", "source": "bench",
             "created_at": now} for i in range(lines)]
    with services.engine.begin() as conn:
        for start in range(0, len(rows), 10_000):
            conn.execute(sa.insert(policy_lines), rows[start:start + 10_000])
    # the catalogue's rows in bulk too, as published resources the proxy governs: the
    # state file validates each resource against all others, minutes for 10,000
    from catalogue.tables import items, resources

    with services.engine.begin() as conn:
        for start in range(0, resources_count, 1000):
            ids = range(start, min(start + 1000, resources_count))
            conn.execute(sa.insert(resources), [{
                "code": f"BM-{i:05d}", "name": f"资源{i}", "summary": f"基准测试资源{i}",
                "provider": "jgswj", "system": "bench", "share_type": "conditional",
                "conditions": "仅用于测试", "basis": "", "share_method": "api",
                "update_cycle": "daily", "open_attr": "", "route_method": "GET",
                "route_path": f"/api/r{i}", "route_records": "items", "status": "published",
                "version": 1, "created_at": now, "updated_at": now, "published_at": now,
            } for i in ids])
            found = dict(conn.execute(sa.select(resources.c.code, resources.c.id).where(
                resources.c.code.in_([f"BM-{i:05d}" for i in ids]))).all())
            conn.execute(sa.insert(items), [
                {"resource_id": found[f"BM-{i:05d}"], "position": pos, "name": name,
                 "title": title, "type": "string", "level": level, "mask": mask,
                 "encrypt": False, "authoritative": pos == 0, "shareable": True}
                for i in ids
                for pos, (name, title, level, mask) in enumerate((
                    ("id", "编号", 1, None), ("name", "名称", 1, None),
                    ("owner", "负责人", 2, "keep_first_char")))])


def measure(home: Path, token: str) -> tuple[float, float]:
    """(seconds to answer, VmRSS MiB after warming and 2 s idle) of a fresh server."""
    port = _free_port()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve"],
                            env=_env(home, port), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(f"{base}/healthz") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("govgate serve did not start")
            time.sleep(0.1)
        ready = time.monotonic() - started
        t = time.monotonic()
        for _ in range(3):
            _get(f"{base}/s/bench/api/r1", {"Authorization": f"Bearer {token}"})
            _get(f"{base}/portal/login")
            _get(f"{base}/.well-known/openid-configuration")
        print(f"  warm-up calls answered in {time.monotonic() - t:.1f} s (the first proxied "
              "call loads the policies' index and the catalogue's snapshot)", file=sys.stderr)
        time.sleep(2)
        return ready, rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def run(lines: int, resources: int) -> tuple[float, float]:
    """(idle MiB, loaded MiB) of one ``govgate serve`` worker; prints how long each took."""
    home = Path(tempfile.mkdtemp(prefix="govgate-bench-mem-"))
    try:
        services, token = prepare(home)
        ready, idle = measure(home, token)
        t = time.monotonic()
        load_state(services, lines, resources)
        loaded_in = time.monotonic() - t
        services.close()
        ready2, loaded = measure(home, token)
        print(f"memory: idle {idle:.1f} MiB (answering after {ready:.1f} s); with {lines:,} "
              f"policy lines and {resources:,} resources {loaded:.1f} MiB (answering after "
              f"{ready2:.1f} s; the state written in {loaded_in:.0f} s)", file=sys.stderr)
        return idle, loaded
    finally:
        shutil.rmtree(home, ignore_errors=True)


def verdict(mib: float, target: float) -> str:
    """``mib`` beside ``target`` read both ways: MiB (2**20 bytes, what /proc and most
    tools call MB) and MB (10**6 bytes)."""
    mb = mib * 1.048576
    if mib < target and mb < target:
        return f"{mib:.1f} MiB = {mb:.1f} MB: met"
    if mib < target:
        return f"{mib:.1f} MiB = {mb:.1f} MB: met in MiB, MISSED in 10**6-byte MB"
    return f"{mib:.1f} MiB = {mb:.1f} MB: MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--resources", type=int, default=10_000)
    args = parser.parse_args(sys.argv[2:] if sys.argv[1:2] == ["bench_memory"] else None)
    idle, loaded = run(args.lines, args.resources)
    print(f"memory of one govgate serve worker, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, SQLite, VmRSS")
    print(f"  TARGET idle < {IDLE_TARGET_MB:.0f} MB: {verdict(idle, IDLE_TARGET_MB)}")
    print(f"  TARGET with {args.lines:,} policy lines and {args.resources:,} catalogue "
          f"resources < {LOADED_TARGET_MB:.0f} MB: {verdict(loaded, LOADED_TARGET_MB)}")


if __name__ == "__main__":
    main()
