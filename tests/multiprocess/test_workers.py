"""``govgate serve --workers 2`` on PostgreSQL: both workers serve the one port, each
on its own audit chain, and ``/metrics`` shows the sum over the workers whichever of
them answers the scrape (prometheus-client's multiprocess mode, gateway.metrics)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from audit.tables import records
from bench.gateway_world import SYSTEM, GatewayProcess
from gateway.services import Services
from tests.multiprocess.conftest import ONLY_POSTGRES, shared_world
from tests.tokens import access_token, ensure_client

pytestmark = ONLY_POSTGRES


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[Services, GatewayProcess]]:
    with shared_world(tmp_path_factory.mktemp("workers"), ports=1, workers=2) as (
            services, gateways, _):
        yield services, gateways[0]


def _worker_pids(directory: Path) -> set[str]:
    """The workers that have built their metrics (each writes its gauges at once)."""
    return {p.stem.rsplit("_", 1)[1] for p in directory.glob("gauge_livesum_*.db")}


def _metric(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


def _chains(services: Services, client: str) -> dict[str, int]:
    with services.engine.connect() as conn:
        return dict(conn.execute(
            sa.select(records.c.chain_id, sa.func.count())
            .where(records.c.event_type == "proxy_request", records.c.actor_client == client)
            .group_by(records.c.chain_id)).all())


def test_metrics_are_the_sum_over_the_workers(world: tuple[Services, GatewayProcess]
                                             ) -> None:
    services, gateway = world
    directory = Path(gateway.env["GOVGATE_HOME"]) / "run" / f"metrics-{gateway.port}"
    deadline = time.monotonic() + 60
    while len(_worker_pids(directory)) < 2:  # /healthz answered: one worker is up
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.1)
    clients = [f"w{i}" for i in range(8)]
    for client in clients:
        ensure_client(services, client, "jgswj", "proxy")
    tokens = [access_token(services, sub=None, client_id=c, department="jgswj", scope="proxy")
              for c in clients]

    async def burst(round_: int) -> list[int]:
        # a connection each: the kernel hands each to whichever worker accepts first
        async def call(n: int) -> int:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(f"{gateway.url}/s/{SYSTEM}/api/items",
                                     headers={"Authorization": f"Bearer {tokens[n % 8]}"})
                return r.status_code
        return await asyncio.gather(*(call(n) for n in range(8)))

    sent = 0
    chains: dict[str, int] = {}
    for round_ in range(10):  # until both workers have served some (bounded)
        assert asyncio.run(burst(round_)) == [200] * 8
        sent += 8
        chains = {}
        for client in clients:
            for chain, count in _chains(services, client).items():
                chains[chain] = chains.get(chain, 0) + count
        if len(chains) == 2:
            break
    assert len(chains) == 2 and sum(chains.values()) == sent, chains
    # each scrape lands on either worker: every one shows the whole gateway
    for _ in range(4):
        with httpx.Client(timeout=10) as client:  # a fresh connection each time
            text = client.get(f"{gateway.url}/metrics").text
        assert _metric(text, "govgate_proxy_requests_total") == sent, text[:2000]
        assert _metric(text, "govgate_proxy_request_seconds_count") == sent
        # one series per gauge (min, max or sum over the live workers), not one a worker
        assert len(re.findall(r"^govgate_audit_queue_depth", text, re.M)) == 1
        assert _metric(text, "govgate_policy_lines") >= 0


def test_stopped_workers_are_marked_dead_in_the_metrics_directory(
        world: tuple[Services, GatewayProcess]) -> None:
    _, gateway = world
    directory = Path(gateway.env["GOVGATE_HOME"]) / "run" / f"metrics-{gateway.port}"
    assert sorted(p.name.split("_")[0] for p in directory.glob("*.db"))  # the workers' files
    assert gateway.stop() == 0, gateway.stderr()
    # counters stay for the sums; the live gauges of stopped workers are gone
    assert not list(directory.glob("gauge_live*.db"))
    assert list(directory.glob("counter_*.db"))
