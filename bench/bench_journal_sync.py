"""The audit journal's sync alone, on the disk that holds ``--dir``: CPU and wall time
per batch, for a file that grows with each batch (``O_APPEND``, as the journal wrote
before 2026-12-05's fourth session) against one written in place into zeros already
written and fsynced (the preallocated segment of ``audit.journal``), each with
``fsync`` and with ``fdatasync``.

    .venv/bin/python bench/bench_journal_sync.py [--batches 1000] [--bytes 9000]
                                                 [--rounds 3] [--dir .]

A batch of 9,000 bytes is ~15 records of a proxied request (~590 bytes a frame). CPU is
this process's (the kernel's work for the sync included); the file system's own
journal thread is not counted. Run it on the gateway's disk: ``/tmp`` may be tmpfs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

MODES = ("append + fsync", "append + fdatasync", "in place + fsync", "in place + fdatasync")


def measure(folder: Path, mode: str, batches: int, size: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per batch."""
    path = folder / "sync-bench"
    path.unlink(missing_ok=True)
    chunk = b"x" * size
    in_place = mode.startswith("in place")
    sync = os.fdatasync if mode.endswith("fdatasync") else os.fsync
    flags = os.O_WRONLY | os.O_CREAT | (0 if in_place else os.O_APPEND)
    fd = os.open(path, flags, 0o600)
    try:
        if in_place:  # the zeros first, durable, as the journal preallocates them
            zeros = bytes(1024 * 1024)
            for at in range(0, batches * size, len(zeros)):
                os.pwrite(fd, zeros, at)
            os.fsync(fd)
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(batches):
            if in_place:
                os.pwrite(fd, chunk, i * size)
            else:
                os.write(fd, chunk)
            sync(fd)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return cpu / batches * 1e6, wall / batches * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--bytes", type=int, default=9000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=".", help="a folder on the disk to measure")
    args = ap.parse_args()
    batches = max(10, min(args.batches, 100_000))
    size = max(1, min(args.bytes, 1024 * 1024))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        results: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
        for _ in range(max(1, args.rounds)):
            for mode in MODES:  # alternating, so a busy moment falls on each
                results[mode].append(measure(Path(tmp), mode, batches, size))
    load = os.getloadavg()[0]
    print(f"journal sync, {batches} batches of {size} bytes, load average {load:.2f}")
    for mode in MODES:
        cpu = ", ".join(f"{c:.0f}" for c, _ in results[mode])
        wall = ", ".join(f"{w:.0f}" for _, w in results[mode])
        print(f"  {mode:22s} CPU µs/batch {cpu:18s} wall µs/batch {wall}")


if __name__ == "__main__":
    main()
