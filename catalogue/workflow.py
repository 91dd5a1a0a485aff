"""Applications and grants: 申请 → 审核 → 授权 → 使用 → 到期/撤销.

    apply ──► submitted ──approve──► approved ──► grant (active ─► expired | revoked)
                  │   (provider's data steward or head; may narrow items and period)
                  ├─refer (reason; or overdue) ─► the same, now in the head's hands
                  └─reject (reason)─► rejected ──escalate──► escalated (协商, security admin)
                                                                ├─approve──► approved ──► grant
                                                                └─close (reason)──► closed
    a resource that is not shared (不予共享) can only be escalated: its applications
    start as escalated and only the security admin decides them.

A submitted or escalated application is due ``due_working_days`` (default 10)
working days after it was filed (or escalated), counted on the operator's holiday
calendar (:mod:`catalogue.calendar`: holidays off, 调休 weekend days worked), handed
in by the caller. Past that it is overdue: ``escalate_overdue`` refers it to the
provider department's head (负责人) once, never approving anything by itself.

Every step writes a row of the application's timeline (``catalogue_application_events``)
in the step's own transaction, so no reason is ever overwritten, and calls
``record(event, detail)`` after the transaction commits: the gateway turns that into
an audit record, so this package stays below the gateway. A referral also writes the
notices the gateway delivers (``channels``: its names, such as webhook and email).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from catalogue import store
from catalogue.calendar import WorkCalendar
from catalogue.errors import InvalidInput, NotAllowed, UnknownObject, WorkflowConflict
from catalogue.limits import MAX_LENGTH, too_long
from catalogue.model import (
    ADMIN_ROLES,
    APPROVED,
    CLOSED,
    CONDITIONAL,
    CST,
    DATA_STEWARD,
    DEPT_HEAD,
    ESCALATED,
    EVENT_APPROVED,
    EVENT_REFERRED,
    EVENT_REVOKED,
    EVENT_SUBMITTED,
    NONE,
    NOTICE_ABANDONED,
    NOTICE_PENDING,
    NOTICE_SENT,
    OPEN_STATES,
    PUBLISHED,
    REJECTED,
    REVOKED,
    SUBMITTED,
    UNCONDITIONAL,
    Application,
    ApplicationEvent,
    Grant,
    Notice,
    cst_date,
    parse_date,
    requested_item_problems,
)
from texts import Text

Record = Callable[[str, dict[str, Any]], None]
DUE_WORKING_DAYS = 10
MAX_PURPOSE = MAX_LENGTH["purpose"]
SYSTEM_ACTOR = "govgate"  # who refers an overdue application: the gateway itself


def add_working_days(start: datetime, days: int, holidays: Collection[date] = ()) -> datetime:
    """``start`` moved ``days`` working days on (Mon-Fri, CST, minus ``holidays``), same
    time of day (:meth:`WorkCalendar.add_working_days` without make-up working days)."""
    return WorkCalendar(holidays=frozenset(holidays)).add_working_days(start, days)


@dataclass(frozen=True)
class Actor:
    """Who acts. ``operator`` is the CLI operator on the gateway host: every transition
    is open to them, and each is still audited under their name."""

    name: str
    department: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    operator: bool = False
    client: str | None = None  # the OAuth client whose token the actor used, if any
    # the departments the security admin role acts for (department scope: a city's
    # security admin its departments only); None: every department (province level)
    reach: frozenset[str] | None = None

    def is_steward_of(self, department: str) -> bool:
        return self.operator or (DATA_STEWARD in self.roles and self.department == department)

    def is_head_of(self, department: str) -> bool:
        return self.operator or (DEPT_HEAD in self.roles and self.department == department)

    def decides_for(self, department: str) -> bool:
        """A data steward or the head (负责人) of ``department``: decides its applications."""
        return self.is_steward_of(department) or self.is_head_of(department)

    @property
    def is_secadmin(self) -> bool:
        return self.operator or "secadmin" in self.roles

    def is_secadmin_of(self, *departments: str | None) -> bool:
        """The security admin for one of ``departments`` (within the role's reach)."""
        return self.operator or ("secadmin" in self.roles and (
            self.reach is None or any(d in self.reach for d in departments if d)))

    @property
    def is_admin(self) -> bool:
        """One of the three admin roles: platform staff, not a business user."""
        return bool(self.roles & ADMIN_ROLES)


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def _begin_write(engine: Engine) -> Any:
    """A transaction that begins as a writer. Each workflow step reads the
    application or grant, then writes; on SQLite such a transaction fails at once if
    another connection (the gateway's audit log) commits in between, unless it began
    as a writer. "govgate_write" is the option gateway.storage's SQLite engines turn
    into BEGIN IMMEDIATE; other engines ignore it."""
    return engine.execution_options(govgate_write=True).begin()


class Workflow:
    def __init__(
        self,
        engine: Engine,
        *,
        record: Record,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        due_working_days: int = DUE_WORKING_DAYS,
        holidays: Collection[date] = (),
        calendar: WorkCalendar | Callable[[], WorkCalendar] | None = None,
        client_department: Callable[[str], str | None] | None = None,
        has_head: Callable[[Any, str], bool] | None = None,
    ) -> None:
        """``calendar``: the working days, or how to read the current ones (the operator
        may import a year's holidays while the gateway runs); without it, Monday to
        Friday minus ``holidays``."""
        self.engine = engine
        self.record = record
        # whether a department has an active head (dept_head) to refer to, read on the
        # referral's own connection; unset: not asked (the catalogue knows no users)
        self.has_head = has_head
        self.clock = clock
        self.due_working_days = due_working_days
        self._calendar: Callable[[], WorkCalendar]
        if calendar is None or isinstance(calendar, WorkCalendar):
            fixed = calendar if calendar is not None else WorkCalendar(
                holidays=frozenset(holidays))
            self._calendar = lambda: fixed
        else:
            self._calendar = calendar
        self.client_department = client_department

    def _now(self) -> datetime:
        return _utc(self.clock())

    def calendar(self) -> WorkCalendar:
        """The working days as they are now."""
        return self._calendar()

    def _due(self, start: datetime) -> datetime:
        return self.calendar().add_working_days(start, self.due_working_days)

    # -- applications ----------------------------------------------------------------

    def apply(
        self,
        actor: Actor,
        resource: str,
        *,
        items: Iterable[str],
        purpose: str,
        until: date | str,
        basis: str = "",
        consumer: str | None = None,
        client_id: str | None = None,
        valid_from: date | str | None = None,
    ) -> Application:
        """File an application for ``resource`` on behalf of the actor's department."""
        now = self._now()
        consumer = consumer or actor.department
        if not consumer:
            raise InvalidInput(Text("cat.needs_consumer",
                                    "an application needs the consumer department"))
        if consumer != actor.department and not actor.operator:
            raise NotAllowed(Text("cat.own_department",
                                  "you can only apply for your own department"))
        if actor.is_admin and not actor.operator:
            raise NotAllowed(Text("cat.admin_applies",
                                  "admin accounts (sysadmin, secadmin, auditor) do not apply for "
                                  "data; a staff account of the department applies"))
        item_list = _item_names(items)
        due_at = self._due(now)  # read before the write transaction begins
        with _begin_write(self.engine) as conn:
            res = store.get_resource(conn, resource)
            if res is None or res.status != PUBLISHED:
                raise UnknownObject(Text("cat.no_published", "no published resource {code!r}",
                                         code=resource))
            problems: list[str] = []
            if consumer == res.provider:
                raise WorkflowConflict(Text("cat.provider_applies",
                                            "{department} provides {code}: no application needed",
                                            department=consumer, code=resource))
            if res.share_type == UNCONDITIONAL:
                raise WorkflowConflict(Text("cat.unconditional",
                                            "{code} is shared unconditionally: no application "
                                            "needed",
                                            code=resource))
            if not item_list:
                problems.append(Text("cat.one_item", "name at least one item"))
            problems += requested_item_problems(res, item_list)
            if not isinstance(purpose, str) or not purpose.strip():
                problems.append(Text("cat.purpose", "purpose (用途) is required"))
            elif long := too_long("purpose", purpose):
                problems.append(long)
            if long := too_long("basis", basis):
                problems.append(long)
            end = parse_date(until)
            start = parse_date(valid_from) if valid_from is not None else None
            if end is None:
                problems.append(Text("field.date",
                                     "{field} must be a date YYYY-MM-DD", field="until"))
            elif end < cst_date(now):
                problems.append(Text("cat.until_past", "until is in the past"))
            if valid_from is not None and start is None:
                problems.append(Text("field.date",
                                     "{field} must be a date YYYY-MM-DD", field="from"))
            if start and end and start > end:
                problems.append(Text("field.from_after_until", "from is after until"))
            if long := too_long("client", client_id):
                problems.append(long)
            elif client_id is not None and self.client_department is not None:
                owner = self.client_department(client_id)
                if owner != consumer:
                    problems.append(Text("cat.not_a_client_of",
                                         "client {client!r} is not a client of {department}",
                                         client=client_id, department=consumer))
            if problems:
                raise InvalidInput(Text("cat.application_rejected",
                                        "application rejected"), problems)
            assert end is not None
            status = ESCALATED if res.share_type == NONE else SUBMITTED
            app_id = store.insert_application(
                conn, resource=resource, consumer=consumer, client_id=client_id,
                applicant=actor.name, items=item_list, purpose=purpose.strip(),
                basis=basis or "", valid_from=start, until=end, status=status,
                due_at=due_at, created_at=now,
            )
            store.insert_event(conn, app_id, _step(now, EVENT_SUBMITTED, status, actor,
                                                   items=item_list, until=end.isoformat()))
            app = store.get_application(conn, app_id)
        assert app is not None
        self._record("application_" + status, actor, app)
        return app

    def _load(self, conn: Any, app_id: int, *, lock: bool = False) -> Application:
        """The application; ``lock``: its row held until the transaction ends, so that
        of two decisions at once (approve and reject, two approvals) the second reads
        what the first wrote (PostgreSQL reads committed rows; SQLite's writers are
        one at a time already)."""
        app = store.get_application(conn, app_id, for_update=lock)
        if app is None:
            raise UnknownObject(Text("cat.no_application", "no application {id}", id=app_id))
        return app

    def approve(
        self,
        actor: Actor,
        app_id: int,
        *,
        items: Iterable[str] | None = None,
        until: date | str | None = None,
        note: str = "",
    ) -> Grant:
        """Approve, possibly narrowing items or period; creates the grant."""
        now = self._now()
        with _begin_write(self.engine) as conn:
            app = self._load(conn, app_id, lock=True)
            res = store.get_resource(conn, app.resource)
            _concerns(actor, app, res.provider if res else "")
            if res is None:
                raise UnknownObject(Text("cat.resource_gone", "resource {code} no longer exists",
                                         code=app.resource))
            if app.status == SUBMITTED:
                if not actor.decides_for(res.provider):
                    raise NotAllowed(Text("cat.steward_approves",
                                          "only a data steward of {department} approves this",
                                          department=res.provider))
            elif app.status == ESCALATED:
                if not actor.is_secadmin_of(res.provider):
                    raise NotAllowed(Text("cat.secadmin_decides",
                                          "an escalated application is decided by the security "
                                          "admin"))
            else:
                raise WorkflowConflict(Text("cat.application_state", "application {id} is {status}",
                                            id=app_id, status=app.status))
            if actor.name == app.applicant and not actor.operator:
                # moved to the provider since, or its head: nobody grants themselves data
                raise NotAllowed(Text("cat.own_application",
                                      "{name} filed application {id}: another person decides it",
                                      name=actor.name, id=app_id))
            if res.status != PUBLISHED:  # the grant would come alive on republishing
                raise WorkflowConflict(Text("cat.grant_unpublished",
                                            "{code} is {status}: no grant while it is not "
                                            "published", code=res.code, status=res.status))
            if res.share_type == NONE and app.status == SUBMITTED:
                raise WorkflowConflict(Text("cat.none_submitted",
                                            "{code} is not shared (不予共享): only the security "
                                            "admin decides it, after an escalation",
                                            code=res.code))
            if res.share_type not in (CONDITIONAL, NONE):
                raise WorkflowConflict(Text("cat.share_type", "{code} is {share_type}",
                                            code=res.code, share_type=res.share_type))
            granted = list(app.items) if items is None else _item_names(items)
            problems: list[str] = []
            wider = [i for i in granted if i not in app.items]
            if wider:
                problems.append(Text("cat.narrow_items",
                                     "approval can only narrow the items; not applied for: {names}",
                                     names=", ".join(wider)))
            if not granted:
                problems.append(Text("cat.approve_one", "approve at least one item (or reject)"))
            if long := too_long("note", note):
                problems.append(long)
            gone = [i for i in granted if i not in res.shareable_items]
            if gone:
                problems.append(Text("cat.no_longer_shareable",
                                     "items no longer shareable: {names}",
                                     names=", ".join(gone)))
            end = app.until if until is None else parse_date(until)
            if end is None:
                problems.append(Text("field.date",
                                     "{field} must be a date YYYY-MM-DD", field="until"))
            elif end > app.until:
                problems.append(Text("cat.shorten",
                                     "approval can only shorten the period (applied until {date})",
                                     date=app.until.isoformat()))
            elif end < cst_date(now):  # a grant born expired
                problems.append(Text("cat.until_past", "until is in the past"))
            elif app.valid_from and end < app.valid_from:
                problems.append(Text("cat.until_before_from", "until is before from"))
            if problems:
                raise InvalidInput(Text("cat.approval_rejected", "approval rejected"), problems)
            assert end is not None
            grant_id = store.insert_grant(
                conn, resource=app.resource, consumer=app.consumer, client_id=app.client_id,
                items_=granted, purpose=app.purpose, until=end, now=now,
                valid_from=app.valid_from, basis=app.basis, source="application",
                application_id=app.id, approved_by=actor.name,
            )
            narrowed = granted != list(app.items) or end != app.until
            store.update_application(
                conn, app.id, status=APPROVED, decided_by=actor.name, decided_at=now,
                reason=note or None, grant_id=grant_id,
            )
            store.insert_event(conn, app.id, _step(
                now, EVENT_APPROVED, APPROVED, actor, note or None, items=granted,
                removed=[i for i in app.items if i not in granted], until=end.isoformat(),
                narrowed=narrowed, grant=grant_id))
            grant = store.get_grant(conn, grant_id)
            app = self._load(conn, app_id)
        assert grant is not None
        self._record("application_approved", actor, app, grant=grant.id, narrowed=narrowed,
                     granted_items=list(grant.items), until=grant.until.isoformat())
        self._record_grant("grant_created", actor, grant)
        return grant

    def reject(self, actor: Actor, app_id: int, reason: str) -> Application:
        """Reject with a reason (required)."""
        return self._decide(actor, app_id, REJECTED, reason, from_states=(SUBMITTED,))

    def close(self, actor: Actor, app_id: int, reason: str) -> Application:
        """The security admin ends an escalated application without a grant."""
        return self._decide(actor, app_id, CLOSED, reason, from_states=(ESCALATED,))

    def escalate(self, actor: Actor, app_id: int, reason: str) -> Application:
        """Send a rejected application to the security admin for coordination (协商)."""
        return self._decide(actor, app_id, ESCALATED, reason, from_states=(REJECTED,))

    def refer(self, actor: Actor, app_id: int, reason: str,
              channels: Iterable[str] = ()) -> Application:
        """A data steward hands a submitted application to the department head (负责人),
        with the reason; ``channels`` name the notices to write for the gateway."""
        now = self._now()
        reason = _reason(reason, Text("cat.reason_to_refer",
                                      "a reason is required to refer an application"))
        with _begin_write(self.engine) as conn:
            app = self._load(conn, app_id, lock=True)
            res = store.get_resource(conn, app.resource)
            provider = res.provider if res else ""
            _concerns(actor, app, provider)
            if not actor.is_steward_of(provider):
                raise NotAllowed(Text("cat.steward_refers",
                                      "only a data steward of {department} refers this",
                                      department=provider))
            if app.status != SUBMITTED:
                raise WorkflowConflict(Text("cat.application_state", "application {id} is {status}",
                                            id=app_id, status=app.status))
            if self.has_head is not None and not self.has_head(conn, provider):
                # referred to nobody, it would wait as "with the head" while no one is
                raise WorkflowConflict(Text(
                    "cat.no_head", "{department} has no department head (role dept_head) to "
                    "refer it to: decide it yourself, or have a person given the role",
                    department=provider))
            if not store.claim_referral(conn, app_id, now):
                raise WorkflowConflict(Text("cat.referred_already",
                                            "application {id} is already with the department "
                                            "head", id=app_id))
            self._write_referral(conn, app, now, actor, reason.strip(), channels)
            app = self._load(conn, app_id)
        self._record("application_referred", actor, app, reason=reason.strip(),
                     overdue=False, channels=list(channels))
        return app

    def escalate_overdue(self, actor: Actor, channels: Iterable[str] = (),
                         now: datetime | None = None) -> list[Application]:
        """Refer every overdue open application (past its due date, not yet referred) to
        the provider department's head, each in its own transaction and audited; of two
        processes doing this at once each application goes once. ``actor`` is who runs
        the round (the gateway, or the operator's cron)."""
        at = _utc(now) if now else self._now()
        channels = list(channels)
        done = []
        for candidate in self.overdue(at):
            if candidate.head_escalated_at is not None:
                continue
            with _begin_write(self.engine) as conn:
                if not store.claim_referral(conn, candidate.id, at):
                    continue  # decided or referred meanwhile, or by another process
                app = self._load(conn, candidate.id)
                self._write_referral(conn, app, at, actor, None, channels, overdue=True,
                                     due_at=app.due_at.astimezone(CST).isoformat())
                app = self._load(conn, candidate.id)
            self._record("application_referred", actor, app, reason=None, overdue=True,
                         due_at=app.due_at.isoformat(), channels=channels)
            done.append(app)
        return done

    def _write_referral(self, conn: Any, app: Application, now: datetime, actor: Actor,
                        reason: str | None, channels: Iterable[str], **detail: Any) -> None:
        event_id = store.insert_event(conn, app.id, _step(now, EVENT_REFERRED, app.status, actor,
                                                          reason, to=DEPT_HEAD, **detail))
        for channel in channels:
            store.insert_notice(conn, event_id=event_id, app_id=app.id, channel=channel, now=now)

    # -- notices (delivered by the gateway) ---------------------------------------------

    def claim_notices(self, lease: timedelta = timedelta(minutes=2)) -> list[Notice]:
        """The pending notices, leased to this caller so no other process sends them too."""
        with _begin_write(self.engine) as conn:
            return store.claim_notices(conn, self._now(), lease)

    def notice_subject(self, notice: Notice) -> tuple[Application, ApplicationEvent]:
        """The application a notice is about and the referral it announces."""
        with self.engine.connect() as conn:
            app = self._load(conn, notice.application_id)
            event = store.get_event(conn, notice.event_id)
        if event is None:
            raise UnknownObject(Text("cat.no_application", "no application {id}",
                                     id=notice.application_id))
        return app, event

    def notice_done(self, notice: Notice, *, sent: bool, error: str | None = None,
                    give_up: bool = False) -> None:
        status = NOTICE_SENT if sent else NOTICE_ABANDONED if give_up else NOTICE_PENDING
        with _begin_write(self.engine) as conn:
            store.finish_notice(conn, notice.id, self._now(), status=status, error=error)

    def notices(self, app_id: int | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.load_notices(conn, app_id)

    def _decide(self, actor: Actor, app_id: int, status: str, reason: str,
                from_states: tuple[str, ...]) -> Application:
        now = self._now()
        reason = _reason(reason, Text("cat.reason_to_mark",
                                      "a reason is required to mark an application {status}",
                                      status=status))
        due_at = self._due(now) if status == ESCALATED else None
        with _begin_write(self.engine) as conn:
            app = self._load(conn, app_id, lock=True)
            res = store.get_resource(conn, app.resource)
            provider = res.provider if res else ""
            _concerns(actor, app, provider)
            if app.status not in from_states:
                raise WorkflowConflict(Text("cat.application_state", "application {id} is {status}",
                                            id=app_id, status=app.status))
            if status == REJECTED and not actor.decides_for(provider):
                raise NotAllowed(Text("cat.steward_rejects",
                                      "only a data steward of {department} rejects this",
                                      department=provider))
            if status == CLOSED and not actor.is_secadmin_of(provider):
                raise NotAllowed(Text("cat.secadmin_closes",
                                      "only the security admin closes an escalated application"))
            if status == ESCALATED and not (actor.is_secadmin_of(provider, app.consumer)
                                            or actor.department == app.consumer):
                raise NotAllowed(Text("cat.escalates",
                                      "only {department} or the security admin escalates this",
                                      department=app.consumer))
            values: dict[str, Any] = {"status": status, "reason": reason.strip()}
            if status == ESCALATED:
                # the coordination gets its own time limit, and its own referral if it
                # runs over
                values.update(due_at=due_at, head_escalated_at=None)
            else:
                values.update(decided_by=actor.name, decided_at=now)
            store.update_application(conn, app_id, **values)
            store.insert_event(conn, app_id, _step(now, status, status, actor, reason.strip()))
            app = self._load(conn, app_id)
        self._record("application_" + status, actor, app)
        return app

    def get(self, app_id: int) -> Application:
        with self.engine.connect() as conn:
            return self._load(conn, app_id)

    def applications(
        self,
        *,
        status: Iterable[str] | None = None,
        consumer: str | None = None,
        provider: str | None = None,
    ) -> list[Application]:
        with self.engine.connect() as conn:
            codes = None
            if provider is not None:
                codes = [r.code for r in store.load_resources(conn) if r.provider == provider]
            return store.load_applications(conn, status=status, consumer=consumer,
                                           resources_=codes)

    def overdue(self, now: datetime | None = None, *, provider: str | None = None
                ) -> list[Application]:
        """Open applications past their due date (oldest first)."""
        at = _utc(now) if now else self._now()
        found = self.applications(status=OPEN_STATES, provider=provider)
        return sorted((a for a in found if a.overdue_at(at)), key=lambda a: a.due_at)

    # -- grants ----------------------------------------------------------------------

    def grants(
        self,
        *,
        consumer: str | None = None,
        client_id: str | None = None,
        resource: str | None = None,
        active_only: bool = False,
    ) -> list[Grant]:
        with self.engine.connect() as conn:
            found = store.load_grants(conn, resource=resource, consumer=consumer,
                                      client_id=client_id)
        if active_only:
            now = self._now()
            found = [g for g in found if g.state_at(now) == "active"]
        return found

    def get_grant(self, grant_id: int) -> Grant:
        with self.engine.connect() as conn:
            grant = store.get_grant(conn, grant_id)
        if grant is None:
            raise UnknownObject(Text("cat.no_grant", "no grant {id}", id=grant_id))
        return grant

    def revoke(self, actor: Actor, grant_id: int, reason: str) -> Grant:
        """Revoke now; every gateway process stops honouring it within a second."""
        now = self._now()
        reason = _reason(reason, Text("cat.reason_to_revoke",
                                      "a reason is required to revoke a grant"))
        with _begin_write(self.engine) as conn:
            grant = store.get_grant(conn, grant_id, for_update=True)  # one revocation
            if grant is None:
                raise UnknownObject(Text("cat.no_grant", "no grant {id}", id=grant_id))
            res = store.get_resource(conn, grant.resource)
            provider = res.provider if res else ""
            if not (actor.department in (grant.consumer, provider)
                    or actor.is_secadmin_of(provider, grant.consumer)):
                raise NotAllowed(Text("cat.not_your_grant",
                                      "grant {id} is neither your department's nor on its "
                                      "resources", id=grant_id))
            if not (actor.is_secadmin_of(provider, grant.consumer)
                    or actor.decides_for(provider)):
                raise NotAllowed(Text("cat.revokes",
                                      "only a data steward of {department} or the security admin "
                                      "revokes this", department=provider))
            if grant.status == REVOKED:
                raise WorkflowConflict(Text("cat.revoked", "grant {id} is already revoked",
                                            id=grant_id))
            store.update_grant(conn, grant_id, now, status=REVOKED, revoked_at=now,
                               revoked_by=actor.name, revoke_reason=reason.strip())
            if grant.application_id is not None and store.get_application(
                    conn, grant.application_id) is not None:
                store.insert_event(conn, grant.application_id, _step(
                    now, EVENT_REVOKED, APPROVED, actor, reason.strip(), grant=grant_id))
            grant = store.get_grant(conn, grant_id)
        assert grant is not None
        self._record_grant("grant_revoked", actor, grant, reason=reason.strip())
        return grant

    # -- audit -----------------------------------------------------------------------

    def _record(self, event: str, actor: Actor, app: Application, **extra: Any) -> None:
        detail: dict[str, Any] = {
            "actor": actor.name, "actor_department": actor.department,
            "actor_client": actor.client, "department": app.consumer,
            "resource": app.resource, "items": list(app.items),
            "purpose": app.purpose, "application": app.id, "status": app.status,
            "reason": app.reason, "client": app.client_id,
        }
        detail.update(extra)
        self.record(event, detail)

    def _record_grant(self, event: str, actor: Actor, grant: Grant, **extra: Any) -> None:
        detail: dict[str, Any] = {
            "actor": actor.name, "actor_department": actor.department,
            "actor_client": actor.client, "department": grant.consumer, "resource": grant.resource,
            "items": list(grant.items), "purpose": grant.purpose, "grant": grant.id,
            "until": grant.until.isoformat(), "client": grant.client_id,
            "application": grant.application_id,
        }
        detail.update(extra)
        self.record(event, detail)


def _concerns(actor: Actor, app: Application, provider: str) -> None:
    """NotAllowed, before anything about the application is told, unless it is the
    actor's department's (consumer or provider) or within their security admin role:
    a stranger posting decisions to guessed ids learns neither its state nor who decides."""
    if actor.department in (app.consumer, provider) or actor.is_secadmin_of(
            provider, app.consumer):
        return
    raise NotAllowed(Text("cat.not_your_application",
                          "application {id} is neither your department's nor for its "
                          "resources", id=app.id))


def _reason(reason: Any, missing: str) -> str:
    """The reason a step needs, without surrounding space; InvalidInput (``missing``)
    when there is none, or when it is too long."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(missing)
    if long := too_long("reason", reason):
        raise InvalidInput(long)
    return reason.strip()


def _step(at: datetime, kind: str, status: str, actor: Actor, reason: str | None = None,
          **detail: Any) -> ApplicationEvent:
    return ApplicationEvent(at=at, kind=kind, status=status, actor=actor.name,
                            actor_department=actor.department, reason=reason, detail=detail)


def _item_names(items: Iterable[Any]) -> list[str]:
    """The item names once each, in order; anything but names (an API body's numbers or
    objects) is bad input, not a crash."""
    names = list(items)
    if not all(isinstance(i, str) for i in names):
        raise InvalidInput(Text("cat.items_list", "items must be a list of item names"))
    for name in names:
        if long := too_long("item", name):
            raise InvalidInput(long)
    return list(dict.fromkeys(names))
