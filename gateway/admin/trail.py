"""What an administrator did, in the audit log: one ``admin_change`` record per action
with the values before and after it (never a secret: passwords, client secrets, TOTP
seeds and keys are not part of any view), and one per refusal (outcome ``deny``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from audit import AuditRecord
from gateway.services import Services


@dataclass(frozen=True)
class Admin:
    """The person at a console or behind an API call."""

    username: str
    department: str
    roles: frozenset[str]
    source_ip: str | None = None
    via: str = "portal"  # portal | api
    request_id: str | None = None
    client_id: str | None = None  # a client acting as itself (SCIM): the record's actor


def plain(value: Any) -> Any:
    """``value`` as JSON can hold it (times as ISO 8601, sets and tuples as lists)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items) if isinstance(value, set | frozenset) else items
    return value


class Trail:
    def __init__(self, services: Services, admin: Admin) -> None:
        self.services = services
        self.admin = admin
        self.effects: list[dict[str, Any]] = []

    def collect(self, event: str, detail: dict[str, Any]) -> None:
        """The change hook handed to the domain's operations (``Org``, the state file,
        policies, clients): what they did goes into the action's one record."""
        self.effects.append({"change": event, **plain({k: v for k, v in detail.items()
                                                       if k != "actor"})})

    def changed(self, change: str, target: dict[str, Any], before: Any, after: Any,
                **detail: Any) -> None:
        """The action done: one record, appended durably before the caller answers
        (an AuditWriteError then means the change stands unrecorded: the admin sees it)."""
        effects, self.effects = self.effects, []
        # this process sees a change to users or clients at once (others within a second)
        self.services.changed_here()
        self._append("success", None, change, {
            "change": change, **plain(target), "before": plain(before),
            "after": plain(after), **plain(detail), "effects": effects})

    def refused(self, what: str, reason: str, *, status: int = 403, **detail: Any) -> None:
        self._append("deny", status, reason, {"what": what, "roles": sorted(self.admin.roles),
                                           **plain(detail)})

    def _append(self, outcome: str, status: int | None, reason: str,
                extra: dict[str, Any]) -> None:
        a = self.admin
        self.services.audit.append_sync(AuditRecord(
            event_type="admin_change", outcome=outcome, status=status,
            actor_user=a.username if a.client_id is None else None, actor_client=a.client_id,
            department=a.department, source_ip=a.source_ip, request_id=a.request_id,
            reason=reason, extra={**extra, "via": a.via}))
