"""Several ``govgate serve`` processes on one PostgreSQL database, in front of one real
upstream (``bench.upstream``): they must behave as one gateway (docs/architecture.md,
"Several processes"). PostgreSQL only: SQLite serves one process (``serve --workers``
refuses more)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.gateway_world import GatewayProcess, Upstream, free_port, prepare
from gateway.metrics import MULTIPROC_ENV
from gateway.services import Services, open_services
from gateway.settings import load_settings
from tests.conftest import PG_URL, fresh_database
from tests.faults.conftest import cheap_hashes, world_env

pytestmark = pytest.mark.postgres

ONLY_POSTGRES = pytest.mark.skipif(
    not PG_URL, reason="several processes share one database on PostgreSQL only "
                       "(serve --workers refuses SQLite; GOVGATE_TEST_DATABASE_URL unset)")

# the documented per-process rate limit, small enough to reach in a few requests
RATE, BURST = 2.0, 12.0


@contextlib.contextmanager
def shared_world(directory: Path, *, ports: int, workers: int = 1, rate: float = RATE,
                 burst: float = BURST, settings: dict[str, str] | None = None
                 ) -> Iterator[tuple[Services, list[GatewayProcess], Upstream]]:
    """A fresh database with ``bench.gateway_world.state``, ``ports`` gateways on it
    (``workers`` each, each client limited to ``rate`` requests a second after a
    ``burst``) under one issuer, ``settings`` more environment of theirs, and this
    process's own services on it (to mint tokens and look at the records)."""
    upstream = Upstream()
    try:
        with fresh_database(directory) as db_url:
            issuer = f"http://127.0.0.1:{free_port()}"  # one gateway, one issuer
            env = world_env(directory / "home", db_url)
            env.pop(MULTIPROC_ENV, None)  # serve chooses the workers' own
            env["GOVGATE_ISSUER"] = issuer
            with cheap_hashes():
                prepare(env, upstream.url, user_count=2)
            services = open_services(load_settings(env), writer="test", actor="os:test")
            extra = {"GOVGATE_ISSUER": issuer, "GOVGATE_PROXY_RATE": str(rate),
                     "GOVGATE_PROXY_BURST": str(burst), **(settings or {})}
            gateways = [GatewayProcess(env, extra=extra, workers=workers)
                        for _ in range(ports)]
            try:
                # side by side: each imports the whole gateway; each worker too
                # (spawned), which on a busy machine takes several times one's time
                with ThreadPoolExecutor(len(gateways)) as pool:
                    list(pool.map(lambda g: g.start(timeout=60.0 * workers), gateways))
                yield services, gateways, upstream
            finally:
                for gateway in gateways:
                    gateway.stop()
                services.close()
    finally:
        upstream.close()
