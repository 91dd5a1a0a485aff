"""The state file's ``policies:`` section.

    policies:
      - {subject: role:data_steward, department: czt, object: "/s/assets/api/*", action: GET}
      - {subject: user:li.si, department: czt, object: "/s/assets/api/secret*", action: "*",
         effect: deny}

``subject`` is role:NAME, user:NAME, client:ID or dept:CODE; ``department`` a
department code (in the file or the database) or ``*``; ``object`` a proxy
path ``/s/SYSTEM/...`` that may end in ``*``; ``action`` an HTTP method or
``*``; ``effect`` allow (default) or deny. Apply adds the lines that are
missing and never deletes one (``govgate policy remove`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from policies import adapter
from policies.engine import ALLOW, PolicyLine, line_problems

REQUIRED = frozenset({"subject", "department", "object", "action"})
OPTIONAL = frozenset({"effect"})


def _where(index: int, entry: Any) -> str:
    line = getattr(entry, "line", 0)
    return f"policies[{index}]" + (f" (line {line})" if line else "")


def _to_line(entry: Mapping[str, Any]) -> PolicyLine:
    action = entry["action"]
    return PolicyLine(
        str(entry["subject"]), str(entry["department"]), str(entry["object"]),
        action.upper() if isinstance(action, str) else str(action),
        str(entry.get("effect", ALLOW)),
    )


def validate_entries(
    entries: list[Any], departments: set[str]
) -> list[str]:
    """Pure validation: every problem, each with its place."""
    problems: list[str] = []
    seen: dict[tuple[str, ...], int] = {}
    for i, entry in enumerate(entries):
        where = _where(i, entry)
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        for key in sorted(set(entry) - REQUIRED - OPTIONAL):
            problems.append(f"{where}: unknown key {key!r}")
        missing = sorted(REQUIRED - set(entry))
        for key in missing:
            problems.append(f"{where}: missing key {key!r}")
        if missing:
            continue
        action = entry["action"]
        action = action.upper() if isinstance(action, str) else action
        for p in line_problems(
            entry["subject"], entry["department"], entry["object"], action,
            entry.get("effect", ALLOW),
        ):
            problems.append(f"{where}: {p}")
        dept = entry["department"]
        if isinstance(dept, str) and dept != "*" and dept not in departments:
            problems.append(f"{where}: unknown department {dept!r}")
        subject = entry["subject"]
        if (isinstance(subject, str) and subject.startswith("dept:")
                and subject[5:] not in departments):
            problems.append(f"{where}: unknown department in subject {subject!r}")
        key = tuple(str(entry.get(k, ALLOW)) for k in
                    ("subject", "department", "object", "action", "effect"))
        if key in seen:
            problems.append(f"{where}: duplicate of policies[{seen[key]}]")
        else:
            seen[key] = i
    return problems


class PoliciesSection:
    """SectionHandler for ``policies:`` (see gateway.statefile.SectionHandler).

    The gateway hands in what this package must not import: how to list the
    stored department codes and how to make a plan entry (its ``Change``).
    """

    name = "policies"
    order = 50

    def __init__(
        self,
        *,
        departments: Callable[[Connection], set[str]],
        change: Callable[[str, str, str], Any],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.departments = departments
        self.change = change
        self.clock = clock or (lambda: datetime.now(UTC))

    def validate(self, entries: list[Any], doc: Mapping[str, Any], conn: Connection
                 ) -> list[str]:
        known = set(self.departments(conn))
        for entry in doc.get("departments") or []:
            if isinstance(entry, Mapping) and "code" in entry:
                known.add(str(entry["code"]))
        return validate_entries(entries, known)

    def apply(self, conn: Connection, entries: list[Any], write: bool) -> list[Any]:
        changes = []
        for entry in entries:
            line = _to_line(entry)
            if adapter.find_line(conn, line) is not None:
                continue
            changes.append(self.change("create", "policy", str(line)))
            if write:
                adapter.insert_line(conn, line, self.clock(), "state")
        return changes

    def export(self, conn: Connection) -> list[dict[str, Any]]:
        return [line.to_entry() for line in adapter.load_lines(conn)]
