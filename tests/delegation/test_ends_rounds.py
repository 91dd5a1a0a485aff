"""The delegation-ends task (``acting_ends.watch``) runs a round a second: a cause that
fails every round (the database away) is logged once with its traceback, not once a
second, and its end is logged too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest

from gateway.idp.oauth2 import acting_ends
from gateway.idp.oauth2.acting_ends import watch


async def test_a_round_failing_again_and_again_is_logged_once(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    rounds: list[int] = []
    done = asyncio.Event()

    def round_(self: Any) -> list[Any]:
        rounds.append(1)
        if len(rounds) >= 30:
            done.set()
            return []
        raise OSError("connection refused")

    monkeypatch.setattr(acting_ends.ActingEnds, "__init__", lambda self, provider: None)
    monkeypatch.setattr(acting_ends.ActingEnds, "round", round_)

    class Services:
        def on_admin_change(self, hook: Any) -> None:
            pass

    class Provider:
        services = Services()

    caplog.set_level(logging.INFO, logger="govgate.delegations")
    task = asyncio.create_task(watch(Provider(), every=0.001))  # type: ignore[arg-type]
    try:
        async with asyncio.timeout(10):
            await done.wait()
            while len(rounds) < 31:
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    failed = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert any("again" in r.getMessage() and "29" in r.getMessage()
               for r in caplog.records if r.levelno == logging.INFO)
