"""Gateway wiring of the policies package: one ``Policies`` per Services, the
state-file section, and the proxy's ``decide`` step.

``decide`` is the seam the catalogue extends: it returns a
``policies.Decision`` (allowed, rule, reason, line, extra); a later step may
replace or refine it (a grant allows, a share type denies) and must keep a
reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway.statefile import Change
from gateway.tables import departments
from policies import Policies
from policies.statefile import PoliciesSection

if TYPE_CHECKING:
    from gateway.services import Services

_KEY = "policies"


def get_policies(services: Services) -> Policies:
    """The one ``Policies`` of ``services``, loaded and watching for changes."""
    found = services.extra.get(_KEY)
    if found is None:
        found = Policies(
            services.engine,
            clock=services.clock,
            on_change=services.record_admin_change,
        )
        found.start()
        services.extra[_KEY] = found
    return found


def close_policies(services: Services) -> None:
    found = services.extra.pop(_KEY, None)
    if found is not None:
        found.close()


def _department_codes(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(departments.c.code))}


def _change(action: str, kind: str, key: str) -> Any:
    return Change(action, kind, key)


def policies_section(services: Services) -> PoliciesSection:
    return PoliciesSection(departments=_department_codes, change=_change, clock=services.clock)
