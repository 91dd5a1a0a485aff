"""``govgate compliance``: the running configuration against what a gateway can show
of GB/T 22239-2019 level 3 (等保2.0) and GB/T 39786-2021 level 3 (密评).

Each check reads the real state (:class:`State`: the settings the server would run
with, the database, the key ring) and says ``pass``, ``fail`` or ``not_applicable``
with its evidence; what a check cannot see is said in docs/compliance.md, never
passed on trust.
"""

from __future__ import annotations

from typing import Any

from gateway.compliance import access, audit_checks, crypto, identification
from gateway.compliance.model import FAIL, NOT_APPLICABLE, PASS, STATUSES, Check, Item, State

CHECKS: tuple[Check, ...] = (
    *identification.CHECKS,
    *access.CHECKS,
    *audit_checks.CHECKS,
    *crypto.CHECKS,
)


def run_checks(state: State) -> list[Item]:
    """Every check, in the order of the standard's clauses."""
    return [check.item(state) for check in CHECKS]


def as_json(items: list[Item], render: Any = str) -> dict[str, Any]:
    """``{"items": [{"id", "title", "status", "evidence"}]}``, the texts through
    ``render`` (a language)."""
    return {"items": [{"id": i.id, "title": render(i.title), "status": i.status,
                       "evidence": render(i.evidence)} for i in items]}


__all__ = ["CHECKS", "FAIL", "NOT_APPLICABLE", "PASS", "STATUSES", "Item", "State",
           "as_json", "run_checks"]
