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

import sqlalchemy as sa

from audit import AuditRecord
from gateway.department_scope import reach
from gateway.services import Services
from gateway.tables import systems, user_roles, users

log = logging.getLogger(__name__)
AUDITOR = "auditor"
#: the records an auditor is told by (gateway.idp.security_events reads them)
NOTICE_EVENT = "auditor_notice"


def auditors_covering(services: Services, system: str, holder_department: str | None
                      ) -> list[tuple[str, str | None]]:
    """(username, department) of every active audit administrator whose departments
    cover a break-glass on ``system`` held by someone of ``holder_department``."""
    with services.engine.connect() as conn:
        owner = conn.execute(sa.select(systems.c.department_code)
                             .where(systems.c.code == system)).scalar()
        found = conn.execute(
            sa.select(users.c.username, users.c.department_code)
            .join(user_roles, user_roles.c.user_id == users.c.id)
            .where(user_roles.c.role_code == AUDITOR, users.c.status == "active")
            .order_by(users.c.username)).all()
    told = []
    for username, department in found:
        covered = reach(services.engine, department)
        if covered is None or owner in covered or holder_department in covered:
            told.append((username, department))
    return told


def notify(services: Services, step: str, view: dict[str, Any], *, by: str,
           source_ip: str | None, request_id: str | None) -> int:
    """Write the notices of ``step`` (``break_glass_activated``, ``break_glass_ended``);
    how many were written. A notice that cannot be written is logged, not raised: the
    step is recorded already (its own record), and the review queue still holds it."""
    written = 0
    for username, department in auditors_covering(services, view["system"],
                                                   view["department"]):
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
