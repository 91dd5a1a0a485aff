"""The catalogue snapshot's reload in the proxy: built in a worker thread, one build
for every request that waits for it, while requests that do not need the catalogue
(/healthz, the portal's login page) are answered; a failed build answers as before
and the next request builds again; a change made during a build is never missed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from catalogue.service import Catalogue, Snapshot
from tests.catalogue.conftest import World
from tests.wiring import parts

GOVERNED = "/s/vehicles/api/vehicles"  # JG-0001, granted to czt


class HeldBuild:
    """Wraps the catalogue's build: counts builds, holds each until released (an event,
    not a timing threshold) and fails the next one when told to."""

    def __init__(self, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch) -> None:
        self.build: Callable[..., Snapshot] = catalogue._build
        self.started = threading.Event()
        self.release = threading.Event()
        self.builds = 0
        self.fail_next = False
        monkeypatch.setattr(catalogue, "_build", self)

    def __call__(self, conn: Any, version: int) -> Snapshot:
        self.builds += 1
        self.started.set()
        assert self.release.wait(10), "the test never released the build"
        if self.fail_next:
            self.fail_next = False
            raise OperationalError("SELECT", {}, Exception("the database went away"))
        return self.build(conn, version)

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, 10), "no build started"


@pytest.fixture
def held(world: World, monkeypatch: pytest.MonkeyPatch) -> HeldBuild:
    catalogue = parts(world.services).catalogue
    catalogue.invalidate()  # the next catalogue-governed request builds
    return HeldBuild(catalogue, monkeypatch)


async def test_a_build_holds_only_the_requests_that_need_it(world: World,
                                                            held: HeldBuild) -> None:
    token = world.token("czt")
    first = asyncio.create_task(world.get(GOVERNED, token))
    await held.wait_started()
    second = asyncio.create_task(world.get(GOVERNED, token))  # joins the same build
    # the event loop is free while the build runs: these are answered now
    assert (await world.http.get("/healthz")).json() == {"status": "ok"}
    page = await world.http.get("/portal/login")
    assert page.status_code == 200 and "<form" in page.text
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    held.release.set()
    a, b = await asyncio.gather(first, second)
    assert a.status_code == b.status_code == 200, a.text
    assert held.builds == 1  # single-flight
    assert world.records("proxy_request")[-1]["resource"] == "JG-0001"


async def test_a_failed_build_answers_as_before_and_the_next_request_builds(
        world: World, held: HeldBuild) -> None:
    token = world.token("czt")
    held.fail_next = True
    held.release.set()
    r = await world.get(GOVERNED, token)
    # what a database failure in the decider answered before: 503, storage, a problem
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:govgate:error:storage"
    assert held.builds == 1
    assert (await world.get(GOVERNED, token)).status_code == 200
    assert held.builds == 2


async def test_a_change_during_a_build_is_never_missed(world: World,
                                                       held: HeldBuild) -> None:
    """invalidate() while a build runs (this process changed the catalogue after the
    build read it): the waiting request decides on a snapshot built after it."""
    catalogue = parts(world.services).catalogue
    waiting = asyncio.create_task(world.get(GOVERNED, world.token("czt")))
    await held.wait_started()
    stale = catalogue._snapshot
    catalogue.invalidate()
    held.release.set()
    assert (await waiting).status_code == 200
    assert held.builds == 2
    assert catalogue._snapshot is not None and catalogue._snapshot is not stale
