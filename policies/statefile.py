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

A line that lets a department reach another department's system that publishes
catalogue resources is refused (the gateway hands in that check: the catalogue
is the only way across) unless it says why it may bypass the catalogue:

      - {subject: dept:czt, department: czt, object: "/s/vehicles/status/*", action: GET,
         ungoverned: true, reason: 车辆在线状态不含个人信息，经安全管理员批准}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from policies import adapter
from policies.engine import ALLOW, MAX_REASON, PolicyLine, line_problems
from statedoc import Change
from texts import Text
from texts import where as placed

REQUIRED = frozenset({"subject", "department", "object", "action"})
OPTIONAL = frozenset({"effect", "ungoverned", "reason"})

# the gateway's rule for a line, given the state file being applied: why it may not
# be stored (None when it may)
LineCheck = Callable[[PolicyLine, Mapping[str, Any], Connection], "str | None"]


def _where(index: int, entry: Any) -> str:
    line = getattr(entry, "line", 0)
    at = f"policies[{index}]"
    return Text("at_line", "{where} (line {line})", where=at, line=line) if line else at


def _to_line(entry: Mapping[str, Any]) -> PolicyLine:
    action = entry["action"]
    return PolicyLine(
        str(entry["subject"]), str(entry["department"]), str(entry["object"]),
        action.upper() if isinstance(action, str) else str(action),
        str(entry.get("effect", ALLOW)),
        ungoverned=str(entry.get("reason", "")).strip() if entry.get("ungoverned") else None,
    )


def ungoverned_problems(ungoverned: Any, reason: Any) -> list[str]:
    """Why ``ungoverned`` / ``reason`` (as a state file or the CLI gives them) are bad."""
    if ungoverned is None and reason is None:
        return []
    if not isinstance(ungoverned, bool):
        return [Text("field.bool", "{field} must be true or false", field="ungoverned")]
    if not ungoverned:
        return ([Text("pol.reason_unwanted", "reason is only for an ungoverned line")]
                if reason is not None else [])
    if not isinstance(reason, str) or not reason.strip():
        return [Text("pol.reason_needed",
                     "an ungoverned line needs a reason (why it may bypass the catalogue)")]
    if len(reason) > MAX_REASON:
        return [placed("reason", Text("pol.reason_long", "at most {n} characters", n=MAX_REASON))]
    return []


def validate_entries(
    entries: list[Any], departments: set[str]
) -> list[str]:
    """Pure validation: every problem, each with its place."""
    problems: list[str] = []
    seen: dict[tuple[str, ...], int] = {}
    for i, entry in enumerate(entries):
        where = _where(i, entry)
        if not isinstance(entry, Mapping):
            problems.append(placed(where, Text("field.mapping", "must be a mapping")))
            continue
        for key in sorted(set(entry) - REQUIRED - OPTIONAL):
            problems.append(placed(where, Text("field.unknown_key", "unknown key {key!r}",
                                               key=key)))
        missing = sorted(REQUIRED - set(entry))
        for key in missing:
            problems.append(placed(where, Text("field.missing_key", "missing key {key!r}",
                                               key=key)))
        if missing:
            continue
        action = entry["action"]
        action = action.upper() if isinstance(action, str) else action
        for p in line_problems(
            entry["subject"], entry["department"], entry["object"], action,
            entry.get("effect", ALLOW),
        ) + ungoverned_problems(entry.get("ungoverned"), entry.get("reason")):
            problems.append(placed(where, p))
        dept = entry["department"]
        if isinstance(dept, str) and dept != "*" and dept not in departments:
            problems.append(placed(where, Text("org.unknown_department",
                                                "unknown department {code!r}", code=dept)))
        subject = entry["subject"]
        if (isinstance(subject, str) and subject.startswith("dept:")
                and subject[5:] not in departments):
            problems.append(placed(where, Text("pol.subject_department",
                                                "unknown department in subject {subject!r}",
                                                subject=subject)))
        key = tuple(str(entry.get(k, ALLOW)) for k in
                    ("subject", "department", "object", "action", "effect"))
        if key in seen:
            problems.append(placed(where, Text("pol.duplicate", "duplicate of {first}",
                                                first=f"policies[{seen[key]}]")))
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
        clock: Callable[[], datetime] | None = None,
        check: LineCheck | None = None,
    ) -> None:
        self.departments = departments
        self.clock = clock or (lambda: datetime.now(UTC))
        self.check = check

    def validate(self, entries: list[Any], doc: Mapping[str, Any], conn: Connection
                 ) -> list[str]:
        known = set(self.departments(conn))
        declared = doc.get("departments")
        for entry in declared if isinstance(declared, list) else []:
            if isinstance(entry, Mapping) and "code" in entry:
                known.add(str(entry["code"]))
        problems = validate_entries(entries, known)
        if problems or self.check is None:
            return problems
        for i, entry in enumerate(entries):
            why = self.check(_to_line(entry), doc, conn)
            if why is not None:
                problems.append(placed(_where(i, entry), why))
        return problems

    def apply(self, conn: Connection, entries: list[Any], write: bool) -> list[Any]:
        changes = []
        for entry in entries:
            line = _to_line(entry)
            found = adapter.find_line(conn, line)
            if found is not None and found.ungoverned == line.ungoverned:
                continue
            changes.append(Change("create" if found is None else "update", "policy",
                                       str(line)))
            if write:
                adapter.insert_line(conn, line, self.clock(), "state")
        return changes

    def export(self, conn: Connection) -> list[dict[str, Any]]:
        return [line.to_entry() for line in adapter.load_lines(conn)]
