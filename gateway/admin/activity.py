"""The audit administrator's view of the other two (审计管理员): every ``admin_change``
record whose actor is an account holding the ``sysadmin`` or ``secadmin`` role
(refused attempts included, outcome ``deny``), newest first, with the auditors'
usual filters. A department's auditor sees the admins of their departments. Each
query is itself audited (``audit_query``), as the audit API's are. The full console
is ``/portal/audit``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from audit import AuditQueryError, AuditRecord
from audit.query import build_query, encode_cursor, parse_filters, row_dict
from audit.tables import records
from gateway.admin.console import AUDITOR, SECADMIN, SYSADMIN, Console
from gateway.tables import user_roles, users
from texts import Text

FILTERS = ("since", "until", "user", "outcome", "text", "limit", "cursor")
WATCHED = (SYSADMIN, SECADMIN)


class AuditAdmin(Console):
    ROLE = AUDITOR

    def watched(self) -> list[dict[str, Any]]:
        """The sysadmin and secadmin accounts of the auditor's departments."""
        with self.services.engine.connect() as conn:
            rows = conn.execute(
                sa.select(users.c.username, users.c.name, users.c.department_code,
                          user_roles.c.role_code)
                .join(user_roles, user_roles.c.user_id == users.c.id)
                .where(user_roles.c.role_code.in_(WATCHED))
                .order_by(users.c.username)).all()
        return [{"username": r.username, "name": r.name, "department": r.department_code,
                 "role": r.role_code} for r in rows if self.scope.covers(r.department_code)]

    def activity(self, params: Mapping[str, str]) -> dict[str, Any]:
        """One page: ``records`` and ``next_cursor``. Unknown or malformed filters raise
        ``AuditQueryError`` naming the field."""
        try:
            for key in params:
                if key not in FILTERS:
                    raise AuditQueryError(key, Text("audit.unknown_filter", "unknown filter"))
            f = parse_filters({**params, "event_type": "admin_change"})
        except AuditQueryError as exc:
            self._audit("failure", 400, f"malformed filter {exc.field}", {})
            raise
        names = [w["username"] for w in self.watched()]
        stmt = build_query(f).where(records.c.actor_user.in_(names)).limit(f.limit + 1)
        with self.services.engine.connect() as conn:
            rows = conn.execute(stmt).fetchall() if names else []
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        found = [row_dict(r) for r in rows]
        self._audit("success", 200, "admin activity queried",
                    {"filters": f.as_dict(), "returned": len(found)})
        return {"records": found,
                "next_cursor": encode_cursor(rows[-1].ts, rows[-1].id) if more and rows
                else None}

    def _audit(self, outcome: str, status: int, reason: str, extra: dict[str, Any]) -> None:
        a = self.admin
        self.services.audit.append_sync(AuditRecord(
            event_type="audit_query", outcome=outcome, status=status, actor_user=a.username,
            department=a.department, source_ip=a.source_ip, request_id=a.request_id,
            reason=reason, extra={**extra, "via": a.via}))
