"""``kill -9`` of a real ``govgate serve`` in journal mode (``audit_path = "journal"``),
under load, then a restart on the same home and database.

The killed process indexes nothing while it runs (its indexer waits 30 s between
rounds): every record it acknowledged is, at the kill, in its journal only, which
the test checks in the tables first. The restarted process (a new chain: the killed
one's lease has not run out) finds the killed chain's journal unlocked and loads it:
every answer a client got has its record in the tables within seconds, and ``govgate
audit verify`` (hashes, checkpoints, the journal against the tables) passes. Then its
disk fills (``RLIMIT_FSIZE``, as tests/faults/test_database_outage.py does): audited
answers become 503 and ``/readyz`` says not ready, until the disk takes writes again.
"""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

import httpx
import pytest

from bench.gateway_world import SYSTEM, GatewayProcess, Upstream, govgate
from bench.load import Answer, read_trail, run_clients, unaudited_successes
from tests.faults.conftest import prepared

pytestmark = pytest.mark.slow

CLIENTS = 4


async def _disk_fills_and_empties(gateway: GatewayProcess) -> None:
    """No file may grow (``RLIMIT_FSIZE`` 0, as a full disk): a refusal, which is
    audited, becomes 503 and ``/readyz`` says not ready; then both recover."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
        assert (await http.get(f"/s/{SYSTEM}/x")).status_code == 401
        resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        try:
            refused = await http.get(f"/s/{SYSTEM}/x")
            assert refused.status_code == 503, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert (await http.get("/readyz")).status_code == 503
        finally:
            resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE,
                             (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get(f"/s/{SYSTEM}/x")).status_code == 401


def _answered(answers: list[Answer]) -> int:
    return sum(1 for a in answers if 200 <= a.status < 300)


async def test_kill_9_in_journal_mode_loses_no_answered_record(
        upstream: Upstream, tmp_path: Path) -> None:
    with prepared(upstream, tmp_path, users=CLIENTS) as (env, db_url):
        env = {**env, "GOVGATE_AUDIT_PATH": "journal"}
        first = GatewayProcess(env, extra={"GOVGATE_AUDIT_INDEX_SECONDS": "30"}).start()
        second = GatewayProcess(env, port=first.port)
        answers: list[Answer] = []
        stop = asyncio.Event()
        load = asyncio.create_task(run_clients(first.url, clients=CLIENTS, stop=stop,
                                               answers=answers, pause=0.005,
                                               user_count=CLIENTS))
        try:
            deadline = time.monotonic() + 30
            while _answered(answers) < 30 and not load.done():
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            first.kill()
            stop.set()
            await load
            # acknowledged, yet not in the tables: in the journal only
            assert unaudited_successes(answers, read_trail(db_url, 0))
            await asyncio.to_thread(second.start)
            deadline = time.monotonic() + 15
            while problems := unaudited_successes(answers, read_trail(db_url, 0)):
                assert time.monotonic() < deadline, problems[:10]
                await asyncio.sleep(0.1)
            verified = govgate(env, "audit", "verify")
            assert verified.returncode == 0, verified.stdout + verified.stderr
            assert "audit journal:" in verified.stdout
            await _disk_fills_and_empties(second)
        finally:
            stop.set()
            first.kill()
            second.stop()
