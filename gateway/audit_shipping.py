"""The running gateway ships its audit log: to the file of the ``audit_ship_file``
setting (:mod:`audit.ship`, for a log collector to tail) and to the syslog receiver of
``audit_syslog_target`` (:mod:`audit.syslog_ship`), each in a loop of its own (a round
a second), and a last round after the audit writer has closed (its final checkpoint
included).

A receiver that is down never touches a request: the request path only appends to the
audit log; these loops read what is committed, in a thread, and a failed round waits
(2 s, 4 s, 8 s ... at most ``BACKOFF_MAX_SECONDS``) before the next. What waits is
:func:`lags`: the ``/metrics`` gauges and ``govgate audit stats --shipping``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audit.ship import backlog, locked, ship
from audit.ship_marks import Lag, lag
from audit.syslog_ship import TARGET, SyslogTarget, parse_address, ship_syslog
from gateway.services import Services
from gateway.settings import Settings

log = logging.getLogger("govgate")

ROUND_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


def syslog_target(settings: Settings) -> SyslogTarget | None:
    """The configured syslog receiver, or None."""
    if not settings.audit_syslog_target:
        return None
    host, port = parse_address(settings.audit_syslog_target)
    return SyslogTarget(host=host, port=port, tls=settings.audit_syslog_tls,
                        ca_file=settings.audit_syslog_ca_file,
                        cert_file=settings.audit_syslog_cert_file,
                        key_file=settings.audit_syslog_key_file,
                        facility=settings.audit_syslog_facility,
                        enterprise=settings.audit_syslog_enterprise)


@dataclass(frozen=True)
class TargetLag:
    target: str  # "file" or "syslog"
    where: str  # the file, or host:port
    lag: Lag


def lags(services: Services) -> list[TargetLag]:
    """What each configured target has not taken yet (ShipError for an unreadable
    position file, a storage error when the database is down)."""
    settings = services.settings
    out: list[TargetLag] = []
    path = settings.audit_ship_path
    if path is not None:
        waiting = backlog(services.engine, path)
        out.append(TargetLag("file", str(path), Lag(waiting.records, waiting.oldest_ts)))
    target = syslog_target(settings)
    if target is not None:
        out.append(TargetLag(TARGET, target.address, lag(services.engine, TARGET)))
    return out


def syslog_round(services: Services) -> int | None:
    """Ship to the syslog receiver until caught up; how many records it accepted, None
    when another process of this home ships now. ShipError when the receiver cannot be
    reached or does not take them."""
    target = syslog_target(services.settings)
    if target is None:
        return 0
    total = 0
    # ``serve --workers N``: one process of this home ships, the others skip the round
    # instead of sending every record N times
    with locked(Path(services.settings.home) / "audit-syslog") as mine:
        if not mine:
            return None
        while True:
            done = ship_syslog(services.engine, target)
            if not done.records:
                return total
            total += done.records


def file_round(services: Services) -> int:
    """Ship to the JSON-lines file until caught up (or another process ships)."""
    path = services.settings.audit_ship_path
    if path is None:
        return 0
    total = 0
    while True:
        done = ship(services.engine, path)
        if done is None or not done.records:  # another process ships, or nothing left
            return total
        total += done.records


async def _loop(name: str, one_round: Callable[[Services], int | None], services: Services) -> None:
    failed = ""
    pause = ROUND_SECONDS
    while True:
        try:
            await asyncio.to_thread(one_round, services)
            if failed:
                log.warning("audit shipping (%s) works again", name)
            failed = ""
            pause = ROUND_SECONDS
        except Exception as exc:  # a full disk, a receiver down: said once, retried
            if str(exc) != failed:
                log.error("audit shipping (%s) failed: %s", name, exc)
            failed = str(exc)
            pause = min(BACKOFF_MAX_SECONDS, pause * 2)
        await asyncio.sleep(pause)


async def ship_forever(services: Services) -> None:
    loops = []
    if services.settings.audit_ship_path is not None:
        loops.append(_loop("file", file_round, services))
    if syslog_target(services.settings) is not None:
        loops.append(_loop("syslog", syslog_round, services))
    await asyncio.gather(*loops)


async def last_round(services: Services) -> None:
    """The records written while the gateway stopped (the writer's final checkpoint);
    a receiver that is down now gets them from the next gateway or ``audit ship``."""
    for name, one_round in (("file", file_round), ("syslog", syslog_round)):
        try:
            await asyncio.to_thread(one_round, services)
        except Exception as exc:
            log.error("audit shipping (%s) failed: %s", name, exc)
