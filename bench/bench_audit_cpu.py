"""The audit record's CPU step by step, µs per record (thread CPU time, median of 3):
building the ``AuditRecord`` (a proxied request's and a token's), its stored row and
hash, its journal frame, and one group commit of 32 records on SQLite in each
``audit_path`` (the writer thread's work, fsync included), and the asyncio hand-off of
32 concurrent appends around a commit that does nothing.

    .venv/bin/python bench/bench_audit_cpu.py [--rounds 3] [--only record commit_db ...]

Run it against a ``git archive`` copy of another commit (same script) to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from audit import AuditLog, AuditRecord, StoredRecord  # noqa: E402
from audit.chain import hash_function, record_row  # noqa: E402
from audit.journal import Journal, encode_frame  # noqa: E402
from bench.bench_audit import open_db  # noqa: E402

BATCH = 32


def policy_record(i: int = 0) -> AuditRecord:
    """What ``gateway.proxy.admission.AuditDraft.record`` builds for a request a policy
    line allows (as bench_inprocess.py's proxy case sends)."""
    return AuditRecord(
        event_type="proxy_request", outcome="allow", status=200, latency_ms=26,
        request_id=f"01a243e654743b8728c68a34c87d{i:04x}", source_ip="127.0.0.1",
        system="bench", actor_user="li.si", actor_client="finance-system", department="czt",
        reason="allow by policy line 1: p, role:data_steward, czt, /s/bench/api/*, GET, allow",
        req_hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        resp_hash="86f2226d135443511e438f5d8031438f312c422b4ba5740f132bfde5c8f11db4",
        extra={"method": "GET", "path": "/s/bench/api/x", "rule": "policy", "line_id": 1},
    )


def proxy_record(i: int = 0) -> AuditRecord:
    """What ``gateway.proxy.admission.AuditDraft.record`` builds for a request a catalogue
    grant allows (items, purpose, shaping)."""
    return AuditRecord(
        event_type="proxy_request", outcome="allow", status=200, latency_ms=3,
        request_id=f"0f3c2a9e5b7d4c1a-{i}", source_ip="127.0.0.1", system="bench",
        actor_user="zhang.san", actor_client="finance-system", department="czt",
        resource="JG-0007", items=("plate_number", "driver_phone"), purpose="费用核算",
        reason="grant 17", req_hash=None, resp_hash="cd" * 32,
        extra={"method": "GET", "target": "/s/bench/api/x", "upstream_path": "/api/x",
               "rule": "allow", "line_id": 12, "grants": [17], "shape": True},
    )


def token_record(i: int = 0) -> AuditRecord:
    """What the token endpoint collects for a client-credentials token."""
    return AuditRecord(
        event_type="token_issued", outcome="success", actor_client="finance-system",
        source_ip="127.0.0.1", status=200,
        extra={"grant_type": "client_credentials", "scope": "openid vehicles:read",
               "jti": f"9b1f0c{i:06d}"},
    )


def _per_call(fn: Callable[[], Any], calls: int, rounds: int, per: int = 1) -> float:
    """Median over ``rounds`` of the thread CPU µs per unit (``per`` units a call)."""
    taken = []
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(calls):
            fn()
        taken.append((time.thread_time() - start) / (calls * per) * 1e6)
    return statistics.median(taken)


def bench_record(rounds: int) -> dict[str, float]:
    return {"AuditRecord, proxied request (policy)": _per_call(policy_record, 20_000, rounds),
            "AuditRecord, proxied request (grant)": _per_call(proxy_record, 20_000, rounds),
            "AuditRecord, token": _per_call(token_record, 20_000, rounds)}


def bench_row(rounds: int) -> dict[str, float]:
    rec = policy_record().with_ts(1_764_900_000_000)
    hasher = hash_function("sha256")

    def row() -> Any:
        return record_row(rec, chain_id="19a0-abcdef0123", seq=12345, prev_hash="ab" * 32,
                          ckpt=7, hasher=hasher)

    stored = row()
    return {"stored row + hash (record_row)": _per_call(row, 20_000, rounds),
            "journal frame (encode_frame)": _per_call(lambda: encode_frame(stored), 20_000,
                                                      rounds)}


def _commit_case(mode: str, rounds: int, batches: int = 200) -> float:
    folder = Path(tempfile.mkdtemp(prefix="govgate-auditcpu-"))
    try:
        engine, _ = open_db(folder)
        journal = Journal(folder / "journal") if mode == "journal" else None
        log = AuditLog(engine, keys=None, writer_id="bench", journal=journal)
        log.open()
        now = int(time.time() * 1000)
        batch = [policy_record(i).with_ts(now) for i in range(BATCH)]
        log.append_many_sync(batch)
        result = _per_call(lambda: log.append_many_sync(batch), batches, rounds, BATCH)
        log.close_sync()
        engine.dispose()
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_commit_db(rounds: int) -> dict[str, float]:
    return {f"commit of {BATCH}, database (writer thread)": _commit_case("database", rounds)}


def bench_commit_journal(rounds: int) -> dict[str, float]:
    return {f"commit of {BATCH}, journal (writer thread)": _commit_case("journal", rounds)}


def _handoff(rounds: int, at_once: int) -> float:
    """The event loop's and the hand-off's CPU per append with a commit that stores nothing."""
    folder = Path(tempfile.mkdtemp(prefix="govgate-auditcpu-"))
    try:
        engine, _ = open_db(folder)
        log = AuditLog(engine, keys=None, writer_id="bench")

        def fake(batch: list[AuditRecord]) -> list[StoredRecord]:
            return [StoredRecord(record=r, chain_id="c", seq=1, prev_hash="", hash="", ckpt=0)
                    for r in batch]

        log._commit = fake  # type: ignore[method-assign]
        rec = proxy_record()
        each = 3200 // at_once

        async def run() -> float:
            await log.start()

            async def one() -> None:
                for _ in range(each):
                    await log.append(rec)

            taken = []
            for _ in range(rounds + 1):
                start = time.process_time()
                await asyncio.gather(*(one() for _ in range(at_once)))
                taken.append((time.process_time() - start) / (each * at_once) * 1e6)
            await log.close()
            return statistics.median(taken[1:])

        result = asyncio.run(run())
        engine.dispose()
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_handoff(rounds: int) -> dict[str, float]:
    return {f"append hand-off, {n} at once (process CPU)": _handoff(rounds, n)
            for n in (BATCH, 1)}


CASES = {"record": bench_record, "row": bench_row, "commit_db": bench_commit_db,
         "commit_journal": bench_commit_journal, "handoff": bench_handoff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", nargs="+", choices=sorted(CASES))
    args = ap.parse_args()
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    print(f"audit CPU per record, {when} UTC, median of {args.rounds}")
    for key, case in CASES.items():
        if args.only and key not in args.only:
            continue
        for name, value in case(args.rounds).items():
            print(f"  {name:46s} {value:7.2f} us")


if __name__ == "__main__":
    main()
