"""How long the catalogue's snapshot takes to build for many routes (the reload a
catalogue change causes), and where the time goes.

    python bench/bench_snapshot.py [--resources 10000] [--profile]

A fresh SQLite gateway (``bench_memory``'s: published resources of one system, each
with a route and three items, inserted in bulk); the build timed as the reload runs
it (``Catalogue._build``: resources and grants read, route tables built), best of
three, and its parts apart.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_memory  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(sys.argv[2:] if sys.argv[1:2] == ["bench_snapshot"] else None)
    from catalogue import store
    from catalogue.service import Snapshot
    from gateway.root import build_gateway

    home = Path(tempfile.mkdtemp(prefix="govgate-bench-snap-"))
    try:
        services, _ = bench_memory.prepare(home)
        bench_memory.load_state(services, 0, args.resources)
        catalogue = build_gateway(services).catalogue
        with services.engine.connect() as conn:
            version = store.read_version(conn)
            best = {"build": 1e9, "load_resources": 1e9, "tables": 1e9}
            for _ in range(3):
                t = time.perf_counter()
                catalogue._build(conn, version)
                best["build"] = min(best["build"], time.perf_counter() - t)
                t = time.perf_counter()
                rows = store.load_resources(conn)
                best["load_resources"] = min(best["load_resources"], time.perf_counter() - t)
                t = time.perf_counter()
                Snapshot(version, rows, []).match("bench", "GET", "/api/r1")
                best["tables"] = min(best["tables"], time.perf_counter() - t)
            print(f"{args.resources:,} routes: snapshot built in {best['build'] * 1000:.0f} ms "
                  f"(resources read {best['load_resources'] * 1000:.0f} ms; route tables "
                  f"and the first match {best['tables'] * 1000:.0f} ms)")
            if args.profile:
                prof = cProfile.Profile()
                prof.runcall(catalogue._build, conn, version)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        services.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
