"""The clock steps forward and back (an NTP correction, a VM resumed): tokens,
sessions, grants and audit checkpoints behave as docs/proxy.md ("Clock steps")
says.

The gateway here runs in this process on a real server (uvicorn on 127.0.0.1) in
front of ``bench.upstream``, with every part reading one clock the test moves
(``Services.clock``, the audit writer's clock): a real process's clock cannot be
stepped without stepping the machine's.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from audit import AuditLog
from audit.tables import checkpoints
from audit.verify import keyservice_sigcheck, verify_database
from bench.gateway_world import LOADER, OUTSIDER, WEB, Upstream, audit_records, state
from bench.load import Answer, Client
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.services import Services, open_services
from gateway.settings import Settings
from gateway.setup import initialise
from tests.proxy.conftest import Served
from tests.wiring import apply_state, parts

MONDAY = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 China time
GRANTED = "/s/api/api/items-granted"  # JG-0102: czt's grant until Monday, China time


@dataclass
class World:
    services: Services
    clock: FrozenClock
    url: str
    http: httpx.AsyncClient

    def step(self, **delta: float) -> None:
        self.clock.now += timedelta(**delta)

    async def token(self, client: tuple[str, str]) -> str:
        r = await self.http.post("/oauth2/token", auth=client, data={
            "grant_type": "client_credentials", "scope": "proxy"})
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    async def call(self, token: str, path: str = "/s/api/api/x") -> httpx.Response:
        return await self.http.get(path, headers={"Authorization": f"Bearer {token}"})

    def checkpoints(self) -> int:
        with self.services.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(checkpoints))
                       .scalar_one())


@pytest.fixture
async def world(settings: Settings, upstream: Upstream) -> AsyncIterator[World]:
    clock = FrozenClock(MONDAY)
    initialise(settings, password_factory=lambda: secrets.token_urlsafe(16) + "-Aa1!")
    services = open_services(settings, clock=clock)
    services.audit = AuditLog(services.engine, keys=services.keys, writer_id="clock-steps",
                              checkpoint_seconds=5, clock=lambda: clock().timestamp())
    doc = state(upstream.url, user_count=1)
    doc["catalogue"].append({
        "code": "JG-0102", "name": "授权物品", "provider": "jgswj", "system": "api",
        "share_type": "conditional", "conditions": "仅限核算", "update_cycle": "daily",
        "route": {"method": "GET", "path": "/api/items-granted", "records": "items"},
        "items": [{"name": "id", "title": "编号", "type": "integer", "level": 1}]})
    doc["grants"] = [{"resource": "JG-0102", "consumer": "czt", "items": ["id"],
                      "purpose": "核算", "until": "2026-03-02"}]
    apply_state(services, doc)
    built = parts(services)
    async with Served(create_app(built)) as served:
        url = f"http://127.0.0.1:{served.port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield World(services, clock, url, http)
        await built.aclose()
    await services.audit.close()
    services.close()


async def test_access_tokens_follow_the_clock_both_ways(world: World) -> None:
    early = await world.token(LOADER)
    assert (await world.call(early)).status_code == 200  # verified, and cached

    # forward past its lifetime (600 s) and the skew (60 s): expired, cached or not
    world.step(seconds=661)
    assert (await world.call(early)).status_code == 401
    late = await world.token(LOADER)
    assert (await world.call(late)).status_code == 200

    # back by two hours: a token issued after the new time is not valid yet (nbf
    # beyond the skew), the proxy's cache of verified tokens included; a new one is
    world.step(hours=-2)
    assert (await world.call(late)).status_code == 401
    now = await world.token(LOADER)
    assert (await world.call(now)).status_code == 200

    # the clock catches up: the later token is valid again, the other one expired
    world.step(hours=2, seconds=1)
    assert (await world.call(late)).status_code == 200
    assert (await world.call(now)).status_code == 401


async def test_refresh_tokens_last_their_lifetime_by_the_clock(world: World) -> None:
    answers: list[Answer] = []
    person = Client(world.url, "user000", answers)
    try:
        assert await person.sign_in()
        refresh = {"grant_type": "refresh_token"}
        # within the refresh token's 8 hours and its session's idle timeout (30 min: a
        # refresh token ends with its session, docs/sso.md): rotated
        world.step(minutes=20)
        assert await person.token("refresh", {**refresh, "refresh_token":
                                              person.refresh_token}, WEB)
        world.step(hours=-3)  # back: still valid (it expires at a time, not after a span)
        assert await person.token("refresh", {**refresh, "refresh_token":
                                              person.refresh_token}, WEB)
        assert (await world.call(person.access, "/s/api/api/mine")).status_code == 200
        world.step(hours=8, seconds=1)  # past the last one's lifetime
        assert await person.token("refresh", {**refresh, "refresh_token":
                                              person.refresh_token}, WEB) is None
        assert [a.status for a in answers if a.op == "refresh"] == [200, 200, 400]
    finally:
        await person.aclose()


async def test_sessions_end_when_the_clock_passes_their_limits(world: World) -> None:
    answers: list[Answer] = []
    person = Client(world.url, "user000", answers)
    try:
        assert await person.login()
        home = await person.http.get("/portal")
        assert home.status_code == 200
        world.step(seconds=1801)  # past the idle timeout (1800 s): signed out
        assert (await person.http.get("/portal")).status_code == 303

        assert await person.login()
        world.step(days=-1)  # back: the session lasts (its limits are times)
        assert (await person.http.get("/portal")).status_code == 200
        world.step(days=1, hours=12, seconds=1)  # past the absolute limit (12 h)
        assert (await person.http.get("/portal")).status_code == 303
    finally:
        await person.aclose()


async def test_grants_expire_when_the_clock_passes_their_day_and_hold_back(
        world: World) -> None:
    assert (await world.call(await world.token(OUTSIDER), GRANTED)).status_code == 200
    # Tuesday 00:00:01 China time: the grant "until Monday" has ended
    world.clock.now = datetime(2026, 3, 2, 16, 0, 1, tzinfo=UTC)
    r = await world.call(await world.token(OUTSIDER), GRANTED)
    assert r.status_code == 403
    record = audit_records(world.services.settings.db_url, r.headers["x-request-id"])[0]
    assert "expired after 2026-03-02" in record["reason"]
    # back to Monday: the grant is active again (its state is read at each decision)
    world.clock.now = MONDAY
    assert (await world.call(await world.token(OUTSIDER), GRANTED)).status_code == 200


async def _checkpoint_within(world: World, seconds: float, before: int) -> None:
    deadline = time.monotonic() + seconds
    while world.checkpoints() == before:
        assert time.monotonic() < deadline, "no checkpoint"
        await asyncio.sleep(0.05)


async def test_checkpoints_keep_their_cadence_and_verify_after_a_step_back(
        world: World) -> None:
    await world.call(await world.token(LOADER))
    before = world.checkpoints()
    world.step(seconds=6)  # past checkpoint_seconds (5): one is signed
    await _checkpoint_within(world, 2, before=before)
    signed = world.checkpoints()

    world.step(hours=-1)  # back, far behind the last checkpoint
    assert (await world.call(await world.token(LOADER))).status_code == 200
    # due at once: waiting until the clock caught up would leave these records
    # unsigned for an hour
    await _checkpoint_within(world, 2, before=signed)

    report = verify_database(world.services.engine, keyservice_sigcheck(world.services.keys))
    assert report.ok, [str(p) for p in report.problems]
