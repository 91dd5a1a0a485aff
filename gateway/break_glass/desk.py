"""The break-glass operations (docs/break-glass.md), one per step, each audited.

    request   any person, for themselves: a system (or one catalogue resource on it),
              a reason and a duration of at most ``break_glass_max_hours``
    approve   a security administrator other than the requester; the second
              DIFFERENT one activates it (dual control), until requested + duration
    end       a security administrator ends it early (or refuses a pending request)
    queue     the audit administrator's review queue: every break-glass used or ended
              and not yet reviewed, with every audit record carrying its id
    close     the audit administrator closes one with a written finding

Every step writes one audit record (``event_type`` ``break_glass``, ``reason`` the
step, ``extra.break_glass`` the id), refusals included, before it answers.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import sqlalchemy as sa

from audit import AuditRecord
from audit.query import QueryFilter, query_records
from catalogue.model import NONE
from catalogue.tables import resources
from gateway.break_glass import notice
from gateway.break_glass.active import ActiveBreakGlass
from gateway.break_glass.tables import approvals, break_glass
from gateway.clock import as_utc
from gateway.department_scope import reach
from gateway.errors import Conflict, Forbidden, NotFound, ValidationError
from gateway.services import Services
from gateway.storage import write_transaction
from gateway.tables import systems, user_roles, users
from texts import Text

log = logging.getLogger(__name__)

SECADMIN, AUDITOR = "secadmin", "auditor"
APPROVALS_NEEDED = 2
# a request nobody approved within this lapses: an emergency is not tomorrow's
PENDING_LIMIT = timedelta(hours=24)
MAX_REASON = 1000
MAX_FINDING = 4000
MAX_USES = 500  # records listed per break-glass in the review (the newest)
EVENT = "break_glass"
USE_EVENTS = ("proxy_request", "forward_auth")


@dataclass(frozen=True)
class Actor:
    """The person taking a step."""

    username: str
    department: str | None
    roles: frozenset[str]
    source_ip: str | None = None
    via: str = "portal"  # portal | api | cli
    request_id: str | None = None


_AUDITED = "break_glass_refusal_audited"


def refusal_audited(exc: BaseException) -> bool:
    """Was this refusal written to the audit log already (by :meth:`BreakGlassDesk.refused`)?"""
    return bool(getattr(exc, _AUDITED, False))


def state_of(row: Any, now: datetime) -> str:
    """pending, active, expired, ended (early), refused (ended before activation)
    or lapsed (never approved within PENDING_LIMIT)."""
    if row.ended_at is not None:
        return "ended" if row.activated_at is not None else "refused"
    if row.activated_at is None:
        return "lapsed" if as_utc(row.requested_at) + PENDING_LIMIT <= now else "pending"
    return "active" if as_utc(row.ends_at) > now else "expired"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _standing_approvals(bg_id: str) -> sa.Select[Any]:
    """How many approvals still stand: those of approvers who are, now, active security
    administrators. An approval by an administrator disabled (or stripped of the role)
    since does not count towards the two: the account was perhaps disabled because it
    was not its owner's any more."""
    return (sa.select(sa.func.count()).select_from(
        approvals.join(users, users.c.username == approvals.c.approver)
        .join(user_roles, user_roles.c.user_id == users.c.id))
        .where(approvals.c.break_glass_id == bg_id, users.c.status == "active",
               user_roles.c.role_code == SECADMIN))


class BreakGlassDesk:
    def __init__(self, services: Services, active: ActiveBreakGlass) -> None:
        self.services = services
        self.engine = services.engine
        self.clock = services.clock
        self.active = active
        self.max_seconds = int(services.settings.break_glass_max_hours * 3600)

    # -- reading -----------------------------------------------------------------------

    def _row(self, conn: sa.Connection, bg_id: str) -> Any:
        row = conn.execute(sa.select(break_glass).where(break_glass.c.id == bg_id)).first()
        if row is None:
            raise NotFound(Text("bg.unknown", "no break-glass {id!r}", id=bg_id))
        return row

    def _view(self, conn: sa.Connection, row: Any, now: datetime) -> dict[str, Any]:
        approved = conn.execute(
            sa.select(approvals.c.approver, approvals.c.approved_at)
            .where(approvals.c.break_glass_id == row.id)
            .order_by(approvals.c.approved_at, approvals.c.approver)).all()
        state = state_of(row, now)
        return {
            "id": row.id, "username": row.username, "department": row.department,
            "system": row.system, "resource": row.resource, "reason": row.reason,
            "duration_seconds": row.duration_seconds, "state": state,
            "requested_at": _iso(row.requested_at),
            "approvals": [{"approver": a.approver, "at": _iso(a.approved_at)}
                          for a in approved],
            "activated_at": _iso(row.activated_at), "ends_at": _iso(row.ends_at),
            "ended_at": _iso(row.ended_at), "ended_by": row.ended_by,
            "end_reason": row.end_reason, "first_used_at": _iso(row.first_used_at),
            "in_review": row.reviewed_at is None and (
                row.first_used_at is not None or state not in ("pending", "active")),
            "reviewed_at": _iso(row.reviewed_at), "reviewed_by": row.reviewed_by,
            "finding": row.finding,
        }

    def _locked(self, conn: sa.Connection, bg_id: str) -> Any:
        # the row locked for the step: two approvals at once both count (PostgreSQL)
        return conn.execute(sa.select(break_glass).where(break_glass.c.id == bg_id)
                            .with_for_update()).first()

    # -- department scope (docs/admin-consoles.md) ---------------------------------

    def _reach(self, actor: Actor) -> frozenset[str] | None:
        """The departments whose break-glass ``actor`` administers (their department
        and those below it); None: every one (province level)."""
        return reach(self.engine, actor.department)

    def _owners(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(systems.c.code, systems.c.department_code)).all())

    def _covers(self, covered: frozenset[str] | None, view: dict[str, Any],
                owners: dict[str, str], *, system_only: bool = False) -> bool:
        """Whether the departments ``covered`` (None: all) cover ``view``: its system's
        department (the data's owner decides who opens it in an emergency), or, unless
        ``system_only``, the requester's department too."""
        if covered is None:
            return True
        if owners.get(view["system"]) in covered:
            return True
        return not system_only and view["department"] in covered

    def _in_scope(self, actor: Actor, step: str, bg_id: str, *,
                  system_only: bool = False) -> None:
        """Refuse (403, audited) a step on a break-glass outside ``actor``'s departments;
        an unknown id is left to the step's own 404."""
        covered = self._reach(actor)
        if covered is None:
            return
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(break_glass).where(break_glass.c.id == bg_id)).first()
        if row is None:
            return
        view = {"system": row.system, "department": row.department}
        if not self._covers(covered, view, self._owners(), system_only=system_only):
            self._refuse(actor, step, bg_id, Forbidden(Text(
                "bg.out_of_scope", "break-glass {id} is for a system outside your "
                "departments: its department's administrators decide", id=bg_id)))

    def get(self, bg_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self._view(conn, self._row(conn, bg_id), self.clock())

    def listing(self, *, username: str | None = None, state: str | None = None,
                limit: int = 200, within: Actor | None = None) -> list[dict[str, Any]]:
        """Newest first; ``username``: that person's own only; ``within``: those of an
        administrator's departments (the system's or the requester's)."""
        stmt = sa.select(break_glass).order_by(break_glass.c.requested_at.desc(),
                                                break_glass.c.id)
        if username is not None:
            stmt = stmt.where(break_glass.c.username == username)
        now = self.clock()
        with self.engine.connect() as conn:
            views = [self._view(conn, r, now) for r in conn.execute(stmt.limit(1000))]
        covered = self._reach(within) if within is not None else None
        if covered is not None:
            owners = self._owners()
            views = [v for v in views if self._covers(covered, v, owners)]
        return [v for v in views if state is None or v["state"] == state][:limit]

    def visible_to(self, actor: Actor, bg_id: str) -> dict[str, Any]:
        """One break-glass for its requester, a security or an audit administrator."""
        view = self.get(bg_id)
        if view["username"] != actor.username and not (
                actor.roles & {SECADMIN, AUDITOR}
                and self._covers(self._reach(actor), view, self._owners())):
            raise NotFound(Text("bg.unknown", "no break-glass {id!r}", id=bg_id))
        return view

    # -- audit -------------------------------------------------------------------------

    def _audit(self, actor: Actor, step: str, bg_id: str | None, outcome: str = "success",
               status: int | None = None, **extra: Any) -> None:
        self.services.audit.append_sync(AuditRecord(
            event_type=EVENT, outcome=outcome, status=status,
            actor_user=actor.username or None,
            department=actor.department, source_ip=actor.source_ip,
            request_id=actor.request_id, system=extra.pop("system", None), reason=step,
            extra={"break_glass": bg_id, "via": actor.via, **extra}))

    def refused(self, actor: Actor, step: str, bg_id: str | None, exc: Exception) -> None:
        """Audit a refusal of ``step`` (outcome deny, its status); the exception is
        marked, so a caller that sees it again (the API, the pages) does not audit it
        twice. Refusals made before the desk (a body the schema refuses, a token without
        the scope, a form without its CSRF token) come here too."""
        if refusal_audited(exc):
            return
        self._audit(actor, step, bg_id, outcome="deny", status=getattr(exc, "status", 400),
                    refused=str(exc))
        setattr(exc, _AUDITED, True)

    def _refuse(self, actor: Actor, step: str, bg_id: str | None, exc: Exception
                ) -> NoReturn:
        self.refused(actor, step, bg_id, exc)
        raise exc

    # -- the steps ---------------------------------------------------------------------

    def _secadmin(self, actor: Actor, step: str, bg_id: str) -> None:
        if SECADMIN not in actor.roles:
            self._refuse(actor, step, bg_id, Forbidden(Text(
                "bg.secadmin_only", "only a security administrator approves or ends a "
                "break-glass (dual control)")))

    def request(self, actor: Actor, *, system: str, resource: str | None, reason: str,
                duration_seconds: int) -> dict[str, Any]:
        step = "break_glass_requested"
        reason = reason.strip()
        if not reason:
            self._refuse(actor, step, None, ValidationError(Text(
                "bg.reason_required", "a reason is required")))
        if len(reason) > MAX_REASON:
            self._refuse(actor, step, None, ValidationError(Text(
                "bg.reason_long", "the reason is longer than {max} characters",
                max=MAX_REASON)))
        if not 60 <= duration_seconds <= self.max_seconds:
            self._refuse(actor, step, None, ValidationError(Text(
                "bg.duration", "the duration must be 1 to {max} minutes",
                max=self.max_seconds // 60)))
        now = self.clock()
        bg_id = "bg_" + secrets.token_hex(8)
        with write_transaction(self.engine) as conn:
            known = conn.execute(sa.select(systems.c.code)
                                 .where(systems.c.code == system)).scalar()
            found = None if resource is None else conn.execute(
                sa.select(resources.c.system, resources.c.share_type, resources.c.provider)
                .where(resources.c.code == resource)).first()
            owner = None if found is None else found.system
            # 不予共享: its provider department only (DESIGN.md), an emergency included
            not_shared = found is not None and found.share_type == NONE \
                and found.provider != actor.department
            b = break_glass
            open_already = conn.execute(sa.select(b.c.id, b.c.requested_at, b.c.ends_at,
                                                  b.c.activated_at, b.c.ended_at)
                                        .where(b.c.username == actor.username,
                                               b.c.system == system,
                                               b.c.resource.is_(None) if resource is None
                                               else b.c.resource == resource,
                                               b.c.ended_at.is_(None))).all()
            twin = next((r.id for r in open_already
                         if state_of(r, now) in ("pending", "active")), None)
            if known is not None and (resource is None or owner == system) and twin is None \
                    and not not_shared:
                conn.execute(break_glass.insert().values(
                    id=bg_id, username=actor.username, department=actor.department,
                    system=system, resource=resource, reason=reason,
                    duration_seconds=duration_seconds, requested_at=now))
        if known is None:
            self._refuse(actor, step, None, NotFound(Text(
                "bg.no_system", "no system {system!r}", system=system)))
        if resource is not None and owner != system:
            self._refuse(actor, step, None, NotFound(Text(
                "bg.no_resource", "no catalogue resource {resource!r} on system {system!r}",
                resource=resource, system=system)))
        if not_shared:
            self._refuse(actor, step, None, ValidationError(Text(
                "bg.not_shared", "catalogue resource {resource!r} is not shared (不予共享): "
                "only its provider department reads it, in an emergency too",
                resource=resource)))
        if twin is not None:
            # one open request per person and target: the approvers see one thing to
            # decide, and a person cannot bury the list under copies
            self._refuse(actor, step, twin, Conflict(Text(
                "bg.open_already", "break-glass {id} for this is pending or active already",
                id=twin)))
        try:
            self._audit(actor, step, bg_id, system=system, resource=resource, why=reason,
                        duration_seconds=duration_seconds)
        except Exception:
            # no record, no request: the approvers would decide, and the auditors
            # review, an emergency access nothing says who asked for or why
            with write_transaction(self.engine) as conn:
                conn.execute(approvals.delete().where(approvals.c.break_glass_id == bg_id))
                conn.execute(break_glass.delete().where(break_glass.c.id == bg_id))
            raise
        return self.get(bg_id)

    def approve(self, actor: Actor, bg_id: str) -> dict[str, Any]:
        """One security administrator's approval; the second different one activates."""
        step = "break_glass_approved"
        self._secadmin(actor, step, bg_id)
        self._in_scope(actor, step, bg_id, system_only=True)
        now = self.clock()
        problem: Exception | None = None
        activated = False
        with write_transaction(self.engine) as conn:
            row = self._locked(conn, bg_id)
            state = state_of(row, now) if row is not None else None
            if row is None:
                problem = NotFound(Text("bg.unknown", "no break-glass {id!r}", id=bg_id))
            elif row.username == actor.username:
                problem = Forbidden(Text(
                    "bg.own_request", "the requester's own approval does not count"))
            elif state != "pending":
                problem = Conflict(Text("bg.not_pending",
                                        "break-glass {id} is {state}, not pending",
                                        id=bg_id, state=state or ""))
            elif conn.execute(sa.select(approvals.c.approver).where(
                    approvals.c.break_glass_id == bg_id,
                    approvals.c.approver == actor.username)).first() is not None:
                problem = Conflict(Text(
                    "bg.approved_twice", "you approved it already: the same administrator "
                    "counts once"))
            else:
                conn.execute(approvals.insert().values(
                    break_glass_id=bg_id, approver=actor.username, approved_at=now))
                count = conn.execute(_standing_approvals(bg_id)).scalar()
                if count is not None and count >= APPROVALS_NEEDED:
                    activated = True
                    # the limit in force now: lowered since the request (a pending one
                    # waits up to a day), the longer duration asked for is not granted
                    lasts = min(row.duration_seconds, self.max_seconds)
                    conn.execute(break_glass.update().where(break_glass.c.id == bg_id)
                                 .values(activated_at=now, duration_seconds=lasts,
                                         ends_at=now + timedelta(seconds=lasts)))
        if problem is not None:
            self._refuse(actor, step, bg_id, problem)
        view = self.get(bg_id)
        try:
            self._audit(actor, step if not activated else "break_glass_activated", bg_id,
                        system=view["system"], holder=view["username"],
                        approvals=[a["approver"] for a in view["approvals"]],
                        ends_at=view["ends_at"],
                        **({"duration_seconds": view["duration_seconds"]} if activated
                           else {}))
        except Exception:
            # no record, no approval: an emergency access active without the record the
            # auditors review it by would answer 503 and still open the system
            self._unapprove(bg_id, actor.username, row.duration_seconds if activated
                            else None)
            raise
        finally:
            self.active.invalidate()
        if activated:
            self._notify(actor, "break_glass_activated", view)
        return view

    def _notify(self, actor: Actor, step: str, view: dict[str, Any]) -> None:
        """Plan ``step``'s notices and write them now; what cannot be written now is
        written by the maintenance round (:meth:`settle_notices`): the step is recorded
        already (its own record), so this never raises."""
        try:
            notice.plan(self.services, view["id"], notice.Step(
                step, actor.username, actor.source_ip, actor.request_id),
                self._auditors_covering(view))
            notice.write_due(self.services, view["id"])
        except Exception:
            log.exception("break-glass notices of %s %s: left to the maintenance round",
                          step, view["id"])

    def settle_notices(self) -> tuple[int, int]:
        """The maintenance round's part (``gateway.app._maintain``): plan the notices no
        step planned (an expiry, a process that died), then write every one still
        unwritten, this process's failures and any other's; (written, failed)."""
        for bg_id, step in notice.unplanned(self.services):
            notice.plan(self.services, bg_id, notice.Step(step),
                        self._auditors_covering(self.get(bg_id)))
        return notice.write_due(self.services)

    def _auditors_covering(self, view: dict[str, Any]) -> list[tuple[str, str | None]]:
        """(username, department) of every active audit administrator whose departments
        cover ``view``, as for the review (:meth:`_covers`)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(users.c.username, users.c.department_code)
                .join(user_roles, user_roles.c.user_id == users.c.id)
                .where(user_roles.c.role_code == AUDITOR, users.c.status == "active")
                .order_by(users.c.username)).all()
        owners = self._owners()
        return [(username, department) for username, department in found
                if self._covers(reach(self.engine, department), view, owners)]

    def _unapprove(self, bg_id: str, approver: str, duration: int | None) -> None:
        """Take back an approval whose record could not be written (``duration``: the
        one requested, when it had activated the break-glass)."""
        with write_transaction(self.engine) as conn:
            conn.execute(approvals.delete().where(approvals.c.break_glass_id == bg_id,
                                                  approvals.c.approver == approver))
            if duration is not None:
                conn.execute(break_glass.update().where(break_glass.c.id == bg_id).values(
                    activated_at=None, ends_at=None, duration_seconds=duration))

    def end(self, actor: Actor, bg_id: str, reason: str) -> dict[str, Any]:
        """End an active one early, or refuse a pending one."""
        step = "break_glass_ended"
        self._secadmin(actor, step, bg_id)
        self._in_scope(actor, step, bg_id)
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON:
            self._refuse(actor, step, bg_id, ValidationError(Text(
                "bg.end_reason", "a reason of at most {max} characters is required",
                max=MAX_REASON)))
        now = self.clock()
        problem: Exception | None = None
        with write_transaction(self.engine) as conn:
            row = self._locked(conn, bg_id)
            state = state_of(row, now) if row is not None else None
            if row is None:
                problem = NotFound(Text("bg.unknown", "no break-glass {id!r}", id=bg_id))
            elif state not in ("pending", "active"):
                problem = Conflict(Text("bg.not_open", "break-glass {id} is {state} already",
                                        id=bg_id, state=state or ""))
            else:
                conn.execute(break_glass.update().where(break_glass.c.id == bg_id).values(
                    ended_at=now, ended_by=actor.username, end_reason=reason))
        if problem is not None:
            self._refuse(actor, step, bg_id, problem)
        self.active.invalidate()
        view = self.get(bg_id)
        self._audit(actor, step, bg_id, system=view["system"], holder=view["username"],
                    was=state, why=reason)
        if state == "active":  # a refused request was never an access to be told of
            self._notify(actor, step, view)
        return view

    # -- the review --------------------------------------------------------------------

    def _auditor(self, actor: Actor, step: str, bg_id: str | None) -> None:
        if AUDITOR not in actor.roles:
            self._refuse(actor, step, bg_id, Forbidden(Text(
                "bg.auditor_only", "the break-glass review is the audit administrator's "
                "work (三员分立)")))

    def uses(self, bg_id: str) -> list[dict[str, Any]]:
        """Every audit record carrying ``bg_id`` (the newest MAX_USES), newest first."""
        page = query_records(self.engine, QueryFilter(text=bg_id, limit=MAX_USES))
        return [{"id": r["id"], "time": r["time"], "event_type": r["event_type"],
                 "outcome": r["outcome"], "status": r["status"], "actor": r["actor_user"],
                 "system": r["system"], "resource": r["resource"], "reason": r["reason"],
                 "use": r["event_type"] in USE_EVENTS}
                for r in page.records if r["extra"].get("break_glass") == bg_id]

    def queue(self, actor: Actor, *, closed: bool = False) -> list[dict[str, Any]]:
        """The review queue (``closed``: the reviewed ones, read-only), each with its
        records. Audited as an ``audit_query``-like step."""
        step = "break_glass_queue"
        self._auditor(actor, step, None)
        views = [v for v in self.listing(limit=1000, within=actor)
                 if (v["reviewed_at"] is not None) == closed
                 and (closed or v["in_review"])]
        for v in views:
            v["records"] = self.uses(v["id"])
            v["uses"] = sum(1 for r in v["records"] if r["use"])
        self._audit(actor, step, None, closed=closed, count=len(views))
        return views

    def close(self, actor: Actor, bg_id: str, finding: str) -> dict[str, Any]:
        step = "break_glass_reviewed"
        self._auditor(actor, step, bg_id)
        self._in_scope(actor, step, bg_id)
        finding = finding.strip()
        if not finding:
            self._refuse(actor, step, bg_id, ValidationError(Text(
                "bg.finding_required", "a written finding is required to close a review")))
        if len(finding) > MAX_FINDING:
            self._refuse(actor, step, bg_id, ValidationError(Text(
                "bg.finding_long", "the finding is longer than {max} characters",
                max=MAX_FINDING)))
        now = self.clock()
        problem: Exception | None = None
        with write_transaction(self.engine) as conn:
            row = self._locked(conn, bg_id)
            view = self._view(conn, row, now) if row is not None else None
            if view is None:
                problem = NotFound(Text("bg.unknown", "no break-glass {id!r}", id=bg_id))
            elif view["username"] == actor.username:
                # any person may request one, the audit administrator too: the review
                # of one's own emergency access is not one
                problem = Forbidden(Text("bg.own_review", "one's own break-glass is "
                                         "reviewed by another audit administrator"))
            elif view["reviewed_at"] is not None:
                problem = Conflict(Text("bg.reviewed", "break-glass {id} was reviewed "
                                        "already", id=bg_id))
            elif view["state"] == "active":
                # a closed review leaves the queue for good: the uses still to come
                # would never be reviewed
                problem = Conflict(Text("bg.still_active", "break-glass {id} is still "
                                        "active (until {ends}): its review closes once it "
                                        "is over", id=bg_id, ends=view["ends_at"]))
            elif not view["in_review"]:
                problem = Conflict(Text("bg.not_in_review",
                                        "break-glass {id} is {state} and unused: nothing "
                                        "to review yet", id=bg_id, state=view["state"]))
            else:
                conn.execute(break_glass.update().where(break_glass.c.id == bg_id).values(
                    reviewed_at=now, reviewed_by=actor.username, finding=finding))
        if problem is not None:
            self._refuse(actor, step, bg_id, problem)
        done = self.get(bg_id)
        try:
            self._audit(actor, step, bg_id, system=done["system"], holder=done["username"],
                        finding=finding)
        except Exception:
            # no record, no review: a closed review leaves the queue for good, and its
            # finding would be nowhere in the log the auditors answer for
            with write_transaction(self.engine) as conn:
                conn.execute(break_glass.update().where(break_glass.c.id == bg_id).values(
                    reviewed_at=None, reviewed_by=None, finding=None))
            raise
        return done
