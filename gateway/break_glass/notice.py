"""The audit administrators told of a break-glass (等保2.0: emergency access is alerted,
not only found later in the review queue).

On activation and on an early end the desk writes one ``auditor_notice`` record
per active audit administrator whose departments cover the break-glass (its system's
department or its holder's, as for the review: ``BreakGlassDesk._covers``), naming
them in ``extra.user``. The records are the notice: gateway.idp.security_events shows
them on that administrator's home page and account page like the owner's security
events, and gateway.referrals.security_mail mails them where ``security_notice_mail``
is set. One record per administrator, so each is acknowledged and mailed once.
"""

from __future__ import annotations

import logging
from typing import Any

from audit import AuditRecord
from gateway.services import Services

log = logging.getLogger(__name__)

#: the records an auditor is told by (gateway.idp.security_events reads them)
NOTICE_EVENT = "auditor_notice"


def notify(services: Services, step: str, view: dict[str, Any],
           auditors: list[tuple[str, str | None]], *, by: str, source_ip: str | None,
           request_id: str | None) -> int:
    """Write the notices of ``step`` (``break_glass_activated``, ``break_glass_ended``)
    to ``auditors`` ((username, department): those whose departments cover it, as the
    desk decides); how many were written. A notice that cannot be written is logged,
    not raised: the step is recorded already (its own record), and the review queue
    still holds it."""
    written = 0
    for username, department in auditors:
        try:
            services.audit.append_sync(AuditRecord(
                event_type=NOTICE_EVENT, outcome="success", actor_user=by,
                department=department, source_ip=source_ip, request_id=request_id,
                system=view["system"], reason=step,
                extra={"break_glass": view["id"], "user": username,
                       "holder": view["username"], "system": view["system"],
                       "ends_at": view["ended_at"] or view["ends_at"]}))
            written += 1
        except Exception:
            log.exception("break-glass notice %s to %s not written", step, username)
    return written
