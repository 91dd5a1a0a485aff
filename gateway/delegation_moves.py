"""A move ends a delegation (委托, ``gateway.delegations``): it was approved by the head
of the department its delegator (A) and delegate (B) were in, who answers for the
people of that department only. Once A or B is no longer there (moved, or gone), it
ends: state ``ended``, the move in ``note`` (``li.ming: jgswj -> czt``). So does a
disable (``-> (disabled)``) and a 三员 admin role given to A or B (``-> (secadmin)``:
the admins neither give nor receive delegations; ``gateway.org.replace_roles`` calls
:func:`end_moved` too).

:func:`end_moved` runs inside the transaction that moves a user
(``gateway.org.users_changed``, which every writer of a user's department calls: the
state file, so ``govgate apply``, ``govgate user add`` and the directory sync, and
SCIM), so the end commits, or rolls back (a dry run), with the move. What follows
the commit (the ``delegation_moved`` record, the deny list, the relying parties'
back-channel logout) is done once, by whichever gateway process settles it first
(``Delegations.settle_ends``, ``gateway.idp.oauth2.acting_ends``); ``revoked_by``
stays empty until then and then names the person who moved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from gateway.delegation_tables import delegations
from gateway.tables import user_roles, users

ENDED = "ended"
ACTIVE = "active"
#: the states a move ends (an expired one is over already)
OPEN_STATES = ("requested", "approved")


def moved_note(who: str, department: str, now_in: str | None) -> str:
    """The ``note`` of a delegation a move ended."""
    return f"{who}: {department} -> {now_in or '-'}"


def mover(note: str | None) -> str:
    """The person whose move ended a delegation, from its ``note``."""
    return (note or "").partition(":")[0] or "-"


#: where a disabled party "went" in the ``note`` (no department code has parentheses)
DISABLED = "(disabled)"
#: the 三员 admin roles (``gateway.org.ADMIN_ROLES``, which imports this module): their
#: holders neither give nor receive delegations, so one given to a party ends it
ADMIN_ROLES = ("auditor", "secadmin", "sysadmin")


def _admin_role(who: Any) -> sa.ScalarSelect[Any]:
    """The first 三员 role the user ``who`` (a ``users`` alias) holds, or NULL."""
    return (sa.select(sa.func.min(user_roles.c.role_code))
            .where(user_roles.c.user_id == who.c.id, user_roles.c.role_code.in_(ADMIN_ROLES))
            .scalar_subquery())


def moved_query(now: datetime) -> sa.Select[tuple[Any, ...]]:
    """Open delegations (requested or approved, not past their end) whose delegator or
    delegate is no longer in the delegation's department, or no longer active (disabled:
    gone from the directory, left the agency; enabled again, perhaps as another person
    reusing the name, they must not find the delegation in force again), or now holds
    a 三员 admin role (taken away again, it must not come back either)."""
    a, b = users.alias("a"), users.alias("b")
    d = delegations.c
    a_admin, b_admin = _admin_role(a), _admin_role(b)
    return (
        sa.select(d.id, d.delegator, d.delegate, d.department_code,
                  a.c.department_code.label("a_in"), b.c.department_code.label("b_in"),
                  a.c.status.label("a_status"), b.c.status.label("b_status"),
                  a_admin.label("a_admin"), b_admin.label("b_admin"))
        .select_from(delegations.outerjoin(a, a.c.username == d.delegator)
                     .outerjoin(b, b.c.username == d.delegate))
        .where(d.state.in_(OPEN_STATES), d.ends_at > now,
               sa.or_(a.c.department_code.is_(None), b.c.department_code.is_(None),
                      a.c.department_code != d.department_code,
                      b.c.department_code != d.department_code,
                      a.c.status != ACTIVE, b.c.status != ACTIVE,
                      a_admin.is_not(None), b_admin.is_not(None)))
    )


def end_moved(conn: sa.Connection, now: datetime) -> int:
    """End, in ``conn``'s transaction, every open delegation a party of which has left
    its department or was disabled; returns how many."""
    ended = 0
    for r in conn.execute(moved_query(now)).all():
        a_gone = r.a_in != r.department_code or r.a_status != ACTIVE or r.a_admin
        who, now_in, status, admin = ((r.delegator, r.a_in, r.a_status, r.a_admin) if a_gone
                                      else (r.delegate, r.b_in, r.b_status, r.b_admin))
        if now_in == r.department_code and status != ACTIVE:
            now_in = DISABLED
        elif now_in == r.department_code and admin:
            now_in = f"({admin})"
        ended += conn.execute(
            delegations.update()
            .where(delegations.c.id == r.id, delegations.c.state.in_(OPEN_STATES))
            .values(state=ENDED, revoked_at=now, revoked_by=None,
                    note=moved_note(who, r.department_code, now_in))).rowcount
    return ended
