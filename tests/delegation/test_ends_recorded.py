"""A delegation end's ``delegation_tokens_ended`` record is not lost when its write
fails after the families were revoked (``gateway.idp.oauth2.acting_ends``): the
revocation marks each family in its own transaction, and a later round records what
is marked. Before, the next round found no live family and the record never came."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audit.errors import AuditWriteError
from gateway.idp.oauth2.acting import ENDED
from gateway.idp.oauth2.acting_ends import ActingEnds, RoundFailed
from gateway.idp.oauth2.tables import acting
from tests.delegation.conftest import steps
from tests.delegation.test_ends_atomic import revoked_with_tokens
from tests.proxy.conftest import World

CHANGE = "delegation_tokens_ended"


def marks(world: World) -> int:
    with world.services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(acting).where(
            acting.c.grant_key.startswith(ENDED))).scalar_one())


async def test_the_record_of_ended_tokens_survives_a_failed_audit_write(
        sockets: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world = sockets
    audit: Any = world.services.audit
    append_sync = audit.append_sync
    refused: list[str] = []

    def audit_down_for_the_end(record: Any) -> Any:
        if (record.extra or {}).get("change") == CHANGE and not refused:
            refused.append(CHANGE)  # the audit database away for this one write
            raise AuditWriteError("audit log unavailable")
        return append_sync(record)

    # before the revocation: whichever round ends the tokens (the served gateway's
    # own, woken by the revocation, or this test's) meets the fault
    monkeypatch.setattr(audit, "append_sync", audit_down_for_the_end)
    jti = await revoked_with_tokens(world)
    ends = ActingEnds(world.built.provider)
    async with asyncio.timeout(10):
        while not refused:
            try:
                await asyncio.to_thread(ends.round)
            except RoundFailed as failed:
                assert isinstance(failed.__cause__, AuditWriteError)
            await asyncio.sleep(0.02)
    assert world.built.provider.store.is_denied("jti", jti)  # fail closed: ended anyway
    async with asyncio.timeout(10):  # a later round writes the record
        while not [s for s in steps(world) if s.change == CHANGE]:
            await asyncio.to_thread(ends.round)
            await asyncio.sleep(0.02)
    recorded = [s for s in steps(world) if s.change == CHANGE]
    assert [(s.extra["state"], s.extra["families"], s.extra["clients"]) for s in recorded] == [
        ("revoked", 1, ["echo-web"])]
    assert marks(world) == 0
    await asyncio.to_thread(ends.round)  # and only once
    assert len([s for s in steps(world) if s.change == CHANGE]) == 1


async def test_a_mark_outlives_the_binding_purge(sockets: World,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A mark left by a failed record is never purged with the bindings: a day of the
    audit log down must not lose the record."""
    world = sockets
    audit: Any = world.services.audit
    monkeypatch.setattr(audit, "append_sync", _refuse_ends(audit.append_sync))
    await revoked_with_tokens(world)
    ends = ActingEnds(world.built.provider)
    async with asyncio.timeout(10):
        while not marks(world):
            with contextlib.suppress(RoundFailed):
                await asyncio.to_thread(ends.round)
            await asyncio.sleep(0.02)
    grants = world.built.provider.server.acting
    monkeypatch.setattr(grants, "clock", lambda: world.services.clock() + timedelta(days=2))
    grants.purge()  # the maintenance round's, two days on
    assert marks(world) == 1


def _refuse_ends(append_sync: Any) -> Any:
    def refuse(record: Any) -> Any:
        if (record.extra or {}).get("change") == CHANGE:
            raise AuditWriteError("audit log unavailable")
        return append_sync(record)
    return refuse

