"""The audit administrators told of a break-glass (等保2.0: emergency access is alerted,
not only found later in the review queue).

Three steps are told: its activation, its early end, and its end by expiry (nobody
takes that step: the maintenance round finds it). Each is told to every active audit
administrator whose departments cover the break-glass (its system's department or
its holder's, as for the review: ``BreakGlassDesk._covers``), holding the role when
the step is planned, by one ``auditor_notice`` record each, naming them in
``extra.user``. The records are the notice: gateway.idp.security_events shows them on
that administrator's home page and account page like the owner's security events,
and gateway.referrals.security_mail mails them where ``security_notice_mail`` is set.

Exactly once, with any number of gateway processes, and never lost to a failed write:

1. **plan**: one transaction sets the step's mark on the break-glass row
   (``activation_noticed_at`` or ``end_noticed_at``) only if it is unset, and inserts
   one ``break_glass_notices`` row per administrator. Of two processes planning the
   same step, one sets the mark; the other's UPDATE finds it set and plans nothing.
2. **write**: each row is claimed by a conditional UPDATE (``claimed_at``), its record
   appended, and the row marked ``written_at``. A write that fails releases the claim;
   the next maintenance round (``BreakGlassDesk.settle_notices``) writes it. A claim
   older than ``LEASE`` (a process that died between claim and mark) is taken again:
   that notice may then be written twice, never not at all.

The desk plans and writes at once after activation and early end; the round plans
what no step planned (an expiry; a process that died before planning) and writes
what is still unwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from audit import AuditRecord
from gateway.break_glass.tables import break_glass, notices
from gateway.clock import as_utc
from gateway.services import Services
from gateway.storage import write_transaction

log = logging.getLogger(__name__)

#: the records an auditor is told by (gateway.idp.security_events reads them)
NOTICE_EVENT = "auditor_notice"
ACTIVATED, ENDED, EXPIRED = "break_glass_activated", "break_glass_ended", "break_glass_expired"
#: a claim not marked written within this is taken again (its process died)
LEASE = timedelta(minutes=5)
#: the round plans an activation or an early end this long after it only: the step's
#: own process plans it at once (and takes an activation back whose record failed)
GRACE = timedelta(seconds=60)
BATCH = 200


@dataclass(frozen=True)
class Step:
    """A step to tell of, and who took it (none: an expiry)."""

    step: str
    by: str | None = None
    source_ip: str | None = None
    request_id: str | None = None


def _mark(step: str) -> Any:
    return break_glass.c.activation_noticed_at if step == ACTIVATED \
        else break_glass.c.end_noticed_at


def plan(services: Services, bg_id: str, step: Step,
         auditors: Sequence[tuple[str, str | None]]) -> bool:
    """Claim ``step`` of ``bg_id`` and plan a notice to each of ``auditors`` ((username,
    department)) in one transaction; False when it was claimed already."""
    now = services.clock()
    with write_transaction(services.engine) as conn:
        claimed = conn.execute(break_glass.update()
                               .where(break_glass.c.id == bg_id, _mark(step.step).is_(None))
                               .values({_mark(step.step).name: now})).rowcount
        if claimed != 1:
            return False
        if auditors:
            conn.execute(notices.insert(), [
                {"break_glass_id": bg_id, "step": step.step, "auditor": username,
                 "department": department, "by": step.by, "source_ip": step.source_ip,
                 "request_id": step.request_id, "due_at": now, "tries": 0}
                for username, department in auditors])
    return True


def write_due(services: Services, bg_id: str | None = None) -> tuple[int, int]:
    """Write the notices planned and not yet written (``bg_id``: that break-glass's
    only): (written, failed). A failed one stays due."""
    now = services.clock()
    n = notices.c
    due = sa.and_(n.written_at.is_(None),
                  sa.or_(n.claimed_at.is_(None), n.claimed_at < now - LEASE))
    stmt = (sa.select(n.break_glass_id, n.step, n.auditor, n.department, n.by, n.source_ip,
                      n.request_id, break_glass.c.username, break_glass.c.system,
                      break_glass.c.ends_at, break_glass.c.ended_at)
            .join(break_glass, break_glass.c.id == n.break_glass_id)
            .where(due).order_by(n.due_at, n.break_glass_id, n.auditor).limit(BATCH))
    if bg_id is not None:
        stmt = stmt.where(n.break_glass_id == bg_id)
    with services.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    written = failed = 0
    for row in rows:
        key = (n.break_glass_id == row.break_glass_id, n.step == row.step,
               n.auditor == row.auditor)
        with write_transaction(services.engine) as conn:
            mine = conn.execute(notices.update().where(*key, due)
                                .values(claimed_at=now, tries=n.tries + 1)).rowcount == 1
        if not mine:
            continue  # another process writes it
        try:
            _append(services, row)
        except Exception:
            log.exception("break-glass notice %s of %s to %s not written; the maintenance "
                          "round tries again", row.step, row.break_glass_id, row.auditor)
            with write_transaction(services.engine) as conn:
                conn.execute(notices.update().where(*key).values(claimed_at=None))
            failed += 1
            continue
        with write_transaction(services.engine) as conn:
            conn.execute(notices.update().where(*key).values(written_at=services.clock()))
        written += 1
    return written, failed


def _append(services: Services, row: Any) -> None:
    end = row.ended_at if row.step == ENDED and row.ended_at is not None else row.ends_at
    services.audit.append_sync(AuditRecord(
        event_type=NOTICE_EVENT, outcome="success", actor_user=row.by,
        department=row.department, source_ip=row.source_ip, request_id=row.request_id,
        system=row.system, reason=row.step,
        extra={"break_glass": row.break_glass_id, "user": row.auditor,
               "holder": row.username, "system": row.system,
               "ends_at": None if end is None else as_utc(end).isoformat()}))


def unplanned(services: Services) -> list[tuple[str, str]]:
    """(id, step) of every activation and end no step planned: an expiry (nobody ends
    it), or an activation or early end older than ``GRACE`` whose process did not
    plan it (it died, or the planning failed)."""
    now: datetime = services.clock()
    b = break_glass.c
    with services.engine.connect() as conn:
        activations = conn.execute(sa.select(b.id).where(
            b.activated_at.is_not(None), b.activated_at <= now - GRACE,
            b.activation_noticed_at.is_(None))).scalars().all()
        ends = conn.execute(sa.select(b.id, b.ended_at).where(
            b.activated_at.is_not(None), b.end_noticed_at.is_(None),
            sa.or_(b.ended_at <= now - GRACE,
                   sa.and_(b.ended_at.is_(None), b.ends_at <= now)))).all()
    return [*((bg_id, ACTIVATED) for bg_id in activations),
            *((r.id, ENDED if r.ended_at is not None else EXPIRED) for r in ends)]
