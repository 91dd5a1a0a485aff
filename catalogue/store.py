"""Reading and writing the catalogue's tables. Every function takes a connection
inside the caller's transaction; writes bump ``catalogue_version``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from catalogue.calendar import CalendarYear
from catalogue.model import (
    ACTIVE,
    NOTICE_PENDING,
    OPEN_STATES,
    PUBLISHED,
    Application,
    ApplicationEvent,
    Grant,
    Item,
    Notice,
    Resource,
    Route,
)
from catalogue.tables import (
    application_events,
    applications,
    calendar,
    grants,
    items,
    notices,
    resources,
    version,
)


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


# ---------------------------------------------------------------------------
# version


def bump_version(conn: Connection, now: datetime) -> int:
    current = conn.execute(sa.select(version.c.version).where(version.c.id == 1)).scalar()
    if current is None:
        conn.execute(version.insert().values(id=1, version=1, updated_at=now))
        return 1
    conn.execute(
        version.update().where(version.c.id == 1).values(version=version.c.version + 1,
                                                         updated_at=now)
    )
    return int(current) + 1


def read_version(conn: Connection) -> int:
    return int(conn.execute(sa.select(version.c.version).where(version.c.id == 1)).scalar() or 0)


# ---------------------------------------------------------------------------
# resources


def _names(text: str | None) -> tuple[str, ...] | None:
    """A route's stored list (names separated by spaces; NULL: not listed)."""
    return None if text is None else tuple(text.split())


def _text(names: tuple[str, ...] | None) -> str | None:
    return None if names is None else " ".join(names)


def _resource(row: Any, item_list: Iterable[Item]) -> Resource:
    return Resource(
        code=row.code, name=row.name, provider=row.provider, system=row.system,
        share_type=row.share_type,
        route=Route(row.route_method, row.route_path, row.route_records or "",
                    _names(row.route_query), _names(row.route_envelope)),
        items=tuple(item_list),
        summary=row.summary or "", conditions=row.conditions or "", basis=row.basis or "",
        share_method=row.share_method, update_cycle=row.update_cycle or "",
        open_attr=row.open_attr or "", status=row.status, version=row.version,
        published_at=aware(row.published_at),
    )


def load_resources(conn: Connection, codes: Iterable[str] | None = None) -> list[Resource]:
    query = sa.select(resources).order_by(resources.c.code)
    if codes is not None:
        query = query.where(resources.c.code.in_(list(codes)))
    # fetched whole (all()): row by row cost a quarter of a 10,000-resource snapshot
    rows = conn.execute(query).all()
    by_id: dict[int, list[Item]] = {r.id: [] for r in rows}
    if rows:
        # plain tuples unpacked by position: a Row's attributes cost a third of the read
        for (rid, name, title, type_, level, mask, encrypt, authoritative,
             shareable) in conn.execute(
            sa.select(items.c.resource_id, items.c.name, items.c.title, items.c.type,
                      items.c.level, items.c.mask, items.c.encrypt, items.c.authoritative,
                      items.c.shareable)
            .where(items.c.resource_id.in_(list(by_id)))
            .order_by(items.c.resource_id, items.c.position)
        ).all():
            by_id[rid].append(Item(name=name, title=title, type=type_, level=level,
                                   mask=mask, encrypt=bool(encrypt),
                                   authoritative=bool(authoritative),
                                   shareable=bool(shareable)))
    return [_resource(r, by_id[r.id]) for r in rows]


def get_resource(conn: Connection, code: str) -> Resource | None:
    found = load_resources(conn, [code])
    return found[0] if found else None


def save_resource(conn: Connection, resource: Resource, now: datetime) -> tuple[str, ...] | None:
    """Create or update ``resource`` (status included). Returns None when nothing
    changed, () when created, or the names of the changed fields. A change of
    content (anything but status) bumps the resource's version."""
    old = get_resource(conn, resource.code)
    values: dict[str, Any] = {
        "name": resource.name, "summary": resource.summary, "provider": resource.provider,
        "system": resource.system, "share_type": resource.share_type,
        "conditions": resource.conditions, "basis": resource.basis,
        "share_method": resource.share_method, "update_cycle": resource.update_cycle,
        "open_attr": resource.open_attr, "route_method": resource.route.method,
        "route_path": resource.route.path, "route_records": resource.route.records,
        "route_query": _text(resource.route.query),
        "route_envelope": _text(resource.route.envelope),
        "status": resource.status, "updated_at": now,
    }
    if old is None:
        rid = conn.execute(
            resources.insert().values(
                code=resource.code, version=1, created_at=now,
                published_at=now if resource.status == PUBLISHED else None, **values,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        _write_items(conn, rid, resource.items)
        bump_version(conn, now)
        return ()
    old_content, new_content = old.content(), resource.content()
    changed = sorted(k for k in set(old_content) | set(new_content)
                     if old_content.get(k) != new_content.get(k))
    if old.status != resource.status:
        changed.append("status")
    if not changed:
        return None
    rid = conn.execute(sa.select(resources.c.id).where(resources.c.code == resource.code)).scalar()
    if old_content != new_content:
        values["version"] = old.version + 1
    if resource.status == PUBLISHED and old.status != PUBLISHED:
        values["published_at"] = now
    conn.execute(resources.update().where(resources.c.id == rid).values(**values))
    if "items" in changed:
        conn.execute(items.delete().where(items.c.resource_id == rid))
        _write_items(conn, int(rid), resource.items)  # type: ignore[arg-type]
    bump_version(conn, now)
    return tuple(changed)


def _write_items(conn: Connection, rid: int, item_list: Iterable[Item]) -> None:
    rows = [
        {"resource_id": rid, "position": k, "name": i.name, "title": i.title, "type": i.type,
         "level": i.level, "mask": i.mask, "encrypt": i.encrypt,
         "authoritative": i.authoritative, "shareable": i.shareable}
        for k, i in enumerate(item_list)
    ]
    if rows:
        conn.execute(items.insert(), rows)


def set_status(conn: Connection, code: str, status: str, now: datetime) -> None:
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == PUBLISHED:
        values["published_at"] = now
    conn.execute(resources.update().where(resources.c.code == code).values(**values))
    bump_version(conn, now)


# ---------------------------------------------------------------------------
# grants


def _grant(row: Any) -> Grant:
    return Grant(
        id=row.id, resource=row.resource, consumer=row.consumer,
        items=tuple(row.items or ()), purpose=row.purpose, until=_date(row.until),  # type: ignore[arg-type]
        client_id=row.client_id, valid_from=_date(row.valid_from), status=row.status,
        basis=row.basis or "", application_id=row.application_id, approved_by=row.approved_by,
        revoked_at=aware(row.revoked_at), revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason, source=row.source, created_at=aware(row.created_at),
    )


def load_grants(
    conn: Connection,
    *,
    resource: str | None = None,
    consumer: str | None = None,
    client_id: str | None = None,
    status: str | None = None,
) -> list[Grant]:
    query = sa.select(grants).order_by(grants.c.id)
    if resource is not None:
        query = query.where(grants.c.resource == resource)
    if consumer is not None:
        query = query.where(grants.c.consumer == consumer)
    if client_id is not None:
        query = query.where(sa.or_(grants.c.client_id.is_(None), grants.c.client_id == client_id))
    if status is not None:
        query = query.where(grants.c.status == status)
    return [_grant(r) for r in conn.execute(query)]


# row ids are 64-bit; a larger number names no row (SQLite cannot even bind it)
_MAX_ID = 2**63 - 1


def get_grant(conn: Connection, grant_id: int, *, for_update: bool = False) -> Grant | None:
    """The grant; ``for_update``: its row locked to the end of the transaction
    (PostgreSQL; SQLite renders no FOR UPDATE, its writers are serial)."""
    if not -_MAX_ID <= grant_id <= _MAX_ID:
        return None
    query = sa.select(grants).where(grants.c.id == grant_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    return None if row is None else _grant(row)


def insert_grant(
    conn: Connection,
    *,
    resource: str,
    consumer: str,
    items_: Iterable[str],
    purpose: str,
    until: date,
    now: datetime,
    client_id: str | None = None,
    valid_from: date | None = None,
    basis: str = "",
    source: str = "application",
    application_id: int | None = None,
    approved_by: str | None = None,
) -> int:
    gid = conn.execute(
        grants.insert().values(
            resource=resource, consumer=consumer, client_id=client_id, items=list(items_),
            purpose=purpose, basis=basis, valid_from=valid_from, until=until, status=ACTIVE,
            source=source, application_id=application_id, approved_by=approved_by,
            created_at=now,
        )
    ).inserted_primary_key[0]  # type: ignore[index]
    bump_version(conn, now)
    return int(gid)


def update_grant(conn: Connection, grant_id: int, now: datetime, **values: Any) -> None:
    if "items" in values:
        values["items"] = list(values["items"])
    conn.execute(grants.update().where(grants.c.id == grant_id).values(**values))
    bump_version(conn, now)


# ---------------------------------------------------------------------------
# applications


def _application(row: Any, history: Iterable[ApplicationEvent] = ()) -> Application:
    return Application(
        id=row.id, resource=row.resource, consumer=row.consumer, applicant=row.applicant,
        items=tuple(row.items or ()), purpose=row.purpose, until=_date(row.until),  # type: ignore[arg-type]
        status=row.status, due_at=aware(row.due_at),  # type: ignore[arg-type]
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        client_id=row.client_id, valid_from=_date(row.valid_from), basis=row.basis or "",
        decided_by=row.decided_by, decided_at=aware(row.decided_at), reason=row.reason,
        grant_id=row.grant_id, history=tuple(history),
        head_escalated_at=aware(row.head_escalated_at),
    )


def get_application(conn: Connection, app_id: int, *, for_update: bool = False
                    ) -> Application | None:
    """The application with its timeline; ``for_update``: its row locked (as
    :func:`get_grant`)."""
    if not -_MAX_ID <= app_id <= _MAX_ID:
        return None
    query = sa.select(applications).where(applications.c.id == app_id)
    row = conn.execute(query.with_for_update() if for_update else query).first()
    if row is None:
        return None
    return _application(row, load_events(conn, [app_id]).get(app_id, ()))


def load_applications(
    conn: Connection,
    *,
    status: Iterable[str] | None = None,
    consumer: str | None = None,
    resources_: Iterable[str] | None = None,
) -> list[Application]:
    query = sa.select(applications).order_by(applications.c.id)
    if status is not None:
        query = query.where(applications.c.status.in_(list(status)))
    if consumer is not None:
        query = query.where(applications.c.consumer == consumer)
    if resources_ is not None:
        query = query.where(applications.c.resource.in_(list(resources_)))
    rows = list(conn.execute(query))
    events = load_events(conn, [r.id for r in rows]) if rows else {}
    return [_application(r, events.get(r.id, ())) for r in rows]


def insert_application(conn: Connection, **values: Any) -> int:
    values["items"] = list(values["items"])
    key = conn.execute(applications.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def update_application(conn: Connection, app_id: int, **values: Any) -> None:
    conn.execute(applications.update().where(applications.c.id == app_id).values(**values))


def claim_referral(conn: Connection, app_id: int, now: datetime) -> bool:
    """Mark an open application as gone to the department head, unless it already has:
    of two processes referring it at once, one wins (its row count is 1)."""
    result = conn.execute(
        applications.update()
        .where(applications.c.id == app_id, applications.c.head_escalated_at.is_(None),
               applications.c.status.in_(list(OPEN_STATES)))
        .values(head_escalated_at=now))
    return result.rowcount == 1


# ---------------------------------------------------------------------------
# the timeline


def _event(row: Any) -> ApplicationEvent:
    detail = row.detail if isinstance(row.detail, dict) else json.loads(row.detail or "{}")
    return ApplicationEvent(at=aware(row.at), kind=row.kind, status=row.status,  # type: ignore[arg-type]
                            actor=row.actor, actor_department=row.actor_department,
                            reason=row.reason, detail=detail)


def insert_event(conn: Connection, app_id: int, event: ApplicationEvent) -> int:
    key = conn.execute(application_events.insert().values(
        application_id=app_id, at=event.at, kind=event.kind, status=event.status,
        actor=event.actor, actor_department=event.actor_department, reason=event.reason,
        detail=dict(event.detail))).inserted_primary_key
    assert key is not None
    return int(key[0])


def load_events(conn: Connection, app_ids: list[int]) -> dict[int, list[ApplicationEvent]]:
    out: dict[int, list[ApplicationEvent]] = {}
    for start in range(0, len(app_ids), 500):  # bound the IN list
        chunk = app_ids[start:start + 500]
        for row in conn.execute(sa.select(application_events)
                                .where(application_events.c.application_id.in_(chunk))
                                .order_by(application_events.c.id)):
            out.setdefault(row.application_id, []).append(_event(row))
    return out


# ---------------------------------------------------------------------------
# notices to deliver (the gateway sends them)


def insert_notice(conn: Connection, *, event_id: int, app_id: int, channel: str,
                  now: datetime) -> None:
    conn.execute(notices.insert().values(event_id=event_id, application_id=app_id,
                                         channel=channel, status=NOTICE_PENDING, attempts=0,
                                         created_at=now, updated_at=now))


def claim_notices(conn: Connection, now: datetime, lease: timedelta) -> list[Notice]:
    """The pending notices no other process is delivering, each now leased to the
    caller until ``now + lease`` (a conditional update: one claimant per notice)."""
    rows = list(conn.execute(sa.select(notices).where(notices.c.status == NOTICE_PENDING)
                             .order_by(notices.c.id)))
    out = []
    for row in rows:
        claimed = aware(row.claimed_until)
        if claimed is not None and claimed > now:
            continue
        won = conn.execute(
            notices.update().where(notices.c.id == row.id,
                                   notices.c.status == NOTICE_PENDING,
                                   notices.c.claimed_until.is_(None) if claimed is None
                                   else notices.c.claimed_until == row.claimed_until)
            .values(claimed_until=now + lease)).rowcount
        if won == 1:
            out.append(Notice(id=row.id, event_id=row.event_id, application_id=row.application_id,
                              channel=row.channel, attempts=row.attempts,
                              created_at=aware(row.created_at)))  # type: ignore[arg-type]
    return out


def finish_notice(conn: Connection, notice_id: int, now: datetime, *, status: str,
                  error: str | None = None) -> None:
    """Record one delivery attempt: ``sent``, ``abandoned``, or still ``pending`` with
    the error (released for the next round)."""
    conn.execute(notices.update().where(notices.c.id == notice_id).values(
        status=status, attempts=notices.c.attempts + 1, last_error=error,
        claimed_until=None, updated_at=now))


def load_notices(conn: Connection, app_id: int | None = None) -> list[dict[str, Any]]:
    query = sa.select(notices).order_by(notices.c.id)
    if app_id is not None:
        query = query.where(notices.c.application_id == app_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def get_event(conn: Connection, event_id: int) -> ApplicationEvent | None:
    row = conn.execute(sa.select(application_events)
                       .where(application_events.c.id == event_id)).first()
    return None if row is None else _event(row)


# ---------------------------------------------------------------------------
# the holiday calendar


def load_calendar(conn: Connection) -> list[CalendarYear]:
    return [CalendarYear.from_json(r.year, r.holidays if isinstance(r.holidays, list)
                                   else json.loads(r.holidays), r.source or "")
            for r in conn.execute(sa.select(calendar).order_by(calendar.c.year))]


def save_calendar_year(conn: Connection, year: CalendarYear, now: datetime) -> None:
    values = {"source": year.source, "holidays": year.to_json(), "updated_at": now}
    found = conn.execute(sa.select(calendar.c.year).where(calendar.c.year == year.year)).first()
    if found is None:
        conn.execute(calendar.insert().values(year=year.year, **values))
    else:
        conn.execute(calendar.update().where(calendar.c.year == year.year).values(**values))
