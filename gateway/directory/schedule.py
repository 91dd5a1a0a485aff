"""The scheduled sync: a round of the served gateway's maintenance loop
(``gateway.app._maintain``) syncs when ``directory_sync_interval`` seconds have passed
since the last sync or failed sync of any process (the audit log's ``directory_synced``
and ``directory_sync_failed`` records), so workers and restarts share one schedule.
A failure (the directory down, a conflict) is audited and logged; requests go on."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa

from audit.tables import records
from gateway.directory.client import DirectoryClient
from gateway.directory.errors import DirectoryUnavailable, SyncConflict
from gateway.directory.sync import ACTOR, SyncPlan, sync
from gateway.idp.sign_out import revoke_everywhere, schedule_notices
from gateway.one_at_a_time import one_at_a_time
from gateway.root import Gateway
from gateway.services import Services

log = logging.getLogger("govgate.directory")
ROUNDS = ("directory_synced", "directory_sync_failed")


def due(services: Services) -> bool:
    """Whether the last sync (or failed one) is ``directory_sync_interval`` ago."""
    services.settle_audit()  # journal mode: the last round's record in the tables
    with services.engine.connect() as conn:
        last = conn.execute(sa.select(sa.func.max(records.c.ts)).where(
            records.c.event_type == "admin_change", records.c.reason.in_(ROUNDS))).scalar()
    if last is None:
        return True
    now_ms = services.clock().timestamp() * 1000  # records' ts: UTC milliseconds
    return bool(now_ms - int(last) >= services.settings.directory_sync_interval * 1000)


def run_round(gateway: Gateway) -> SyncPlan | None:
    """One scheduled sync if one is due; the sessions of the people it disabled end."""
    services, client = gateway.services, gateway.directory
    if client is None or services.settings.directory_sync_interval <= 0:
        return None
    # the workers' rounds start together: one of them checks and syncs, the others skip
    with one_at_a_time(services.engine, "directory-sync") as alone:
        if not alone or not due(services):
            return None
        plan = _sync_round(gateway, client)
        # journal mode: the round's record in the tables before another worker may look
        services.settle_audit()
        return plan


def _sync_round(gateway: Gateway, client: DirectoryClient) -> SyncPlan | None:
    services = gateway.services
    try:
        plan = sync(services, client)  # a failure is audited there
    except (DirectoryUnavailable, SyncConflict) as exc:
        log.warning("directory sync failed: %s", exc)
        return None
    for username in plan.newly_disabled():
        out = revoke_everywhere(gateway.provider, username)
        # recorded as the CLI's sync records it (gateway.cli.session_cmd.end_sessions)
        services.record_admin_change("sessions_revoked", {
            "actor": ACTOR, "user": username, "sessions": len(out.sessions),
            "families": out.families})
        schedule_notices(gateway.provider, out)
    return plan


async def maintain(gateway: Gateway) -> None:
    """``run_round`` off the event loop; logs its own failures."""
    try:
        await asyncio.to_thread(run_round, gateway)
    except Exception:
        log.exception("directory sync round failed")
