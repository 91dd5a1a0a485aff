"""SCIM Users over govgate's users (``gateway.org``).

userName is the username, displayName the name (姓名; name.formatted, or given and
family name, are read when displayName is absent), active the status, emails and
phoneNumbers the one work e-mail and phone, the enterprise extension's department
the department code, groups the roles (read-only here: roles change through
/Groups). A password is taken only if it passes the password rule, and never
returned; the person changes it at the first sign-in, as after any reset.

The org's rules apply as at the system administrator's console: the client's
department scope, and accounts holding an admin role (三员分立) are the operator's,
readable but never changed over SCIM, and so are the directory's (``source``
``directory``: the directory sync decides them). DELETE disables the account and records it as
deprovisioned: SCIM then answers 404 for it (RFC 7644 section 3.6), the account and
its history stay."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gateway import passwords
from gateway.admin.scim.context import ScimContext
from gateway.admin.scim.errors import ScimError, invalid_value, mutability, not_found
from gateway.admin.scim.filters import USER_COLUMNS, condition
from gateway.admin.scim.listing import Query, check_version, user_key
from gateway.admin.scim.model import CREATION, REPLACEMENT, enterprise, patched, read
from gateway.admin.scim.schema import ENTERPRISE_SCHEMA, LIST_SCHEMA, USER_SCHEMA
from gateway.admin.sysadmin import ADMIN_ACCOUNTS
from gateway.errors import Conflict, GovgateError, NotFound, ValidationError
from gateway.idp.sign_out import revoke_everywhere
from gateway.limits import control_character, org_too_long
from gateway.org import Org, User, load_user, recent_password_hashes, sign_in_name, users_changed
from gateway.status_records import last_status_change
from gateway.storage import write_transaction
from gateway.tables import departments, roles, scim_users, users

if TYPE_CHECKING:
    from gateway.admin.scim.model import UserModel

EMAIL_MAX, PHONE_MAX, EXTERNAL_MAX = 254, 32, 255
UNKEPT = ("roles", "entitlements")
# two identity sources for one account would undo each other at every sync, and a SCIM
# token would re-enable whom the directory disabled (gateway.directory)
DISABLED_ELSEWHERE = ("the account was disabled by an administrator, not over SCIM: the "
                      "operator enables it (govgate user enable)")
DIRECTORY_ACCOUNT = ("the account comes from the directory (LDAP), which decides its name, "
                     "department, roles and status: change it there, not over SCIM")


def version(resource: dict[str, Any]) -> str:
    """A weak ETag of what the resource says (RFC 7644 section 3.14)."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                            .encode("utf-8")).hexdigest()
    return f'W/"{digest[:20]}"'


def _visible() -> Any:
    """Not deleted over SCIM (a deleted account re-enabled by the operator is back)."""
    deleted = sa.select(scim_users.c.user_id).where(
        scim_users.c.user_id == users.c.id, scim_users.c.deleted_at.is_not(None)).exists()
    return sa.or_(users.c.status == "active", sa.not_(deleted))


def _contact(value: str | None) -> list[dict[str, Any]] | None:
    return [{"value": value, "type": "work"}] if value else None


EXTERNAL_ID = (sa.select(scim_users.c.external_id)
               .where(scim_users.c.user_id == users.c.id).scalar_subquery())


def _keep(conn: Connection, user_id: int, **values: Any) -> None:
    """Set columns of the account's ``scim_users`` row (made when missing)."""
    if conn.execute(scim_users.update().where(scim_users.c.user_id == user_id)
                    .values(**values)).rowcount == 0:
        conn.execute(scim_users.insert().values(user_id=user_id, **values))


class ScimUsers:
    def __init__(self, ctx: ScimContext) -> None:
        self.ctx = ctx
        self.services = ctx.gateway.services
        self.engine = self.services.engine

    def _org(self) -> Org:
        return Org(self.engine, clock=self.services.clock, on_change=self.ctx.trail.collect)

    # -- reading --------------------------------------------------------------------

    def resource(self, conn: Connection, user: User) -> dict[str, Any]:
        stamps = conn.execute(sa.select(users.c.created_at, users.c.updated_at,
                                        EXTERNAL_ID.label("external_id"))
                              .where(users.c.id == user.id)).one()
        names = {r.code: r.name for r in conn.execute(sa.select(roles.c.code, roles.c.name))}
        base = self.ctx.base
        out: dict[str, Any] = {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
            "id": str(user.id),
        }
        if stamps.external_id is not None:
            out["externalId"] = stamps.external_id
        out |= {
            "userName": user.username,
            "displayName": user.name,
            "active": user.status == "active",
        }
        if emails := _contact(user.email):
            out["emails"] = emails
        if phones := _contact(user.phone_number):
            out["phoneNumbers"] = phones
        if user.roles:
            out["groups"] = [{"value": r, "$ref": f"{base}/Groups/{r}",
                              "display": names.get(r, r)} for r in sorted(user.roles)]
        out[ENTERPRISE_SCHEMA] = {"department": user.department}
        out["meta"] = {"resourceType": "User", "location": f"{base}/Users/{user.id}",
                       "created": stamps.created_at.isoformat(),
                       "lastModified": stamps.updated_at.isoformat()}
        out["meta"]["version"] = version(out)
        return out

    def _load(self, conn: Connection, user_id: str) -> User:
        key = user_key(user_id)
        if key is None:
            raise not_found(f"no user {user_id!r}")
        user = load_user(conn, sa.and_(users.c.id == key, _visible()))
        if user is None or not self.ctx.scope.covers(user.department):
            raise not_found(f"no user {user_id!r}")
        return user

    def get(self, user_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return self.resource(conn, self._load(conn, user_id))

    def search(self, query: Query) -> dict[str, Any]:
        where = [_visible()]
        if not self.ctx.scope.province:
            where.append(users.c.department_code.in_(sorted(self.ctx.scope.codes)))
        if query.filter:
            where.append(condition(query.filter, USER_COLUMNS))
        order: Any = users.c.id
        if query.sort_by:
            from_filter = USER_COLUMNS.get(query.sort_by.lower().rsplit(":", 1)[-1])
            if from_filter is not None and from_filter.expr is not None:
                order = from_filter.expr
            # RFC 7644 3.4.2.3: an attribute that cannot be sorted on leaves the order
        order = order.desc() if query.descending else order.asc()
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(users)
                                 .where(*where)).scalar_one()
            ids = [r.id for r in conn.execute(
                sa.select(users.c.id).where(*where).order_by(order, users.c.id)
                .offset(query.start - 1).limit(query.count))]
            found = [load_user(conn, users.c.id == i) for i in ids]
            resources = [self.resource(conn, u) for u in found if u is not None]
        return {"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": query.start,
                "itemsPerPage": len(resources), "Resources": resources}

    # -- changing -------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        what = "POST /scim/v2/Users"
        want = _Wanted.of(read("User", body, CREATION))
        username = sign_in_name(want.username or "")
        if not username:
            raise invalid_value("userName is required")
        department = want.department or self.ctx.department
        self.ctx.within(what, department)
        if not want.name:
            raise invalid_value("displayName (or name.formatted) is required")
        want.check()
        password = want.password or passwords.generate_password()
        org = self._org()
        with _org_errors():
            user = org.add_user(username, want.name, department, ["staff"], password,
                                must_change=True)
        with write_transaction(self.engine) as conn:
            conn.execute(users.update().where(users.c.id == user.id).values(
                email=want.email, phone_number=want.phone))
            if want.external_id is not None:
                _keep(conn, user.id, external_id=want.external_id)
        if want.active is False:
            org.disable_user(username)
        with self.engine.connect() as conn:
            after = self.resource(conn, self._load(conn, str(user.id)))
        self.ctx.trail.changed("scim_user_created", {"user": username}, None, _view(after))
        return after

    def replace(self, user_id: str, body: Any, if_match: str | None) -> dict[str, Any]:
        want = _Wanted.of(read("User", body, REPLACEMENT))
        return self._change(user_id, want, if_match, f"PUT /scim/v2/Users/{user_id}")

    def patch(self, user_id: str, body: Any, if_match: str | None) -> dict[str, Any]:
        current = self.get(user_id)
        state = patched("User", current, body)
        want = _Wanted.of(read("User", state, REPLACEMENT))
        return self._change(user_id, want, if_match, f"PATCH /scim/v2/Users/{user_id}")

    def _current(self, user_id: str, if_match: str | None, what: str
                 ) -> tuple[User, dict[str, Any]]:
        with self.engine.connect() as conn:
            user = self._load(conn, user_id)
            before = self.resource(conn, user)
        check_version(before, if_match)
        if user.is_admin:
            raise self.ctx.refuse(what, str(ADMIN_ACCOUNTS), user=user.username)
        if user.source == "directory":
            raise self.ctx.refuse(what, DIRECTORY_ACCOUNT, user=user.username)
        return user, before

    def _change(self, user_id: str, want: _Wanted, if_match: str | None, what: str
                ) -> dict[str, Any]:
        user, before = self._current(user_id, if_match, what)
        if want.username is not None and sign_in_name(want.username) != user.username:
            raise mutability("userName cannot change (an account is never renamed)")
        if want.active and user.status != "active" and not self._disabled_over_scim(user):
            # an HR system's full push sends active: true for everyone: an administrator's
            # disable (an incident) would end at the next one
            raise self.ctx.refuse(what, DISABLED_ELSEWHERE, user=user.username)
        department = want.department or user.department
        self.ctx.within(what, department)
        want.check()
        if want.password:
            with self.engine.connect() as conn:
                history = recent_password_hashes(conn, user.id)
            if problems := passwords.policy_problems(want.password, user.username, history):
                raise invalid_value("password: " + "; ".join(problems))
        values: dict[str, Any] = {}
        if want.name and want.name != user.name:
            values["name"] = want.name
        if department != user.department:
            values["department_code"] = department
        if want.email != user.email:
            values["email"] = want.email
        if want.phone != user.phone_number:
            values["phone_number"] = want.phone
        org = self._org()
        with self.engine.connect() as conn:
            external = conn.execute(sa.select(EXTERNAL_ID).where(users.c.id == user.id)
                                    ).scalar()
        if values or want.external_id != external:
            now = self.services.clock()
            with write_transaction(self.engine) as conn:  # checks, then writes
                if "department_code" in values and conn.execute(
                        sa.select(departments.c.code)
                        .where(departments.c.code == department)).first() is None:
                    raise invalid_value(f"unknown department {department!r}")
                if want.external_id != external:
                    _keep(conn, user.id, external_id=want.external_id)
                if values:
                    conn.execute(users.update().where(users.c.id == user.id)
                                 .values(**values, updated_at=now))
                if "department_code" in values:
                    users_changed(conn, now)
            self.ctx.trail.collect("user_updated", {"user": user.username,
                                                    "fields": sorted(values)})
        if want.password:
            with _org_errors():
                org.reset_password(user.username, want.password)
        if want.active is not None and want.active != (user.status == "active"):
            if want.active:
                org.enable_user(user.username)
            else:
                self._disable(org, user.username)
        after = self.get(user_id)
        if _view(before) != _view(after) or self.ctx.trail.effects:  # else nothing changed
            self.ctx.trail.changed("scim_user_updated", {"user": user.username},
                                   _view(before), _view(after))
        return after

    def _disabled_over_scim(self, user: User) -> bool:
        """Whether a SCIM client made the account's last status change
        (``gateway.status_records``), on a log that accounts for the account's row:
        changed after every record naming it, the change may be an administrator's
        disable still in another process's audit journal, so it holds."""
        self.services.settle_audit()  # journal mode: this process's records, now
        last = last_status_change(self.engine, user.username)
        if last is None or last.actor_client is None or last.extra.get("via") != "scim":
            return False
        with self.engine.connect() as conn:
            updated_at = conn.execute(sa.select(users.c.updated_at)
                                      .where(users.c.id == user.id)).scalar()
        return last.accounts_for(updated_at)

    def _disable(self, org: Org, username: str) -> None:
        org.disable_user(username)
        out = revoke_everywhere(self.ctx.gateway.provider, username)
        self.ctx.trail.collect("sessions_revoked", {"user": username,
                                                   "sessions": len(out.sessions),
                                                   "families": out.families})
        self.ctx.signed_out.append(out)

    def delete(self, user_id: str, if_match: str | None) -> None:
        what = f"DELETE /scim/v2/Users/{user_id}"
        user, before = self._current(user_id, if_match, what)
        self.ctx.within(what, user.department)
        if user.status == "active":
            self._disable(self._org(), user.username)
        with write_transaction(self.engine) as conn:
            _keep(conn, user.id, deleted_at=self.services.clock(),
                  deleted_by=self.ctx.client_id)
        self.ctx.trail.changed("scim_user_deleted", {"user": user.username}, _view(before),
                               {"active": False, "deprovisioned": True})


def _view(resource: dict[str, Any]) -> dict[str, Any]:
    """What the audit record keeps of a resource: no meta, never a password."""
    return {k: v for k, v in resource.items() if k not in ("meta", "schemas", "password")}


@contextlib.contextmanager
def _org_errors() -> Iterator[None]:
    """The org's refusals as SCIM errors."""
    try:
        yield
    except Conflict as exc:
        raise ScimError(409, str(exc), "uniqueness") from None
    except (NotFound, ValidationError) as exc:
        raise invalid_value(str(exc)) from None
    except GovgateError as exc:
        raise ScimError(exc.status, str(exc)) from None


@dataclass
class _Wanted:
    username: str | None
    external_id: str | None
    name: str | None
    department: str | None
    active: bool | None
    email: str | None
    phone: str | None
    password: str | None
    # privileges in the core schema govgate keeps none of: refused, never dropped unsaid
    unkept: tuple[str, ...] = ()

    @classmethod
    def of(cls, model: UserModel) -> _Wanted:
        name = model.display_name
        if not name and model.name is not None:
            name = model.name.formatted or " ".join(
                p for p in (model.name.family_name, model.name.given_name) if p) or None
        ext = enterprise(model)
        return cls(
            username=model.user_name,
            external_id=model.external_id,
            name=name.strip() if name else None,
            department=ext.department if ext is not None else None,
            active=model.active,
            email=_first(model.emails),
            phone=_first(model.phone_numbers),
            password=model.password,
            unkept=tuple(n for n in UNKEPT if getattr(model, n, None)),
        )

    def check(self) -> None:
        if self.unkept:
            # a careless client would read the 200 as roles given
            raise invalid_value(f"{', '.join(self.unkept)}: govgate keeps none on a User; "
                                "its roles are the Groups (PATCH /Groups/{role})")
        for what, value in (("displayName", self.name), ("emails", self.email),
                            ("phoneNumbers", self.phone), ("externalId", self.external_id)):
            if value and (char := control_character(value)) is not None:
                raise invalid_value(f"{what} holds the control character U+{ord(char):04X}")
        if self.name and (long := org_too_long("name", self.name)):
            raise invalid_value(str(long))
        if self.email and len(self.email) > EMAIL_MAX:
            raise invalid_value(f"an e-mail address has at most {EMAIL_MAX} characters")
        if self.external_id and len(self.external_id) > EXTERNAL_MAX:
            raise invalid_value(f"an externalId has at most {EXTERNAL_MAX} characters")
        if self.phone and len(self.phone) > PHONE_MAX:
            raise invalid_value(f"a phone number has at most {PHONE_MAX} characters")


def _first(values: list[Any] | None) -> str | None:
    """The primary value, else the first one."""
    if not values:
        return None
    chosen = next((v for v in values if v.primary), values[0])
    return str(chosen.value) if chosen.value else None
