"""A real ``govgate serve`` under load: the bounded run of ``bench/bench_load.py``,
then ``kill -9`` in the middle of another run and a restart. One database and one
gateway process for the module (the kill ends that process; the restart is the
module's second).

**Load** (``bench.bench_load.load_run``, the same code and checks as the full run
recorded in docs/BENCHMARKS.md, with fewer clients and requests): proxy calls
allowed, shaped and refused, catalogue searches, token refreshes, client tokens and
sign-ins; no answer a healthy gateway does not give (no 5xx: the mix has no
designed one), exactly one audit record per audited answer and no other, ``govgate
audit verify`` passes, resident memory and open descriptors flat after a warm-up
(``RSS_TOLERANCE_*``, ``FD_TOLERANCE``: generous, since a few seconds only catch a
gross leak; the full run is the measurement).

**Crash.** The process gets no chance to flush, checkpoint or release its audit
chain. A 2xx leaves the gateway only after its record is committed, so every 2xx a
client got before the kill has its record: the clients keep each request id and
token ``jti`` they received, and each is looked up. The restarted process (same
port, same database) serves the same clients, whose tokens still verify; ``govgate
audit verify`` passes over both processes' records (the killed one's chain simply
ends where its last transaction did).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from bench.bench_load import load_run, report
from bench.gateway_world import GatewayProcess, Upstream, govgate
from bench.load import Answer, read_trail, run_clients, unaudited_successes
from tests.faults.conftest import prepared

pytestmark = pytest.mark.slow

CLIENTS = 6


@dataclass
class World:
    env: dict[str, str]
    db_url: str
    gateway: GatewayProcess


@pytest.fixture(scope="module")
def world(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with prepared(upstream, tmp_path_factory.mktemp("under-load"), users=CLIENTS) as (
            env, db_url):
        world = World(env, db_url, GatewayProcess(env).start())
        try:
            yield world
        finally:
            world.gateway.stop()


async def test_a_bounded_load_run_is_clean_audited_and_flat(world: World) -> None:
    figures = await load_run(world.gateway, world.env, world.db_url, clients=CLIENTS,
                             requests=40, warmup=8, user_count=CLIENTS)
    assert not figures.problems, report(figures, database=world.db_url.split(":")[0])
    assert len(figures.run.answers) >= CLIENTS * 40


def _ok(answers: list[Answer], after: float = 0.0) -> int:
    return sum(1 for a in answers if a.at > after and 200 <= a.status < 300
               and a.op in ("allowed", "user_call", "shaped"))


async def _until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_kill_9_mid_load_loses_no_answered_record(world: World) -> None:
    first = world.gateway
    answers: list[Answer] = []
    stop = asyncio.Event()
    load = asyncio.create_task(run_clients(first.url, clients=CLIENTS, stop=stop,
                                           answers=answers, pause=0.005,
                                           user_count=CLIENTS))
    second = GatewayProcess(world.env, port=first.port)
    try:
        await _until(lambda: _ok(answers) >= 40 or load.done(), 30)
        first.kill()  # SIGKILL, under load
        killed = time.monotonic()
        world.gateway = second  # the one the module's fixture stops
        await asyncio.to_thread(second.start)
        await _until(lambda: _ok(answers, killed) >= 20 or load.done(), 30)
    finally:
        stop.set()
        await load
    assert _ok(answers, killed) >= 20, "the restarted gateway serves the same clients"
    assert [a for a in answers if a.status == 0], "the load ran while no gateway listened"

    verified = govgate(world.env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    deadline = time.monotonic() + 10  # journal mode: the indexer loads within its interval
    while (problems := unaudited_successes(answers, read_trail(world.db_url, 0))) \
            and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not problems, problems[:10]
