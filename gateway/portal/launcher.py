"""What the portal home page offers a user: the systems they may open.

One function, ``launcher_systems``; the proxy may replace it with a
policy-aware version (same signature)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gateway.tables import departments, systems


def launcher_systems(services: Any, principal: Any) -> list[dict[str, str]]:
    """Systems of the principal's department: code, name, department name, url."""
    with services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(systems.c.code, systems.c.name, systems.c.portal_path,
                      departments.c.name.label("department_name"))
            .join(departments, departments.c.code == systems.c.department_code)
            .where(systems.c.department_code == principal.department)
            .order_by(systems.c.code)
        ).all()
    out = []
    for r in rows:
        path = r.portal_path or "/"
        out.append({"code": r.code, "name": r.name, "department": r.department_name,
                    "url": f"/s/{r.code}{path if path.startswith('/') else '/' + path}"})
    return out
