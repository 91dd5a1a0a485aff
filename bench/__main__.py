"""Run every benchmark module found in bench/ (each exposes ``main()``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    only = set(sys.argv[1:])
    here = Path(__file__).parent
    status = 0
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (only and info.name not in only):
            continue
        print(f"== {info.name}", flush=True)
        module = importlib.import_module(f"bench.{info.name}")
        entry = getattr(module, "main", None)
        if entry is None:
            print(f"   (no main() in {info.name})")
            continue
        argv, sys.argv = sys.argv, [f"bench/{info.name}.py"]  # each parses its own options
        try:
            result = entry()
        finally:
            sys.argv = argv
        if isinstance(result, int) and result:
            status = result
    return status


if __name__ == "__main__":
    raise SystemExit(main())
