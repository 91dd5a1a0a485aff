"""Which departments an admin sees and manages.

An admin of a department sees and manages that department and every department
below it (``departments.parent``). A province-level admin sees all: one whose
department is at the top of its region (no parent department) and whose region is
at the top of the regions (no parent region), such as the platform department
(平台运维) in which ``govgate init`` creates the three admin accounts. A city's
department (its region has a parent) or a department under another one is never
province level."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from gateway.org import subtree
from gateway.tables import departments, regions


@dataclass(frozen=True)
class DepartmentScope:
    department: str
    province: bool
    codes: frozenset[str]

    def covers(self, code: str | None) -> bool:
        return self.province or (code is not None and code in self.codes)


def department_scope(engine: Engine, department: str) -> DepartmentScope:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(departments.c.parent_code, regions.c.parent_code.label("region_parent"))
            .join(regions, regions.c.code == departments.c.region_code)
            .where(departments.c.code == department)).first()
        codes = frozenset(subtree(conn, department))
    province = row is not None and row.parent_code is None and row.region_parent is None
    return DepartmentScope(department, province, codes)


def reach(engine: Engine, department: str | None) -> frozenset[str] | None:
    """The departments an admin of ``department`` acts for; None: every one (province
    level). No department reaches none."""
    if not department:
        return frozenset()
    scope = department_scope(engine, department)
    return None if scope.province else scope.codes
