"""Delegation (委托): user A lets a colleague B act for A, for a bounded period, in
named roles and/or systems that A holds, once a department head of A's department
approves.

    request   A names B (an active colleague of A's own department: the approver is
              A's department head, who answers for the people of that department),
              the roles (among A's, never the 三员 admin roles) and systems (among
              those A may open), start and end (at most ``delegation_max_days``), a reason
    approve   a user holding ``dept_head`` in A's department, neither A nor B
    reject    the same people, with a note
    revoke    A, the approver's peers (any ``dept_head`` of the department), or a
              system administrator whose departments (``gateway.department_scope``)
              include it, at any time, requested or approved
    expire    a delegation is live only while ``starts_at <= now < ends_at``, read
              against the clock at each use; a running gateway then records it
              ``expired`` (``settle_ends``)
    end       a move of A or B out of the department (``gateway.delegation_moves``:
              in the moving transaction), recorded by ``settle_ends``

Every step is an ``admin_change`` record (``delegation_requested``, ``_approved``,
``_rejected``, ``_revoked``, ``_acting`` when B chooses to act, ``_expired``,
``_moved``), every refusal an
``admin_change`` with outcome ``deny`` (``delegation_refused``). What B may then do
for A is decided at each request by ``gateway.proxy.acting`` from
:class:`DelegationCache` (at most a second old).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from audit.record import AuditRecord
from gateway.clock import as_utc
from gateway.delegation_moves import ENDED, OPEN_STATES, end_moved, moved_query, mover
from gateway.delegation_tables import delegations
from gateway.department_scope import department_scope
from gateway.errors import Conflict, Forbidden, NotFound, ValidationError
from gateway.org import ADMIN_ROLES, User
from gateway.services import Services
from gateway.storage import write_transaction
from gateway.tables import users
from texts import Text

DEPT_HEAD = "dept_head"
SYSADMIN = "sysadmin"
REQUESTED, APPROVED, REJECTED, REVOKED, EXPIRED = (
    "requested",
    "approved",
    "rejected",
    "revoked",
    "expired",
)
MAX_REASON = 500


@dataclass(frozen=True)
class Delegation:
    id: int
    delegator: str  # A, for whom B acts
    delegate: str  # B
    department: str  # A's, when asked
    roles: tuple[str, ...]
    systems: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    reason: str
    state: str  # as stored: requested, approved, rejected, revoked, expired, ended
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    revoked_by: str | None = None
    revoked_at: datetime | None = None

    def state_at(self, now: datetime) -> str:
        """The state now: a requested or approved delegation past its end is expired."""
        if self.state in (REQUESTED, APPROVED) and now >= self.ends_at:
            return EXPIRED
        return self.state

    def live_at(self, now: datetime) -> bool:
        """B may act for A now."""
        return self.state == APPROVED and self.starts_at <= now < self.ends_at

    def to_dict(self, now: datetime) -> dict[str, Any]:
        def iso(d: datetime | None) -> str | None:
            return d.isoformat() if d is not None else None

        return {
            "id": self.id,
            "delegator": self.delegator,
            "delegate": self.delegate,
            "department": self.department,
            "roles": list(self.roles),
            "systems": list(self.systems),
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "reason": self.reason,
            "state": self.state_at(now),
            "live": self.live_at(now),
            "requested_at": iso(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at),
            "note": self.note,
            "revoked_by": self.revoked_by,
            "revoked_at": iso(self.revoked_at),
        }


def _row(r: Any) -> Delegation:
    return Delegation(
        id=r.id,
        delegator=r.delegator,
        delegate=r.delegate,
        department=r.department_code,
        roles=tuple(r.roles or ()),
        systems=tuple(r.systems or ()),
        starts_at=as_utc(r.starts_at),
        ends_at=as_utc(r.ends_at),
        reason=r.reason,
        state=r.state,
        requested_at=as_utc(r.requested_at),
        decided_by=r.decided_by,
        decided_at=as_utc(r.decided_at),
        note=r.note,
        revoked_by=r.revoked_by,
        revoked_at=as_utc(r.revoked_at),
    )


def read(conn: sa.Connection, delegation_id: int) -> Delegation | None:
    r = conn.execute(sa.select(delegations).where(delegations.c.id == delegation_id)).first()
    return _row(r) if r is not None else None


class DelegationCache:
    """Delegations as the database has them, each at most ``ttl`` seconds old: what
    every process checks at each use, so a revocation made anywhere holds everywhere
    within a second. A change made in this process clears it at once
    (``Services.on_admin_change``)."""

    def __init__(self, engine: sa.Engine, ttl: float = 1.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._seen: dict[int, tuple[float, Delegation | None]] = {}

    def clear(self) -> None:
        self._seen.clear()

    def get(self, delegation_id: int) -> Delegation | None:
        now = time.monotonic()
        hit = self._seen.get(delegation_id)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        with self.engine.connect() as conn:
            found = read(conn, delegation_id)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[delegation_id] = (now, found)
        return found


class Delegations:
    """Request, approve, reject, revoke and read delegations; each step audited."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.engine = services.engine
        self.clock = services.clock

    # -- reading -----------------------------------------------------------------------

    def get(self, delegation_id: int) -> Delegation:
        with self.engine.connect() as conn:
            found = read(conn, delegation_id)
        if found is None:
            raise NotFound(Text("delegation.unknown", "no delegation {id}", id=delegation_id))
        return found

    def visible_to(self, user: User) -> list[Delegation]:
        """Those ``user`` gave, received, or decides (a department head: the
        department's); a system administrator those of their departments (all at
        province level)."""
        q = sa.select(delegations).order_by(delegations.c.id.desc())
        scope = department_scope(self.engine, user.department) \
            if SYSADMIN in user.roles else None
        if scope is None or not scope.province:
            who = [
                delegations.c.delegator == user.username,
                delegations.c.delegate == user.username,
            ]
            if DEPT_HEAD in user.roles:
                who.append(delegations.c.department_code == user.department)
            if scope is not None:
                who.append(delegations.c.department_code.in_(sorted(scope.codes)))
            q = q.where(sa.or_(*who))
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(q.limit(500))]

    def live_for(self, delegate: str) -> list[Delegation]:
        """The delegations ``delegate`` may act under now."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(delegations)
                .where(delegations.c.delegate == delegate, delegations.c.state == APPROVED)
                .order_by(delegations.c.id)
            )
            return [d for d in map(_row, rows) if d.live_at(now)]

    def may_revoke(self, user: User, d: Delegation) -> bool:
        """A, a department head of A's department, or a system administrator of it."""
        return (
            user.username == d.delegator
            or (DEPT_HEAD in user.roles and user.department == d.department)
            or (SYSADMIN in user.roles
                and department_scope(self.engine, user.department).covers(d.department))
        )

    def may_decide(self, user: User, d: Delegation) -> bool:
        return (
            DEPT_HEAD in user.roles
            and user.status == "active"
            and user.department == d.department
            and user.username not in (d.delegator, d.delegate)
        )

    def heads(self, department: str) -> list[User]:
        """The active department heads (``dept_head``) of ``department``: who decides
        its people's delegations, but never one they are party to."""
        return [u for u in self.services.org.list_users(department)
                if DEPT_HEAD in u.roles and u.status == "active"]

    def deciders(self, d: Delegation, heads: list[User] | None = None) -> list[User]:
        """Who may approve or reject ``d`` now (``may_decide``); none when the
        department has no active head but A or B (a sole head asked to be a delegate
        waits for nobody: the page says so, docs/delegation.md)."""
        return [u for u in (self.heads(d.department) if heads is None else heads)
                if self.may_decide(u, d)]

    def _moved(self, d: Delegation) -> str | None:
        """The party (A, then B) no longer in the department the delegation was asked
        in: that department's head answers for its people only."""
        with self.engine.connect() as conn:
            now_in = dict(conn.execute(
                sa.select(users.c.username, users.c.department_code)
                .where(users.c.username.in_([d.delegator, d.delegate]))).all())
        return next((name for name in (d.delegator, d.delegate)
                     if now_in.get(name) != d.department), None)

    # -- the steps ---------------------------------------------------------------------

    def request(
        self,
        delegator: User,
        *,
        delegate: str,
        roles: Iterable[str],
        systems: Iterable[str],
        ends_at: datetime,
        reason: str,
        held_systems: Callable[[], set[str]],
        starts_at: datetime | None = None,
        via: str = "portal",
    ) -> Delegation:
        """A asks to let B act for A (module docstring); ``held_systems`` gives the
        systems A may open now. A refusal is audited and raised (400/403)."""
        now = self.clock()
        roles_t = tuple(sorted(set(roles)))
        systems_t = tuple(sorted(set(systems)))
        start = as_utc(starts_at) if starts_at is not None else now
        end = as_utc(ends_at)
        reason = (reason or "").strip()
        longest = max(1, self.services.settings.delegation_max_days)
        what = {
            "delegate": delegate,
            "roles": list(roles_t),
            "systems": list(systems_t),
            "starts_at": start.isoformat(),
            "ends_at": end.isoformat(),
        }
        try:
            other = self.services.org.get_user(delegate) if delegate else None
        except NotFound:
            other = None
        problem: Exception | None = None
        if other is None or other.status != "active":
            problem = ValidationError(
                Text(
                    "delegation.no_delegate",
                    "no active user {name!r} to delegate to",
                    name=delegate,
                )
            )
        elif other.username == delegator.username:
            problem = ValidationError(Text("delegation.to_self", "one cannot delegate to oneself"))
        elif other.department != delegator.department:
            problem = ValidationError(
                Text(
                    "delegation.other_department",
                    "{name} is not in your department: a delegation stays "
                    "within the department whose head approves it",
                    name=delegate,
                )
            )
        elif other.is_admin or delegator.is_admin:
            problem = ValidationError(
                Text(
                    "delegation.admin_account",
                    "the 三员 administrators neither give nor receive delegations",
                )
            )
        elif not roles_t and not systems_t:
            problem = ValidationError(
                Text("delegation.nothing", "name at least one role or system")
            )
        elif bad := sorted(set(roles_t) & ADMIN_ROLES):
            problem = ValidationError(
                Text(
                    "delegation.admin_role",
                    "the 三员 admin roles are never delegated: {roles}",
                    roles=", ".join(bad),
                )
            )
        elif lacking := sorted(set(roles_t) - delegator.roles):
            problem = ValidationError(
                Text(
                    "delegation.lacks_role",
                    "you cannot give roles you do not hold: {roles}",
                    roles=", ".join(lacking),
                )
            )
        elif lacking := sorted(set(systems_t) - held_systems()):
            problem = ValidationError(
                Text(
                    "delegation.lacks_system",
                    "you cannot give systems you may not open: {systems}",
                    systems=", ".join(lacking),
                )
            )
        elif end <= start or end <= now:
            problem = ValidationError(
                Text("delegation.bad_period", "the end must come after the start and after now")
            )
        elif start < now - timedelta(minutes=5):
            problem = ValidationError(Text("delegation.past_start", "the start is in the past"))
        elif end - start > timedelta(days=longest):
            problem = ValidationError(
                Text("delegation.too_long", "a delegation runs at most {days} days", days=longest)
            )
        elif not reason:
            problem = ValidationError(Text("delegation.no_reason", "give a reason"))
        elif len(reason) > MAX_REASON:
            problem = ValidationError(
                Text(
                    "delegation.reason_long",
                    "the reason is longer than {n} characters",
                    n=MAX_REASON,
                )
            )
        if problem is not None:
            self._refused(
                delegator.username, delegator.department, "request", None, problem, via, what
            )
            raise problem
        with self.engine.begin() as conn:
            inserted = conn.execute(
                delegations.insert().values(
                    delegator=delegator.username,
                    delegate=delegate,
                    department_code=delegator.department,
                    roles=list(roles_t),
                    systems=list(systems_t),
                    starts_at=start,
                    ends_at=end,
                    reason=reason,
                    state=REQUESTED,
                    requested_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            made = read(conn, int(inserted[0]))
        assert made is not None
        try:
            self._record("delegation_requested", delegator.username, made, via, reason=reason)
        except Exception:
            # no record, no request: the head would approve a delegation whose asking
            # nothing records (who asked, for which roles and systems, why)
            with self.engine.begin() as conn:
                conn.execute(delegations.delete().where(delegations.c.id == made.id))
            self.services.changed_here()
            raise
        return made

    def approve(self, approver: User, delegation_id: int, via: str = "portal") -> Delegation:
        return self._decide(approver, delegation_id, APPROVED, None, via)

    def reject(
        self, approver: User, delegation_id: int, note: str = "", via: str = "portal"
    ) -> Delegation:
        return self._decide(approver, delegation_id, REJECTED, note.strip()[:MAX_REASON], via)

    def _decide(
        self, approver: User, delegation_id: int, state: str, note: str | None, via: str
    ) -> Delegation:
        d = self.get(delegation_id)
        now = self.clock()
        step = "approve" if state == APPROVED else "reject"
        problem: Exception | None = None
        if approver.username in (d.delegator, d.delegate):
            problem = Forbidden(
                Text("delegation.self_approval", "neither party may decide their own delegation")
            )
        elif not self.may_decide(approver, d):
            problem = Forbidden(
                Text(
                    "delegation.not_approver",
                    "only a department head (dept_head) of {dept} decides this delegation",
                    dept=d.department,
                )
            )
        elif moved := self._moved(d):
            problem = Forbidden(
                Text(
                    "delegation.moved",
                    "{name} is no longer in {dept}: its head no longer decides this delegation",
                    name=moved,
                    dept=d.department,
                )
            )
        elif d.state_at(now) != REQUESTED:
            problem = Conflict(
                Text(
                    "delegation.not_requested",
                    "delegation {id} is {state}, not awaiting a decision",
                    id=d.id,
                    state=d.state_at(now),
                )
            )
        if problem is not None:
            self._refused(approver.username, approver.department, step, d, problem, via)
            raise problem
        after = self._change(
            d, (REQUESTED,), state=state, decided_by=approver.username, decided_at=now, note=note
        )
        # no record, no approval: B would act for A with nothing saying who let B
        with self._unclaimed_unless_recorded(d.id, state=REQUESTED, decided_by=None,
                                             decided_at=None, note=None):
            self._record(f"delegation_{state}", approver.username, after, via, note=note)
        return after

    def revoke(self, by: User, delegation_id: int, via: str = "portal") -> Delegation:
        """End a requested or approved delegation now (A, a department head of A's
        department, or a system administrator of it)."""
        d = self.get(delegation_id)
        now = self.clock()
        problem: Exception | None = None
        if not self.may_revoke(by, d):
            problem = Forbidden(
                Text(
                    "delegation.not_revoker",
                    "only the delegator, a department head of {dept} or a "
                    "system administrator revokes a delegation",
                    dept=d.department,
                )
            )
        elif d.state_at(now) not in (REQUESTED, APPROVED):
            problem = Conflict(
                Text(
                    "delegation.not_revocable",
                    "delegation {id} is {state} already",
                    id=d.id,
                    state=d.state_at(now),
                )
            )
        if problem is not None:
            self._refused(by.username, by.department, "revoke", d, problem, via)
            raise problem
        after = self._change(
            d, (REQUESTED, APPROVED), state=REVOKED, revoked_by=by.username, revoked_at=now
        )
        self._record("delegation_revoked", by.username, after, via)
        return after

    def start_acting(self, delegate: User, delegation_id: int, via: str = "portal") -> Delegation:
        """B chooses to act for A under a delegation in force (audited); the proxy
        checks it again at every request."""
        d = self.get(delegation_id)
        now = self.clock()
        if d.delegate != delegate.username or not d.live_at(now) or self._moved(d):
            problem = Forbidden(
                Text(
                    "delegation.not_in_force", "delegation {id} is not one in force to you", id=d.id
                )
            )
            self._refused(delegate.username, delegate.department, "act", d, problem, via)
            raise problem
        self._record("delegation_acting", delegate.username, d, via)
        return d

    def _change(self, d: Delegation, states: tuple[str, ...], **values: Any) -> Delegation:
        """One conditional UPDATE from one of ``states``: of two changes at once, one
        wins and the other is a 409."""
        with self.engine.begin() as conn:
            done = conn.execute(
                delegations.update()
                .where(delegations.c.id == d.id, delegations.c.state.in_(states))
                .values(**values)
            )
            if done.rowcount != 1:
                raise Conflict(
                    Text("delegation.raced", "delegation {id} changed meanwhile", id=d.id)
                )
            after = read(conn, d.id)
        assert after is not None
        return after

    # -- ends nobody asked for: a move, the clock ---------------------------------------

    def settle_ends(self) -> list[Delegation]:
        """Record the ends that happened without a request: delegations a move ended
        (``gateway.delegation_moves``; here too for a move written by a path that did
        not end them), and those past their end, stored ``expired`` now. Each is claimed
        by one conditional UPDATE, so of several gateway processes one records it
        (``delegation_moved``, ``delegation_expired``). Returns those recorded."""
        now = self.clock()
        with self.engine.connect() as conn:  # reads first: most rounds find nothing
            moved_now = conn.execute(moved_query(now).limit(1)).first() is not None
            unrecorded = [_row(r) for r in conn.execute(sa.select(delegations).where(
                delegations.c.state == ENDED, delegations.c.revoked_by.is_(None)))]
            lapsed = [_row(r) for r in conn.execute(sa.select(delegations).where(
                delegations.c.state.in_(OPEN_STATES), delegations.c.ends_at <= now))]
        if moved_now:
            with write_transaction(self.engine) as conn:
                end_moved(conn, now)
            with self.engine.connect() as conn:
                unrecorded = [_row(r) for r in conn.execute(sa.select(delegations).where(
                    delegations.c.state == ENDED, delegations.c.revoked_by.is_(None)))]
        done = []
        for d in unrecorded:
            who = mover(d.note)
            if self._claim(d.id, (ENDED,), revoked_by=who, also_unrecorded=True):
                d = dataclass_replace(d, revoked_by=who)
                with self._unclaimed_unless_recorded(d.id, revoked_by=None):
                    self._record("delegation_moved", "", d, "move", moved=who, why=d.note)
                done.append(d)
        for d in lapsed:
            if self._claim(d.id, OPEN_STATES, state=EXPIRED):
                with self._unclaimed_unless_recorded(d.id, state=d.state):
                    self._record("delegation_expired", "", dataclass_replace(d, state=EXPIRED),
                                 "clock")
                done.append(dataclass_replace(d, state=EXPIRED))
        return done

    @contextmanager
    def _unclaimed_unless_recorded(self, delegation_id: int, **before: Any) -> Iterator[None]:
        """Undo a claim (or a decision) whose record could not be written: the next round
        tries again (an end is never left unrecorded), the head decides again."""
        try:
            yield
        except Exception:
            with self.engine.begin() as conn:
                conn.execute(delegations.update().where(delegations.c.id == delegation_id)
                             .values(**before))
            self.services.changed_here()  # this process's caches saw the decision
            raise

    def _claim(self, delegation_id: int, states: tuple[str, ...],
               also_unrecorded: bool = False, **values: Any) -> bool:
        where = [delegations.c.id == delegation_id, delegations.c.state.in_(states)]
        if also_unrecorded:
            where.append(delegations.c.revoked_by.is_(None))
        with self.engine.begin() as conn:
            return bool(conn.execute(delegations.update().where(*where).values(**values))
                        .rowcount == 1)

    # -- the audit trail ---------------------------------------------------------------

    def _record(self, event: str, actor: str, d: Delegation, via: str, **more: Any) -> None:
        # record_admin_change also clears this process's caches (DelegationCache)
        self.services.record_admin_change(
            event,
            {
                "actor": actor,
                "department": d.department,
                "target": f"delegation:{d.id}",
                "delegation": d.id,
                "delegator": d.delegator,
                "delegate": d.delegate,
                "roles": list(d.roles),
                "systems": list(d.systems),
                "starts_at": d.starts_at.isoformat(),
                "ends_at": d.ends_at.isoformat(),
                "via": via,
                **{k: v for k, v in more.items() if v},
            },
        )

    def _refused(
        self,
        actor: str,
        department: str,
        step: str,
        d: Delegation | None,
        problem: Exception,
        via: str,
        what: dict[str, Any] | None = None,
    ) -> None:
        extra: dict[str, Any] = {
            "change": "delegation_refused",
            "what": step,
            "via": via,
            "why": str(problem),
            **(what or {}),
        }
        if d is not None:
            extra.update(
                target=f"delegation:{d.id}",
                delegation=d.id,
                delegator=d.delegator,
                delegate=d.delegate,
            )
        self.services.audit.append_sync(
            AuditRecord(
                event_type="admin_change",
                outcome="deny",
                status=int(getattr(problem, "status", 400)),
                actor_user=actor,
                department=department,
                reason="delegation_refused",
                extra=extra,
            )
        )
