"""The database goes away in the middle of a load run, then comes back.

On PostgreSQL (the run with GOVGATE_TEST_DATABASE_URL) the test starts a cluster of
its own and stops it with ``pg_ctl stop -m immediate`` (a crash, for the server),
then starts it again on the same port. On SQLite the disk fills: the gateway
process may write no byte more to any file (``RLIMIT_FSIZE`` 0, set on the running
process with ``prlimit``; writes fail as they do on a full disk, reads go on), then
the limit is lifted. Neither needs a mount, and neither touches the shared server.
(Making the file read-only would do nothing here: the gateway keeps the
descriptors it opened, and root ignores the mode.)

Meanwhile: every audited request fails with 503 problem+json and nothing is served
without its audit record; ``/readyz`` says not ready. After: the same process (no
restart) answers again and says ready; every 2xx a client got has its record;
``govgate audit verify`` passes.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.gateway_world import GatewayProcess, Upstream, govgate, prepare
from bench.load import EVENTS, HEALTHY, Answer, read_trail, run_clients, unaudited_successes
from tests.conftest import PG_URL
from tests.faults.conftest import world_env
from tests.faults.postgres import Cluster, binaries_missing

pytestmark = pytest.mark.slow

USERS = 4


class Outage:
    """How the run's kind of database is taken away and given back."""

    url: str

    def begin(self, gateway: GatewayProcess) -> None:
        raise NotImplementedError

    def end(self, gateway: GatewayProcess) -> None:
        raise NotImplementedError


class PostgresStops(Outage):
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.url = cluster.url

    def begin(self, gateway: GatewayProcess) -> None:
        self.cluster.stop("immediate")

    def end(self, gateway: GatewayProcess) -> None:
        self.cluster.start()


class DiskFills(Outage):
    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"

    def begin(self, gateway: GatewayProcess) -> None:
        # the soft limit only: lifting it again needs no privilege
        resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    def end(self, gateway: GatewayProcess) -> None:
        resource.prlimit(gateway.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Outage]:
    if not PG_URL:
        yield DiskFills(tmp_path / "govgate.db")
        return
    missing = binaries_missing()
    if missing:
        pytest.skip(f"cannot start a PostgreSQL cluster to stop: {missing}")
    cluster = Cluster().create()
    try:
        yield PostgresStops(cluster)
    finally:
        cluster.destroy()


async def _until(condition: Callable[[], bool], within: float, what: str) -> float:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)
    return time.monotonic()


async def _readyz(gateway: GatewayProcess, status: int, within: float) -> float:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=5) as http:
        deadline = time.monotonic() + within
        while True:
            r = await http.get("/readyz")
            if r.status_code == status:
                if status == 503:
                    assert r.headers["content-type"] == "application/problem+json"
                    assert r.json()["type"] == "urn:govgate:error:storage"
                return time.monotonic()
            assert time.monotonic() < deadline, f"/readyz not {status} within {within} s"
            await asyncio.sleep(0.05)


def _served(answers: list[Answer], after: float) -> int:
    return sum(1 for a in answers if a.at > after and a.op in EVENTS and 200 <= a.status < 400)


async def test_503_while_the_database_is_gone_and_back_without_a_restart(
        outage: Outage, upstream: Upstream, tmp_path: Path) -> None:
    env = world_env(tmp_path / "home", outage.url)
    prepare(env, upstream.url, user_count=USERS)
    gateway = GatewayProcess(env)
    answers: list[Answer] = []
    stop = asyncio.Event()
    with gateway.running():
        pid = gateway.pid
        load = asyncio.create_task(run_clients(gateway.url, clients=USERS, stop=stop,
                                               answers=answers, pause=0.005,
                                               user_count=USERS))
        try:
            await _until(lambda: _served(answers, 0) >= 30 or load.done(), 30, "load")
            await asyncio.to_thread(outage.begin, gateway)
            # a margin: an answer whose record was committed just before is not late
            down = await _readyz(gateway, 503, within=5) + 0.3
            await asyncio.sleep(1.2)  # the load goes on against no database
            assert await _readyz(gateway, 503, within=0.1)
            restoring = time.monotonic()
            await asyncio.to_thread(outage.end, gateway)
            back = await _readyz(gateway, 200, within=20) + 0.3
            await _until(lambda: _served(answers, back) >= 30 or load.done(), 20,
                         "answers after the database came back")
        finally:
            stop.set()
            await load  # raises what a client raised
        assert gateway.pid == pid and gateway.alive()  # never restarted
    assert govgate(env, "audit", "verify").returncode == 0

    during = [a for a in answers if down < a.at < restoring and a.op in EVENTS]
    assert len(during) >= 10, "the load went on during the outage"
    assert {(a.status, a.problem) for a in during} == {(503, True)}, during[:5]
    # every 5xx of the whole run was a 503 problem, and every answer came
    assert not [a for a in answers if a.status == 0 or (a.status >= 500 and (
        a.status != 503 or not a.problem))], [a for a in answers if a.status >= 500][:5]
    # back: the calls that keep no state (a client's token) answer as before; a
    # person whose refresh token was rotated by a call that got no answer signs in
    # again (the lost token is a replay now: its family is revoked, as designed)
    after = [a for a in answers if a.at > back
             and a.op in ("allowed", "denied", "shaped", "cc_token")]
    assert after and all(a.status == HEALTHY[a.op] for a in after), after[:5]
    problems = unaudited_successes(answers, read_trail(outage.url, 0))
    assert not problems, problems[:10]
