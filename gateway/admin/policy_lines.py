"""Policy lines as the security administrator and ``govgate policy`` add and test
them: the checks a new line passes (the same as the state file's ``policies:``
section), and the subjects a test subject stands for (as the proxy expands them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway.errors import ValidationError
from gateway.policy_wiring import catalogue_only_problem_in
from gateway.tables import clients, departments, systems, user_roles, users
from policies import PolicyLine, make_line, subjects_for
from policies.statefile import ungoverned_problems
from texts import Text, parts


def new_line(subject: str, department: str, obj: str, action: str, effect: str = "allow",
             ungoverned: str | None = None) -> PolicyLine:
    """The line, or ValidationError with the fields' problems."""
    try:
        return make_line(subject, department, obj, action, effect,
                         ungoverned=ungoverned.strip() if ungoverned else None)
    except ValueError as exc:
        raise ValidationError(Text("admin.bad_line", "bad policy line"),
                              problems=parts(exc.args[0] if exc.args else str(exc))) from None


def line_problems(engine: Engine, line: PolicyLine, reason: str | None = None) -> list[str]:
    """What keeps ``line`` out (the state file's ``policies:`` section refuses these
    too, ``policies.statefile``): an ungoverned mark without a reason, an unknown
    department, a department subject that does not exist, the catalogue-only rule."""
    problems: list[str] = list(ungoverned_problems(True, reason)) if reason is not None else []
    with engine.connect() as conn:
        known = {r[0] for r in conn.execute(sa.select(departments.c.code))}
        if line.department != "*" and line.department not in known:
            problems.append(Text("org.unknown_department", "unknown department {code!r}",
                                 code=line.department))
        if line.subject.startswith("dept:") and line.subject[5:] not in known:
            problems.append(Text("pol.subject_department",
                                 "unknown department in subject {subject!r}",
                                 subject=line.subject))
        why = catalogue_only_problem_in(conn, line)
    if why is not None:
        problems.append(why)
    return problems


def test_subject(conn: Connection, subject: str, department: str) -> dict[str, Any]:
    """Who ``subject`` stands for in a decision test, as the proxy sees a caller:
    ``user:NAME`` is the user with their current roles and department, ``client:ID``
    a client-credentials caller of its client's department, ``role:R`` someone of
    ``department`` holding R, ``dept:D`` anyone of D. Keys: username, client_id,
    roles, department, subjects."""
    username = client_id = None
    roles: list[str] = []
    if subject.startswith("user:"):
        username = subject[5:]
        row = conn.execute(sa.select(users.c.id, users.c.department_code)
                           .where(users.c.username == username)).first()
        if row is not None:
            roles = [r[0] for r in conn.execute(
                sa.select(user_roles.c.role_code).where(user_roles.c.user_id == row.id))]
            department = row.department_code
    elif subject.startswith("client:"):
        client_id = subject[7:]
        owner = conn.execute(sa.select(clients.c.department_code)
                             .where(clients.c.client_id == client_id)).scalar()
        department = owner or department
    elif subject.startswith("role:"):
        roles = [subject[5:]]
    elif subject.startswith("dept:"):
        department = subject[5:]
    return {"username": username, "client_id": client_id, "roles": sorted(roles),
            "department": department,
            "subjects": subjects_for(username=username, client_id=client_id, roles=roles,
                                     department=department)}


def client_department(conn: Connection, client_id: str) -> str | None:
    """The department ``client_id`` is registered to, None if nobody registered it."""
    found = conn.execute(sa.select(clients.c.department_code)
                         .where(clients.c.client_id == client_id)).scalar()
    return str(found) if found else None


def system_owner(conn: Connection, obj: str) -> str | None:
    """The department of the system an object ``/s/{system}/...`` names."""
    found = obj.split("/")
    if len(found) > 2 and found[1] == "s":
        owner = conn.execute(sa.select(systems.c.department_code)
                             .where(systems.c.code == found[2])).scalar()
        return str(owner) if owner else None
    return None


def case_sensitive_paths(conn: Connection, obj: str) -> bool:
    """Whether the system an object ``/s/{system}/...`` names tells path letters apart
    (deny lines then match its letters as they are: ``policies.engine``)."""
    found = obj.split("/")
    if len(found) > 2 and found[1] == "s":
        return bool(conn.execute(sa.select(systems.c.case_sensitive_paths)
                                 .where(systems.c.code == found[2])).scalar())
    return False


def as_entry(line: PolicyLine) -> Mapping[str, Any]:
    """A line as the console and the API show it: ``ungoverned`` is its reason (or None)."""
    return {"id": line.id, "subject": line.subject, "department": line.department,
            "object": line.object, "action": line.action, "effect": line.effect,
            "ungoverned": line.ungoverned}
