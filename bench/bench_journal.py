"""The audit append alone, in each ``audit_path``: CPU per record on the request's side
(the writer: hash, then a transaction or a journal write + fsync) and, in journal mode,
the indexer's CPU per record when it loads them afterwards; with ``--alongside``, also the
journal with the indexer's background thread loading while the appends run (as a server
runs it: paced rounds every 0.5 s), the whole process's CPU per record (writer, indexer,
and what their sharing of the GIL costs). SQLite, sha256.

    .venv/bin/python bench/bench_journal.py [--records 4000] [--concurrency 32 1] [--alongside]
                                            [--mode journal]

CPU is this process's (all threads, the kernel's work for its fsyncs included).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit import AuditLog  # noqa: E402
from audit.indexer import Indexer  # noqa: E402
from audit.journal import Journal  # noqa: E402
from bench.bench_audit import open_db, sample  # noqa: E402


async def measure(folder: Path, mode: str, records: int, concurrency: int
                  ) -> tuple[float, float, float]:
    """(hot CPU µs/record, wall µs/record, indexer CPU µs/record)."""
    engine, ks = open_db(folder)
    journal = Journal(folder / "journal") if mode != "database" else None
    log = AuditLog(engine, keys=ks, writer_id="bench", journal=journal)
    indexer = None
    if journal is not None:
        indexer = Indexer(engine, journal, own=log.journal_position,
                          interval=0.5 if mode == "alongside" else 3600,
                          on_checkpoint=log.note_checkpoint)
        log.attach_indexer(indexer)
    await log.start()
    if mode == "alongside" and indexer is not None:
        indexer.start()

    async def run(each: int) -> None:
        async def one(w: int) -> None:
            for i in range(each):
                await log.append(sample(w * each + i, int(time.time() * 1000)))
        await asyncio.gather(*(one(w) for w in range(concurrency)))

    await run(20)  # warm-up
    if indexer is not None:
        await asyncio.to_thread(indexer.run_once)
    cpu, wall = time.process_time(), time.monotonic()
    await run(records // concurrency)
    done = records // concurrency * concurrency
    hot, took = (time.process_time() - cpu) / done * 1e6, (time.monotonic() - wall) / done * 1e6
    indexed = 0.0
    if mode == "alongside" and indexer is not None:
        cpu = time.process_time()
        await asyncio.to_thread(indexer.stop)  # its last round loads what is left
        hot += (time.process_time() - cpu) / done * 1e6
    elif indexer is not None:
        cpu = time.process_time()
        loaded = await asyncio.to_thread(indexer.run_once)
        indexed = (time.process_time() - cpu) / max(loaded, 1) * 1e6
    await log.close()
    engine.dispose()
    return hot, took, indexed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32, 1])
    ap.add_argument("--mode", choices=("database", "journal", "alongside"), action="append",
                    help="only these modes (default: database and journal)")
    ap.add_argument("--alongside", action="store_true",
                    help="also the journal with its indexer loading during the appends")
    args = ap.parse_args()
    modes = ("database", "journal", "alongside") if args.alongside else ("database", "journal")
    if args.mode:
        modes = tuple(args.mode)
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    print(f"audit appends, {when} UTC, {args.records} records, SQLite")
    for concurrency in args.concurrency:
        for mode in modes:
            folder = Path(tempfile.mkdtemp(prefix="govgate-journal-bench-"))
            try:
                hot, took, indexed = asyncio.run(measure(folder, mode, args.records,
                                                         concurrency))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            extra = (f", indexer {indexed:4.0f} us CPU/record after" if mode == "journal" else
                     " (writer and indexer together)" if mode == "alongside" else "")
            print(f"  {mode:8s} {concurrency:3d} appending at once: {hot:5.0f} us CPU/record, "
                  f"{took:5.0f} us wall/record{extra}")


if __name__ == "__main__":
    main()
