"""The running gateway ships its audit log (:mod:`audit.ship`) to the file of the
``audit_ship_file`` setting, for a log collector to tail: a round a second, and a
last one after the audit writer has closed (its final checkpoint included)."""

from __future__ import annotations

import asyncio
import logging

from audit.ship import ship
from gateway.services import Services

log = logging.getLogger("govgate")

ROUND_SECONDS = 1.0


async def ship_round(services: Services) -> int:
    """One round (as many records as are waiting); how many went out. Failures are
    logged once each, not raised: the gateway serves on and the next round retries."""
    path = services.settings.audit_ship_path
    if path is None:
        return 0
    total = 0
    while True:
        done = await asyncio.to_thread(ship, services.engine, path)
        if done is None or not done.records:  # another process ships, or nothing left
            return total
        total += done.records


async def ship_forever(services: Services) -> None:
    if services.settings.audit_ship_path is None:
        return
    failed = ""
    while True:
        try:
            await ship_round(services)
            if failed:
                log.warning("audit shipping works again")
            failed = ""
        except Exception as exc:  # a full disk, a removed folder: said once, retried
            if str(exc) != failed:
                log.error("audit shipping failed: %s", exc)
            failed = str(exc)
        await asyncio.sleep(ROUND_SECONDS)


async def last_round(services: Services) -> None:
    """The records written while the gateway stopped (the writer's final checkpoint)."""
    try:
        await ship_round(services)
    except Exception as exc:
        log.error("audit shipping failed: %s", exc)
