"""The organisation: regions, departments, users and their roles.

三员分立: the admin roles ``sysadmin``, ``secadmin`` and ``auditor`` are mutually
exclusive on one account. ``check_roles`` is the one rule every entry point
(state file, CLI, API) goes through, and ``Org`` refuses any write that breaks it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gateway import factor_failures, passwords
from gateway.clock import Clock, as_utc, utcnow
from gateway.delegation_moves import end_moved
from gateway.errors import Conflict, NotFound, RoleConflict, ValidationError
from gateway.limits import org_too_long
from gateway.login_throttle import count_failure
from gateway.storage import write_transaction
from gateway.tables import clients, departments, password_history, regions, user_roles, users
from policies.adapter import bump_version
from texts import Text, joined

ADMIN_ROLES = frozenset({"sysadmin", "secadmin", "auditor"})
# dept_head: the head of a department (负责人), to whom overdue applications go
BUILTIN_ROLES = frozenset({"staff", "data_steward", "dept_head"}) | ADMIN_ROLES
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\Z")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}\Z")

ChangeHook = Callable[[str, dict[str, Any]], None]


def sign_in_name(typed: str) -> str:
    """The username a person meant: NFKC (a full-width ``ｚｈａｎｇ．ｓａｎ`` from a
    Chinese input method), without surrounding space, case-folded. Usernames are
    lower-case ASCII, so every spelling of one account's name reaches that account,
    and its lock, and counts as one name."""
    return unicodedata.normalize("NFKC", typed).strip().casefold()[:64]


def role_problems(roles: Iterable[str]) -> list[str]:
    """Problems with a role set: unknown roles, and more than one admin role."""
    roles = list(roles)
    problems: list[str] = [Text("org.unknown_role", "unknown role {role!r}", role=r)
                           for r in roles if r not in BUILTIN_ROLES]
    admin = sorted(set(roles) & ADMIN_ROLES)
    if len(admin) == 2:
        problems.append(Text(
            "org.two_admin_roles", "roles {role1} and {role2} cannot be held by one account "
            "(三员分立: sysadmin, secadmin and auditor are mutually exclusive)",
            role1=admin[0], role2=admin[1]))
    elif len(admin) > 2:
        problems.append(Text(
            "org.three_admin_roles", "roles {role1} and {role2} and {role3} cannot be held by "
            "one account (三员分立: sysadmin, secadmin and auditor are mutually exclusive)",
            role1=admin[0], role2=admin[1], role3=admin[2]))
    return problems


def check_roles(roles: Iterable[str]) -> None:
    roles = list(roles)
    problems = role_problems(roles)
    if any("三员分立" in p for p in problems):
        raise RoleConflict(joined(problems))
    if problems:
        raise ValidationError(joined(problems), problems=problems)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    name: str
    department: str
    roles: frozenset[str]
    status: str
    must_change: bool
    failed_logins: int
    locked_until: datetime | None
    has_totp: bool
    region: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    email_verified: bool = False
    phone_number: str | None = None
    phone_number_verified: bool = False
    source: str = "local"  # or "directory": signed in by an LDAP bind

    @property
    def is_admin(self) -> bool:
        return bool(self.roles & ADMIN_ROLES)


class Org:
    """Reads and writes the organisation; every write checks the rules first."""

    def __init__(
        self, engine: Engine, *, clock: Clock = utcnow, on_change: ChangeHook | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.on_change = on_change or (lambda _event, _detail: None)

    # regions and departments -------------------------------------------------

    def add_region(self, code: str, name: str, parent: str | None = None) -> None:
        if not CODE_RE.match(code):
            raise ValidationError(Text("org.bad_region_code", "bad region code {code!r}",
                                       code=code))
        if long := org_too_long("name", name):
            raise ValidationError(long)
        with write_transaction(self.engine) as conn:  # checks, then inserts
            if conn.execute(sa.select(regions.c.code).where(regions.c.code == code)).first():
                raise Conflict(Text("org.region_exists", "region {code!r} exists", code=code))
            if (
                parent
                and not conn.execute(
                    sa.select(regions.c.code).where(regions.c.code == parent)
                ).first()
            ):
                raise NotFound(Text("org.unknown_parent_region", "unknown parent region {code!r}",
                                    code=parent))
            conn.execute(regions.insert().values(code=code, name=name, parent_code=parent))
        self.on_change("region_added", {"region": code})

    def add_department(self, code: str, name: str, region: str, parent: str | None = None) -> None:
        if not CODE_RE.match(code):
            raise ValidationError(Text("org.bad_department_code",
                                       "bad department code {code!r} (lower-case letters, "
                                       "digits, ._-)",
                                       code=code))
        if not name.strip():
            raise ValidationError(Text("org.department_name_empty", "department name is empty"))
        if long := org_too_long("name", name):
            raise ValidationError(long)
        with write_transaction(self.engine) as conn:  # checks, then inserts
            if conn.execute(
                sa.select(departments.c.code).where(departments.c.code == code)
            ).first():
                raise Conflict(Text("org.department_exists",
                                    "department {code!r} exists", code=code))
            if not conn.execute(sa.select(regions.c.code).where(regions.c.code == region)).first():
                raise NotFound(Text("org.unknown_region", "unknown region {code!r}", code=region))
            if parent:
                row = conn.execute(
                    sa.select(departments.c.region_code).where(departments.c.code == parent)
                ).first()
                if row is None:
                    raise NotFound(Text("org.unknown_parent_department",
                                        "unknown parent department {code!r}", code=parent))
                if row.region_code != region:
                    raise ValidationError(Text(
                        "org.parent_region",
                        "parent department {code!r} is in region {region!r}, not {expected!r}",
                        code=parent, region=row.region_code, expected=region))
            conn.execute(
                departments.insert().values(
                    code=code, name=name, region_code=region, parent_code=parent
                )
            )
        self.on_change("department_added", {"department": code})

    def list_departments(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(departments).order_by(departments.c.region_code, departments.c.code)
            )
            return [dict(r._mapping) for r in rows]

    def get_department(self, code: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(departments).where(departments.c.code == code)).first()
        if row is None:
            raise NotFound(Text("org.unknown_department", "unknown department {code!r}", code=code))
        return dict(row._mapping)

    def department_subtree(self, code: str) -> set[str]:
        """``code`` and every department below it."""
        with self.engine.connect() as conn:
            return subtree(conn, code)

    def rename_department(self, code: str, name: str) -> None:
        if not name.strip():
            raise ValidationError(Text("org.department_name_empty", "department name is empty"))
        if long := org_too_long("name", name):
            raise ValidationError(long)
        with self.engine.begin() as conn:
            found = conn.execute(departments.update().where(departments.c.code == code)
                                 .values(name=name)).rowcount
        if not found:
            raise NotFound(Text("org.unknown_department", "unknown department {code!r}", code=code))
        self.on_change("department_renamed", {"department": code, "name": name})

    def move_department(self, code: str, parent: str | None) -> None:
        """Put ``code`` under ``parent`` (None: at the top of its region). The parent is
        in the same region and is not the department itself or one below it."""
        with write_transaction(self.engine) as conn:  # checks, then updates
            row = conn.execute(sa.select(departments).where(departments.c.code == code)).first()
            if row is None:
                raise NotFound(Text("org.unknown_department", "unknown department {code!r}",
                                    code=code))
            if parent is not None:
                target = conn.execute(sa.select(departments.c.region_code)
                                      .where(departments.c.code == parent)).first()
                if target is None:
                    raise NotFound(Text("org.unknown_parent_department",
                                        "unknown parent department {code!r}", code=parent))
                if target.region_code != row.region_code:
                    raise ValidationError(Text(
                        "org.parent_region",
                        "parent department {code!r} is in region {region!r}, not {expected!r}",
                        code=parent, region=target.region_code, expected=row.region_code))
                if parent in subtree(conn, code):
                    raise ValidationError(Text(
                        "org.department_cycle",
                        "department {code!r} cannot move under {parent!r}, which is below it",
                        code=code, parent=parent))
            conn.execute(departments.update().where(departments.c.code == code)
                         .values(parent_code=parent))
        self.on_change("department_moved", {"department": code, "parent": parent})

    def department_region(self, code: str) -> str:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(departments.c.region_code).where(departments.c.code == code)
            ).first()
        if row is None:
            raise NotFound(Text("org.unknown_department", "unknown department {code!r}", code=code))
        return str(row.region_code)

    # users ---------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        name: str,
        department: str,
        roles: Iterable[str],
        password: str,
        *,
        must_change: bool = True,
    ) -> User:
        roles = sorted(set(roles)) or ["staff"]
        check_roles(roles)
        if not name.strip():
            raise ValidationError(Text("org.user_name_empty", "user name is empty"))
        if long := org_too_long("name", name):
            raise ValidationError(long)
        if not USERNAME_RE.match(username):
            raise ValidationError(Text(
                "org.bad_username_rule",
                "bad username {username!r} (2-64 of lower-case letters, digits, ._-)",
                username=username))
        problems = passwords.policy_problems(password, username)
        if problems:
            raise ValidationError(joined(problems), problems=problems)
        now = self.clock()
        pw_hash = passwords.hash_password(password)
        with write_transaction(self.engine) as conn:  # checks, then inserts
            if conn.execute(sa.select(users.c.id).where(users.c.username == username)).first():
                raise Conflict(Text("org.user_exists",
                                    "user {username!r} exists", username=username))
            # a client's token has its client_id as ``sub`` (RFC 9700 section 4.15): a
            # user of that name would be the client to whoever reads ``sub`` alone
            client = conn.scalar(sa.select(clients.c.client_id).where(
                sa.func.lower(clients.c.client_id) == username.lower()))
            if client is not None:
                raise Conflict(Text(
                    "org.user_is_client", "username {username!r} is the client_id of client "
                    "{client!r}: a client's token names its client_id as its subject",
                    username=username, client=client))
            if not conn.execute(
                sa.select(departments.c.code).where(departments.c.code == department)
            ).first():
                raise NotFound(Text("org.unknown_department", "unknown department {code!r}",
                                    code=department))
            user_id = insert_user(
                conn,
                username=username,
                name=name,
                department=department,
                roles=roles,
                password_hash=pw_hash,
                must_change=must_change,
                now=now,
            )
        self.on_change("user_added", {"user": username, "roles": roles})
        return self.get_user_by_id(user_id)

    def get_user(self, username: str) -> User:
        with self.engine.connect() as conn:
            user = load_user(conn, users.c.username == username)
        if user is None:
            raise NotFound(Text("org.unknown_user", "unknown user {username!r}", username=username))
        return user

    def get_user_by_id(self, user_id: int) -> User:
        with self.engine.connect() as conn:
            user = load_user(conn, users.c.id == user_id)
        if user is None:
            raise NotFound(Text("org.unknown_user_id", "unknown user id {id}", id=user_id))
        return user

    def list_users(self, department: str | None = None) -> list[User]:
        with self.engine.connect() as conn:
            q = sa.select(users.c.id).order_by(users.c.username)
            if department:
                q = q.where(users.c.department_code == department)
            ids = [r.id for r in conn.execute(q)]
            return [u for u in (load_user(conn, users.c.id == i) for i in ids) if u]

    def set_roles(self, username: str, roles: Iterable[str]) -> None:
        roles = sorted(set(roles))
        check_roles(roles)
        user = self.get_user(username)
        with self.engine.begin() as conn:
            replace_roles(conn, user.id, roles, self.clock())
        self.on_change("user_roles_changed", {"user": username, "roles": roles})

    def add_role(self, username: str, role: str) -> None:
        user = self.get_user(username)
        self.set_roles(username, set(user.roles) | {role})

    def disable_user(self, username: str) -> None:
        self._update(username, status="disabled")
        self.on_change("user_disabled", {"user": username})

    def enable_user(self, username: str) -> None:
        self._update(username, status="active")
        self.on_change("user_enabled", {"user": username})

    def unlock_user(self, username: str) -> None:
        """Lift the account's lock and the lock of its codes (gateway.factor_failures)."""
        self._update(username, failed_logins=0, first_failed_at=None, locked_until=None)
        self._clear_factor_failures(username)
        self.on_change("user_unlocked", {"user": username})

    def reset_totp(self, username: str) -> None:
        """Forget the user's TOTP seed: the next sign-in asks for none (an admin account
        enrols again before it may go on). The wrong codes of the old one are forgotten."""
        self._update(username, totp_secret=None)
        self._clear_factor_failures(username)
        self.on_change("user_totp_reset", {"user": username})

    def _clear_factor_failures(self, username: str) -> None:
        with self.engine.begin() as conn:
            user_id = conn.execute(sa.select(users.c.id)
                                   .where(users.c.username == username)).scalar()
            if user_id is not None:
                factor_failures.clear(conn, int(user_id))

    def require_password_change(self, username: str, reason: str) -> None:
        """The user must choose a new password at the next sign-in step."""
        self._update(username, must_change=True)
        self.on_change("user_password_change_required", {"user": username, "why": reason})

    def reset_password(self, username: str, new_password: str | None = None) -> str:
        """Set a new password the user must change at next login; returns it."""
        user = self.get_user(username)
        password = new_password or passwords.generate_password()
        problems = passwords.policy_problems(password, username)
        if problems:
            raise ValidationError(joined(problems), problems=problems)
        self._store_password(user, password, must_change=True)
        self.on_change("user_password_reset", {"user": username})
        return password

    def change_password(self, username: str, new_password: str) -> None:
        """The user's own change: policy and history apply."""
        user = self.get_user(username)
        with self.engine.connect() as conn:
            history = recent_password_hashes(conn, user.id)
        problems = passwords.policy_problems(new_password, username, history)
        if problems:
            raise ValidationError(joined(problems), problems=problems)
        self._store_password(user, new_password, must_change=False)
        # the person did it (at the forced change of a first sign-in, on the account
        # page), not the gateway's OS account
        self.on_change("user_password_changed", {"user": username, "actor": username})

    def _store_password(self, user: User, password: str, *, must_change: bool) -> None:
        if user.source != "local":
            # the directory holds it (gateway.directory): a copy here would sign in
            # after the directory changed or locked it
            raise ValidationError(Text("org.directory_password",
                                       "the password of {username!r} is kept by the "
                                       "directory; change it there", username=user.username))
        now = self.clock()
        pw_hash = passwords.hash_password(password)
        with self.engine.begin() as conn:
            conn.execute(
                users.update()
                .where(users.c.id == user.id)
                .values(password_hash=pw_hash, must_change=must_change, updated_at=now)
            )
            conn.execute(
                password_history.insert().values(
                    user_id=user.id, password_hash=pw_hash, created_at=now
                )
            )

    def _update(self, username: str, **values: Any) -> None:
        values["updated_at"] = self.clock()
        with self.engine.begin() as conn:
            result = conn.execute(
                users.update().where(users.c.username == username).values(**values)
            )
            if "status" in values or "department_code" in values:
                users_changed(conn, values["updated_at"])
        if result.rowcount == 0:
            raise NotFound(Text("org.unknown_user", "unknown user {username!r}", username=username))

    # login bookkeeping (used by the identity provider) ---------------------------

    def password_hash(self, username: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users.c.password_hash).where(users.c.username == username)
            ).first()
        return row.password_hash if row else None

    def record_failure(self, username: str, *, threshold: int, window_seconds: int) -> User:
        """Count a failed login; lock the account when ``threshold`` is reached in the window."""
        now = self.clock()
        # reads the counter, then writes it: begin as a writer (a failed login while the
        # gateway logs its traffic must not fail on SQLite's stale read snapshot), and lock
        # the row (FOR UPDATE; PostgreSQL's READ COMMITTED would let parallel failures all
        # read N and all write N+1, so parallel guesses would go past the threshold;
        # SQLite's BEGIN IMMEDIATE already serialises them)
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                sa.select(users.c.failed_logins, users.c.first_failed_at)
                .where(users.c.username == username)
                .with_for_update()
            ).first()
            if row is None:
                raise NotFound(Text("org.unknown_user",
                                    "unknown user {username!r}", username=username))
            # the same rule as for sign-in names with no account (gateway.login_throttle),
            # so a lock never tells whether the name is an account
            after = count_failure(as_utc(row.first_failed_at), row.failed_logins, now,
                                  threshold=threshold, window_seconds=window_seconds)
            values: dict[str, Any] = {"failed_logins": after.count,
                                      "first_failed_at": after.first}
            if after.locked_until is not None:
                values["locked_until"] = after.locked_until
            conn.execute(users.update().where(users.c.username == username).values(**values))
        return self.get_user(username)

    def record_success(self, username: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                users.update()
                .where(users.c.username == username)
                .values(failed_logins=0, first_failed_at=None, locked_until=None)
            )


def insert_user(
    conn: Connection,
    *,
    username: str,
    name: str,
    department: str,
    roles: list[str],
    password_hash: str | None,
    must_change: bool,
    now: datetime,
    status: str = "active",
) -> int:
    result = conn.execute(
        users.insert().values(
            username=username,
            name=name,
            department_code=department,
            status=status,
            password_hash=password_hash,
            must_change=must_change,
            failed_logins=0,
            created_at=now,
            updated_at=now,
        )
    )
    pk = result.inserted_primary_key
    assert pk is not None
    user_id = int(pk[0])
    replace_roles(conn, user_id, roles, now)
    if password_hash:
        conn.execute(
            password_history.insert().values(
                user_id=user_id, password_hash=password_hash, created_at=now
            )
        )
    return user_id


def replace_roles(conn: Connection, user_id: int, roles: Iterable[str], now: datetime) -> None:
    roles = sorted(set(roles))
    check_roles(roles)
    conn.execute(user_roles.delete().where(user_roles.c.user_id == user_id))
    if roles:
        conn.execute(user_roles.insert(), [{"user_id": user_id, "role_code": r} for r in roles])
    bump_version(conn, now)
    if ADMIN_ROLES & set(roles):
        end_moved(conn, now)  # the 三员 neither give nor receive delegations


def users_changed(conn: Connection, now: datetime) -> None:
    """A user's department, status or name changed in this transaction: every process
    reads its users anew within a second (``gateway.live_users``), and a delegation
    whose delegator or delegate has left its department ends with the move
    (``gateway.delegation_moves``)."""
    bump_version(conn, now)
    end_moved(conn, now)


def subtree(conn: Connection, code: str) -> set[str]:
    """``code`` and every department below it (a missing code: an empty set)."""
    parents = {r.code: r.parent_code
               for r in conn.execute(sa.select(departments.c.code, departments.c.parent_code))}
    if code not in parents:
        return set()
    children: dict[str, list[str]] = {}
    for child, parent in parents.items():
        if parent is not None:
            children.setdefault(parent, []).append(child)
    found, todo = set(), [code]
    while todo:
        node = todo.pop()
        if node not in found:
            found.add(node)
            todo.extend(children.get(node, ()))
    return found


def recent_password_hashes(conn: Connection, user_id: int) -> list[str]:
    rows = conn.execute(
        sa.select(password_history.c.password_hash)
        .where(password_history.c.user_id == user_id)
        .order_by(password_history.c.id.desc())
        .limit(passwords.HISTORY)
    )
    return [r.password_hash for r in rows]


def load_user(conn: Connection, where: Any) -> User | None:
    row = conn.execute(
        sa.select(users, departments.c.region_code)
        .join(departments, departments.c.code == users.c.department_code)
        .where(where)
    ).first()
    if row is None:
        return None
    roles = frozenset(
        r.role_code
        for r in conn.execute(
            sa.select(user_roles.c.role_code).where(user_roles.c.user_id == row.id)
        )
    )
    return User(
        id=row.id,
        username=row.username,
        name=row.name,
        department=row.department_code,
        roles=roles,
        status=row.status,
        must_change=bool(row.must_change),
        failed_logins=row.failed_logins,
        locked_until=as_utc(row.locked_until),
        has_totp=row.totp_secret is not None,
        region=row.region_code,
        email=row.email,
        email_verified=bool(row.email_verified),
        phone_number=row.phone_number,
        phone_number_verified=bool(row.phone_number_verified),
        source=row.source,
    )
