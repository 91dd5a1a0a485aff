"""Gateway wiring of the policies package: building its ``Policies`` (called by the
composition root, ``gateway.root``), the state-file section, and the
catalogue-only rule.

The catalogue-only rule: a department reaches another department's system that
publishes catalogue resources through the catalogue only (a grant, or an
unconditional resource). A policy line that would open such a system to another
department is refused by ``govgate apply`` and ``govgate policy add`` unless it is
marked ``ungoverned`` with a reason, and the proxy does not honour an unmarked
one stored before a resource was published (``gateway.proxy.catalogue``).

``decide`` is the seam the catalogue extends: it returns a
``policies.Decision`` (allowed, rule, reason, line, extra); a later step may
replace or refine it (a grant allows, a share type denies) and must keep a
reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogue import store as catalogue_store
from catalogue.model import PUBLISHED
from gateway.services import Services
from gateway.tables import departments, systems
from policies import Policies, PolicyLine
from policies.statefile import PoliciesSection


def open_policies(services: Services, *, watch: bool = True) -> Policies:
    """The policy lines and their index, loaded; with ``watch`` also the watcher that
    reloads them when another process changes them (stopped by ``close``)."""
    found = Policies(services.engine, clock=services.clock,
                     on_change=services.record_admin_change)
    if watch:
        found.start()
    return found


def _department_codes(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(departments.c.code))}


def policies_section(services: Services) -> PoliciesSection:
    return PoliciesSection(departments=_department_codes, clock=services.clock,
                           check=_check_in_state_file)


def systems_reached(obj: str, owners: Mapping[str, str]) -> list[str]:
    """The systems (of ``owners``: code → department) a line's ``obj`` can reach."""
    prefix = obj[:-1] if obj.endswith("*") else None
    found = []
    for code in owners:
        root = f"/s/{code}/"
        if prefix is not None:
            hit = root.startswith(prefix) or prefix.startswith(root)
        else:
            hit = obj.startswith(root) or obj == root[:-1]
        if hit:
            found.append(code)
    return sorted(found)


def catalogue_only_problem(line: PolicyLine, owners: Mapping[str, str],
                           governed: set[str]) -> str | None:
    """Why ``line`` breaks the catalogue-only rule (module docstring), or None."""
    if line.effect != "allow" or line.ungoverned is not None:
        return None
    for code in systems_reached(line.object, owners):
        if code in governed and (line.department == "*" or line.department != owners[code]):
            who = "any department" if line.department == "*" else f"department {line.department}"
            return (f"lets {who} reach {code}, a system of {owners[code]} that publishes "
                    "catalogue resources: across departments only the catalogue opens it "
                    "(apply for a grant), or mark the line ungoverned: true with a reason")
    return None


def _owners_and_governed(conn: Connection) -> tuple[dict[str, str], set[str]]:
    owners = {r.code: r.department_code
              for r in conn.execute(sa.select(systems.c.code, systems.c.department_code))}
    governed = {r.system for r in catalogue_store.load_resources(conn) if r.status == PUBLISHED}
    return owners, governed


def catalogue_only_problem_in(conn: Connection, line: PolicyLine) -> str | None:
    """:func:`catalogue_only_problem` against the systems and resources stored."""
    owners, governed = _owners_and_governed(conn)
    return catalogue_only_problem(line, owners, governed)


def _check_in_state_file(line: PolicyLine, doc: Mapping[str, Any], conn: Connection
                         ) -> str | None:
    owners, governed = _owners_and_governed(conn)
    # a section that is not a list is refused by the state file's own checks
    systems, catalogue = doc.get("systems"), doc.get("catalogue")
    for entry in systems if isinstance(systems, list) else []:
        if isinstance(entry, Mapping) and "code" in entry and "department" in entry:
            owners[str(entry["code"])] = str(entry["department"])
    for entry in catalogue if isinstance(catalogue, list) else []:
        # a resource in the same file counts whatever its status: fail closed
        if isinstance(entry, Mapping) and "system" in entry:
            governed.add(str(entry["system"]))
    return catalogue_only_problem(line, owners, governed)
