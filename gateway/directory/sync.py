"""The directory sync: read the directory, plan what differs from the database,
apply the plan in one transaction through the state file's code
(``gateway.statefile.StateApplier``), audited as admin changes by ``directory-sync``.

The directory's data becomes a state document: its department OUs (the
``department_attribute`` names the code, the ``ou`` the name), its people (source
``directory``, no password, ``staff`` and the roles of their mapped groups, disabled
when the disabled filter matches) and, for the directory's users the database holds
that the directory no longer has, the same user disabled: a sync never deletes.
Conflicts (one username in two departments, an entry with several usernames, a
control character, a local account of the same name, anything the state file refuses)
are listed and nothing is applied; a person whose username is no govgate username
(Chinese characters, a space) is skipped and named, the rest applied. Admin roles
(三员) are never the directory's: no group maps to one, and the one a directory user
holds stays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from audit import AuditRecord
from gateway.directory.client import (
    DirectoryClient,
    Groups,
    Person,
    Unit,
    dn_key,
    usable_username,
)
from gateway.directory.errors import DirectoryUnavailable, SyncConflict
from gateway.errors import StateFileError
from gateway.limits import control_character
from gateway.org import ADMIN_ROLES
from gateway.services import Services
from gateway.statefile import StateApplier
from gateway.status_records import gone_at, last_status_change
from gateway.tables import departments, user_roles, users
from statedoc import Change
from texts import Text

ACTOR = "directory-sync"
CONTACT = ("email", "email_verified", "phone_number", "phone_number_verified")
DnKey = tuple[tuple[str, str], ...]
NOT_READ_LISTED = 50  # of each kind, in the directory_synced record and the CLI's output


@dataclass
class SyncPlan:
    """What a sync would do (``changes``) or did; ``conflicts``: why it did nothing."""

    changes: list[Change] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # people in no department OU
    # people whose username attribute is no govgate username (Chinese characters, a
    # space: AD allows both): skipped, never blocking the rest; as (DN, the value)
    unusable: list[tuple[str, str]] = field(default_factory=list)
    people: int = 0
    disabled: list[str] = field(default_factory=list)  # usernames this plan disables
    # active in the directory, disabled in govgate by someone else than the sync: kept
    held: list[str] = field(default_factory=list)
    # disabled by this plan as no longer in the directory; the ones back: kept disabled
    gone: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    # not read, and named so the operator knows: the continuation references the
    # search met (another server's part of the tree, AD's child domains), and the
    # mapped groups' members in other domains or forests, outside the base DN or
    # under a reference, as (the group's DN, the member's DN)
    references: list[str] = field(default_factory=list)
    foreign: list[tuple[str, str]] = field(default_factory=list)
    outside: list[tuple[str, str]] = field(default_factory=list)
    referred: list[tuple[str, str]] = field(default_factory=list)

    def newly_disabled(self) -> list[str]:
        """The people this plan disables who existed before it (whose sessions end)."""
        updated = {c.key for c in self.changes if c.kind == "user" and c.action == "update"}
        return [u for u in self.disabled if u in updated]

    def not_read(self) -> dict[str, Any]:
        """What the sync did not read, for its record: counts, and the first
        ``NOT_READ_LISTED`` of each."""
        return {"references": self.references[:NOT_READ_LISTED],
                "foreign": len(self.foreign),
                "foreign_members": [m for _, m in self.foreign[:NOT_READ_LISTED]],
                "outside": len(self.outside),
                "outside_members": [m for _, m in self.outside[:NOT_READ_LISTED]],
                "referred": len(self.referred),
                "referred_members": [m for _, m in self.referred[:NOT_READ_LISTED]],
                "unusable": len(self.unusable),
                "unusable_people": [dn for dn, _ in self.unusable[:NOT_READ_LISTED]]}

    def count(self, action: str) -> int:
        if action == "disable":
            return len(self.disabled)
        return sum(1 for c in self.changes if c.action == action and c.kind == "user"
                   and not (action == "update" and c.key in self.disabled))


@dataclass
class DirectoryData:
    units: list[Unit]
    people: list[Person]
    disabled: set[DnKey]
    groups: Groups  # cn: {the group's DN: members' DNs, nested groups' included}
    references: list[str] = field(default_factory=list)  # not followed


def read(client: DirectoryClient) -> DirectoryData:
    """Everything a sync needs, read over one connection before anything is planned:
    a directory gone in the middle raises DirectoryUnavailable and nothing is applied."""
    conn = client.service()
    try:
        # a reference is not followed: ldap3's auto_referrals would bind to the host it
        # names with the service account's password, a host whoever may write a
        # referral object (or a child domain's administrator) chooses
        references: list[str] = []
        units, people = client.units(conn), client.people(conn, references)
        disabled = client.disabled(conn)
        groups = client.groups(conn, references)
        return DirectoryData(units=units, people=people, disabled=disabled, groups=groups,
                             references=references)
    finally:
        conn.unbind()


def _department_of(dn: DnKey, units: dict[DnKey, Unit]) -> Unit | None:
    """The nearest OU above ``dn`` that is a department."""
    for i in range(1, len(dn)):
        if dn[i:] in units:
            return units[dn[i:]]
    return None


def _several(person: Person) -> Text:
    return Text("directory.usernames", "{dn}: {n} usernames ({names}); one entry is one "
                "person with one", dn=person.dn, n=1 + len(person.aliases),
                names=", ".join([person.username, *person.aliases])[:200])


def _person_problem(person: Person) -> Text | None:
    """Why one entry with a username cannot be a govgate user as it stands, or None.
    Refused, not repaired: a control character would rewrite the consoles and
    terminals that show the name. (A username that is none of govgate's is skipped
    before: cut to fit or transliterated, it would reach another person's account.)"""
    for what, value in (("name", person.name), ("email", person.email or "")):
        if (char := control_character(value)) is not None:
            return _control(person.dn, what, char)
    return None


def _disabled_by_sync(engine: Engine, row: Any) -> str | None:
    """How the sync disabled this account (``gateway.status_records``): ``"locked"``
    (the directory re-enables it), ``"gone"`` (removed from the directory: back, it
    may be a new person under the old name), or None: an administrator's disable (an
    incident, ``govgate user disable``), or no record found, or the account changed
    after the newest record naming it (the log behind). These keep it disabled until
    the operator enables it; the last, until the log has caught up."""
    last = last_status_change(engine, row.username)
    if last is None or last.actor_user != ACTOR:
        return None
    if not last.accounts_for(row.updated_at):
        # changed since, by someone whose record is not loaded yet (an administrator's
        # disable in the served gateway's journal, say): held this time, decided by
        # the next sync
        return None
    return "gone" if gone_at(engine, ACTOR, row.username, last.ts) else "locked"


def _control(dn: str, what: str, char: str) -> Text:
    return Text("directory.control", "{dn}: the {what} holds the control character U+{code}",
                dn=dn, what=what, code=f"{ord(char):04X}")


def to_document(client: DirectoryClient, data: DirectoryData, engine: Engine,
                plan: SyncPlan) -> dict[str, Any]:
    """The state document of the directory's data; conflicts go to ``plan``."""
    config = client.config
    plan.references = list(data.references)
    plan.foreign, plan.outside = list(data.groups.foreign), list(data.groups.outside)
    plan.referred = list(data.groups.referred)
    units = {dn_key(u.dn): u for u in data.units}
    with engine.connect() as conn:
        stored_depts = {r.code: r for r in conn.execute(
            sa.select(departments.c.code, departments.c.region_code,
                      departments.c.parent_code))}
        stored = {r.username: r for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.name, users.c.department_code,
                      users.c.status, users.c.source, users.c.email, users.c.email_verified,
                      users.c.phone_number, users.c.phone_number_verified,
                      users.c.updated_at))}
        stored_roles: dict[int, list[str]] = {}
        for r in conn.execute(sa.select(user_roles)):
            stored_roles.setdefault(r.user_id, []).append(r.role_code)
    dept_entries = []
    for key, ou in units.items():
        if (char := control_character(ou.name)) is not None:
            plan.conflicts.append(_control(ou.dn, "name", char))
        parent = _department_of(key, units)
        known = stored_depts.get(ou.code)
        # a department the gateway placed itself (region, a parent the directory does
        # not have) stays where it is
        dept_entries.append({"code": ou.code, "name": ou.name,
                             "region": known.region_code if known else config.region,
                             "parent": parent.code if parent else
                             (known.parent_code if known else None)})
    roles_of: dict[DnKey, set[str]] = {}
    role_by_group = {group.casefold(): role for group, role in config.group_roles}
    entries_of: dict[str, tuple[str, list[str]]] = {}
    for group, entries in data.groups.members.items():
        role = role_by_group.get(group.casefold())
        entries_of.setdefault(group.casefold(), (group, []))[1].extend(entries)
        for member in (m for members in entries.values() for m in members):
            if role is not None:
                roles_of.setdefault(dn_key(member), set()).add(role)
    for cn, dns in entries_of.values():
        if len(dns) > 1:
            # whoever may make a group under any OU of the base would otherwise add
            # members to the mapped one (an OU's delegated administrator, say)
            plan.conflicts.append(Text("directory.group_twice", "{n} groups are named "
                                       "{cn!r}: {dns}; a mapped group is one entry",
                                       n=len(dns), cn=cn, dns="; ".join(dns)))
    for top, deep in data.groups.too_deep:
        # its members would hold the role, or not, by where the reading stopped
        plan.conflicts.append(Text("directory.nesting", "{deep} is nested more than {n} "
                                   "groups below {top}", deep=deep, top=top,
                                   n=config.max_nesting))
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for person in data.people:
        key = dn_key(person.dn)
        unit = _department_of(key, units)
        if unit is None:
            plan.skipped.append(person.dn)
            continue
        username = usable_username(person.username)
        if person.aliases:
            plan.conflicts.append(_several(person))
            continue
        if username is None:
            # one person whose name cannot be a username is no reason to hold up
            # everyone else's updates and disables: skipped, named in the output and
            # the record (no account, so no sign-in under any of their names)
            plan.unusable.append((person.dn, person.username))
            continue
        if problem := _person_problem(person):
            plan.conflicts.append(problem)
            continue
        if username in seen:
            first_dn, first = seen[username]
            if first["department"] != unit.code:
                plan.conflicts.append(Text(
                    "directory.two_departments",
                    "user {username} is in two departments: {first} ({dn1}) and {second} "
                    "({dn2})", username=username, first=first["department"], dn1=first_dn,
                    second=unit.code, dn2=person.dn))
            else:
                plan.conflicts.append(Text("directory.twice", "user {username} appears twice "
                                           "({dn1}, {dn2})", username=username,
                                           dn1=first_dn, dn2=person.dn))
            continue
        row = stored.get(username)
        # an admin role (三员) is the operator's to give and take, never the directory's
        # (DirectoryConfig maps no group to one): the one an active account holds stays.
        # An account back from disabled (unlocked, or the name given to someone new) comes
        # back without: the operator grants it again
        kept = (set(stored_roles.get(row.id, [])) & ADMIN_ROLES
                if row is not None and row.status == "active" else set())
        roles = sorted({"staff"} | roles_of.get(key, set()) | kept)
        if row is not None and row.source != "directory":
            plan.conflicts.append(Text(
                "directory.local_account", "user {username} ({dn}) is a local account of "
                "the gateway; rename one of them", username=username, dn=person.dn))
        status = "disabled" if key in data.disabled else "active"
        if status == "active" and row is not None and row.source == "directory" \
                and row.status == "disabled":
            how = _disabled_by_sync(engine, row)
            if how != "locked":
                status = "disabled"
                (plan.returned if how == "gone" else plan.held).append(username)
        entry: dict[str, Any] = {
            "username": username, "name": person.name, "department": unit.code,
            "roles": roles, "source": "directory", "must_change": False, "status": status}
        if person.email:
            entry["email"] = person.email
        seen[username] = (person.dn, entry)
    plan.people = len(seen)
    user_entries = [entry for _, entry in seen.values()]
    for username, row in stored.items():
        if row.source == "directory" and username not in seen:
            # gone from the directory: its admin role (三员) goes, a name given again
            # may be another person's
            user_entries.append({
                "username": username, "name": row.name, "department": row.department_code,
                "roles": sorted(set(stored_roles.get(row.id, [])) - ADMIN_ROLES) or ["staff"],
                "source": "directory", "status": "disabled",
                **{k: getattr(row, k) for k in CONTACT if getattr(row, k)}})
    for entry in user_entries:
        row = stored.get(entry["username"])
        if entry["status"] == "disabled" and (row is None or row.status != "disabled"):
            plan.disabled.append(entry["username"])
            if entry["username"] not in seen:
                plan.gone.append(entry["username"])
    return {"departments": dept_entries, "users": user_entries}


def sync(services: Services, client: DirectoryClient, *, dry_run: bool = False) -> SyncPlan:
    """Plan, and unless ``dry_run`` apply, the directory's state. Raises SyncConflict
    (with the plan as ``plan``) when there are conflicts, DirectoryUnavailable when
    the directory cannot be read; in both cases nothing is written but, unless a dry
    run, the ``directory_sync_failed`` record."""
    try:
        return _sync(services, client, dry_run=dry_run)
    except (DirectoryUnavailable, SyncConflict) as exc:
        if not dry_run:  # a refused sync is recorded, by the CLI's as by the schedule's
            problems = list(getattr(exc, "problems", []))[:50]
            services.audit.append_sync(AuditRecord(
                event_type="admin_change", outcome="failure", actor_user=ACTOR,
                reason="directory_sync_failed",
                extra={"change": "directory_sync_failed", "url": client.config.url,
                       "error": str(exc), "conflicts": [str(p) for p in problems]}))
        raise


def _sync(services: Services, client: DirectoryClient, *, dry_run: bool) -> SyncPlan:
    plan = SyncPlan()
    data = read(client)
    services.settle_audit()  # journal mode: the last sync's records, to read who disabled
    doc = to_document(client, data, services.engine, plan)
    if plan.conflicts:
        raise SyncConflict(Text("directory.conflicts",
                                "{n} conflict(s) in the directory; nothing applied",
                                n=len(plan.conflicts)), problems=plan.conflicts, plan=plan)

    applied: list[tuple[str, dict[str, Any]]] = []
    applier = StateApplier(services.engine, hash_secret=services.hash_client_secret,
                           verify_secret=services.verify_client_secret, clock=services.clock,
                           on_change=lambda event, detail: applied.append(
                               (event, {**detail, "actor": ACTOR})))
    try:
        plan.changes = applier.apply(doc, dry_run=dry_run)
    except StateFileError as exc:
        plan.conflicts = list(exc.problems)
        raise SyncConflict(Text("directory.conflicts",
                                "{n} conflict(s) in the directory; nothing applied",
                                n=len(plan.conflicts)), problems=plan.conflicts,
                           plan=plan) from None
    if not dry_run:
        # one audit transaction for the whole sync: every change, then the summary
        services.record_admin_changes([*applied, ("directory_synced", {
            "actor": ACTOR, "url": client.config.url, "people": plan.people,
            "created": plan.count("create"), "updated": plan.count("update"),
            "disabled": len(plan.disabled), "skipped": len(plan.skipped),
            "held": plan.held, "gone": plan.gone, "returned": plan.returned,
            **plan.not_read()})])
    return plan
