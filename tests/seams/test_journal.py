"""Journal mode (``audit_path = "journal"``) × the proxy, forward-auth, 委托 and
break-glass: the key cases of each, through the real interfaces, with the gateway's
audit log in journal mode. Each answer leaves only once its record is in the journal
(read back, whole and CRC-checked, the moment the answer arrives), and the auditor's
API finds it by request id within about a second (the indexer's round). When the
journal's disk refuses a write, the answer is 503, never an unrecorded one."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from audit import journal as journal_module
from audit.chain import IDX
from audit.journal import Journal, read_frames
from gateway.app import create_app
from gateway.services import Services, audit_log
from gateway.settings import Settings
from tests.delegation.conftest import approved, cookies, systems_doc
from tests.in_process import AsgiUpstreams, Resp
from tests.proxy.conftest import (
    IN_PROCESS_ECHO,
    WORLD_PROXY,
    Echo,
    RecordingAudit,
    World,
    echo_app,
)
from tests.proxy.test_forward_auth import verify_headers
from tests.seams.conftest import break_glass, furnish
from tests.tokens import access_token
from tests.wiring import gateway_for


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, audit_path="journal", audit_index_seconds=0.2)


@pytest.fixture
async def journaled(base_services: Services) -> AsyncIterator[World]:
    """The seams' world in process, its audit log the gateway's in journal mode."""
    svc = base_services
    log = audit_log(svc.settings, svc.engine, svc.keys, "seams")
    await log.start()
    audit = RecordingAudit(log)
    svc.audit = audit  # type: ignore[assignment]
    echo = Echo()
    built = gateway_for(svc, proxy_config=WORLD_PROXY, upstream_client=AsgiUpstreams(
        {IN_PROCESS_ECHO: echo_app(echo)}))
    built.state_applier().apply(systems_doc(f"http://{IN_PROCESS_ECHO}"))
    world = World(svc, echo, None, None, audit, built, app=create_app(built))
    yield furnish(world, f"http://{IN_PROCESS_ECHO}")
    await built.aclose()
    await log.close()


def journal_request_ids(folder: Path) -> set[str]:
    journal = Journal(folder)
    return {row[IDX["request_id"]] for chain in journal.chain_ids()
            for segment in journal.segments(chain) for _, row in read_frames(segment)}


Case = Callable[[World], Awaitable[Resp]]


async def proxy_allowed(w: World) -> Resp:
    return await w.request("GET", "/s/echo/a", headers=[cookies(w, "wang.fang")])


async def proxy_refused(w: World) -> Resp:
    return await w.request("GET", "/s/vault/a", headers=[cookies(w, "wang.fang")])


async def verify_per_caller(w: World) -> Resp:
    return await w.request("GET", "/auth/verify",
                           headers=[cookies(w, "wang.fang"), *verify_headers("/s/echo/a")])


async def verify_unauthenticated(w: World) -> Resp:
    return await w.request("GET", "/auth/verify", headers=verify_headers("/s/echo/a"))


async def acting_for(w: World) -> Resp:
    number = await approved(w)
    return await w.request("GET", "/s/echo/a",
                           headers=[cookies(w, "wang.fang", acting=number)])


async def under_break_glass(w: World) -> Resp:
    await break_glass(w, "wang.fang", "vault")
    return await w.request("GET", "/auth/verify",
                           headers=[cookies(w, "wang.fang"), *verify_headers("/s/vault/a")])


CASES: dict[str, tuple[Case, int, str]] = {
    "proxy_allowed": (proxy_allowed, 200, "allow"),
    "proxy_refused": (proxy_refused, 403, "deny"),
    "verify_per_caller": (verify_per_caller, 200, "allow"),
    "verify_unauthenticated": (verify_unauthenticated, 401, "deny"),
    "acting_for": (acting_for, 200, "allow"),
    "under_break_glass": (under_break_glass, 200, "allow"),
}


async def test_each_answer_is_journaled_first_and_seen_by_the_auditor(
        journaled: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """One world for every case (a world costs more than the cases)."""
    world = journaled
    auditor = access_token(world.services, sub="aud.a", department="czt", roles=["auditor"])
    folder = world.services.settings.home / "audit-journal"
    for case, (run, status, outcome) in CASES.items():
        r = await run(world)
        assert r.status == status, (case, r.body)
        request_id = r.headers["x-request-id"]
        assert request_id in journal_request_ids(folder), case
        deadline = time.monotonic() + 1.5
        while True:
            found = await world.request(
                "GET", f"/api/v1/audit/records?request_id={request_id}", token=auditor)
            assert found.status == 200, found.body
            rows = json.loads(found.body)["records"]
            if rows or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert [(x["outcome"], x["status"]) for x in rows] == [(outcome, status)], case

    # the journal's disk refuses (ENOSPC at fsync, at fdatasync, and at the batch's
    # write with RWF_DSYNC, which makes it durable inside the preallocated segment): no
    # answer goes out unrecorded, on either path; once it takes writes again, the next
    # answer is journaled
    def no_space(fd: int, *args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal_module.os, "fsync", no_space)
    monkeypatch.setattr(journal_module.os, "fdatasync", no_space)
    monkeypatch.setattr(journal_module.os, "pwritev", no_space)
    for case in ("proxy_allowed", "verify_per_caller", "verify_unauthenticated"):
        r = await CASES[case][0](world)
        assert r.status == 503, (case, r.status, r.body)
        assert r.headers["x-request-id"] not in journal_request_ids(folder), case
    monkeypatch.undo()
    r = await verify_per_caller(world)
    assert r.status == 200 and r.headers["x-request-id"] in journal_request_ids(folder)
