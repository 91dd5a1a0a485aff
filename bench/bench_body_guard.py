"""The body guard's cost per body piece: ``gateway.web.body_limits.limit_body`` (a
deadline with ``asyncio.timeout``) against a bare ``asyncio.wait_for`` around the same
``receive``, CPU time, best of 5 rounds of 50,000 (docs/BENCHMARKS.md).

    python bench/bench_body_guard.py
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.web.body_limits import limit_body


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"grant_type=client_credentials",
            "more_body": False}


async def bare_wait_for(timeout: float) -> dict[str, Any]:
    return await asyncio.wait_for(receive(), timeout)


async def measure() -> None:
    n = 50_000
    for name in ("limit_body (asyncio.timeout)", "asyncio.wait_for alone"):
        best = 1e9
        for _ in range(5):
            started = time.process_time()
            for _ in range(n):
                if name.startswith("limit_body"):
                    await limit_body(receive, 30.0)()  # type: ignore[arg-type]
                else:
                    await bare_wait_for(30.0)
            best = min(best, (time.process_time() - started) / n * 1e6)
        print(f"{name:30} {best:6.2f} us CPU per body piece")


def main() -> None:
    asyncio.run(measure())


if __name__ == "__main__":
    main()
