"""SCIM Groups over govgate's roles: a group is a role (id its code, displayName its
name), its members the users of the client's scope who hold it.

Roles are a fixed set, so groups are neither created nor deleted nor renamed; their
members change with PUT and PATCH (add/remove/replace, paths such as
``members[value eq "7"]``). Members outside the client's scope are neither shown nor
touched. Every resulting role set goes through the org's rule first (三员分立: a user
given a second admin role is ``400 invalidValue``); then, as at the system
administrator's console, admin roles and the accounts holding one are the operator's
(403)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from gateway.admin.scim.context import ScimContext
from gateway.admin.scim.errors import ScimError, invalid_value, mutability, not_found
from gateway.admin.scim.filters import condition, group_columns
from gateway.admin.scim.listing import Query, check_version, user_key
from gateway.admin.scim.model import REPLACEMENT, patched, read
from gateway.admin.scim.schema import GROUP_SCHEMA, LIST_SCHEMA
from gateway.admin.scim.users import DIRECTORY_ACCOUNT, _visible, version
from gateway.admin.sysadmin import ADMIN_ACCOUNTS
from gateway.errors import RoleConflict, ValidationError
from gateway.org import ADMIN_ROLES, check_roles, replace_roles
from gateway.storage import write_transaction
from gateway.tables import roles, user_roles, users

if TYPE_CHECKING:
    from scim2_models import Group

FIXED = "roles are a fixed set: groups are neither created, deleted nor renamed over SCIM"


class ScimGroups:
    def __init__(self, ctx: ScimContext) -> None:
        self.ctx = ctx
        self.services = ctx.gateway.services
        self.engine = self.services.engine

    def _seen(self) -> Any:
        """The users this client sees: not deleted over SCIM, of its scope."""
        if self.ctx.scope.province:
            return _visible()
        return sa.and_(_visible(), users.c.department_code.in_(sorted(self.ctx.scope.codes)))

    def _members(self, conn: Any, code: str) -> list[Any]:
        """(id, name, department, roles) of the visible users holding ``code``."""
        query = (sa.select(users.c.id, users.c.name, users.c.department_code)
                 .join(user_roles, user_roles.c.user_id == users.c.id)
                 .where(user_roles.c.role_code == code, self._seen()).order_by(users.c.id))
        return list(conn.execute(query))

    def resource(self, conn: Any, row: Any) -> dict[str, Any]:
        base = self.ctx.base
        out: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "id": row.code,
                               "displayName": row.name}
        members = [{"value": str(m.id), "$ref": f"{base}/Users/{m.id}", "display": m.name}
                   for m in self._members(conn, row.code)]
        if members:
            out["members"] = members
        out["meta"] = {"resourceType": "Group", "location": f"{base}/Groups/{row.code}"}
        out["meta"]["version"] = version(out)
        return out

    def get(self, code: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(roles).where(roles.c.code == code)).first()
            if row is None:
                raise not_found(f"no group {code!r}")
            return self.resource(conn, row)

    def search(self, query: Query) -> dict[str, Any]:
        where = [condition(query.filter, group_columns(self._seen()))] if query.filter else []
        order: Any = roles.c.code
        if query.sort_by and query.sort_by.lower() == "displayname":
            order = roles.c.name
        order = order.desc() if query.descending else order.asc()
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(roles)
                                 .where(*where)).scalar_one()
            rows = conn.execute(sa.select(roles).where(*where).order_by(order, roles.c.code)
                                .offset(query.start - 1).limit(query.count)).all()
            resources = [self.resource(conn, r) for r in rows]
        return {"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": query.start,
                "itemsPerPage": len(resources), "Resources": resources}

    def refuse_fixed(self, what: str) -> ScimError:
        return self.ctx.refuse(what, FIXED)

    def replace(self, code: str, body: Any, if_match: str | None) -> dict[str, Any]:
        model = read("Group", body, REPLACEMENT)
        return self._change(code, model, if_match, f"PUT /scim/v2/Groups/{code}")

    def patch(self, code: str, body: Any, if_match: str | None) -> dict[str, Any]:
        state = patched("Group", self.get(code), body)
        model = read("Group", state, REPLACEMENT)
        return self._change(code, model, if_match, f"PATCH /scim/v2/Groups/{code}")

    def _change(self, code: str, model: Group, if_match: str | None, what: str
                ) -> dict[str, Any]:
        before = self.get(code)
        check_version(before, if_match)
        if model.display_name is not None and model.display_name != before["displayName"]:
            raise mutability(FIXED)
        old = {m["value"] for m in before.get("members", [])}
        new = {str(m.value) for m in model.members or [] if m.value is not None}
        added, removed = new - old, old - new
        if not added and not removed:
            return before
        with self.engine.connect() as conn:
            rows = {str(r.id): r for r in conn.execute(
                sa.select(users.c.id, users.c.username, users.c.department_code,
                          users.c.source)
                .where(users.c.id.in_(sorted(filter(None, map(user_key, added | removed)))),
                       _visible()))}
            held = {}
            for key, row in rows.items():
                held[key] = {r.role_code for r in conn.execute(
                    sa.select(user_roles.c.role_code).where(user_roles.c.user_id == row.id))}
        unknown = sorted(v for v in added if v not in rows
                         or not self.ctx.scope.covers(rows[v].department_code))
        if unknown:
            raise invalid_value(f"no user with id {', '.join(unknown)}")
        wanted = {}
        for key in sorted(added | removed):
            roles_now = held[key] | {code} if key in added else held[key] - {code}
            try:  # the org's rule first: 三员分立 is the same answer everywhere
                check_roles(roles_now)
            except (RoleConflict, ValidationError) as exc:
                detail = f"user {rows[key].username}: {exc}"
                if isinstance(exc, RoleConflict):  # an attempt on 三员分立: audited
                    self.ctx.trail.refused(what, detail, status=400,
                                           user=rows[key].username, group=code)
                raise invalid_value(detail) from None
            wanted[key] = roles_now
        for key in wanted:
            if code in ADMIN_ROLES or held[key] & ADMIN_ROLES:
                raise self.ctx.refuse(what, str(ADMIN_ACCOUNTS), user=rows[key].username,
                                      group=code)
            if rows[key].source == "directory":
                raise self.ctx.refuse(what, DIRECTORY_ACCOUNT, user=rows[key].username,
                                      group=code)
        now = self.services.clock()
        with write_transaction(self.engine) as conn:
            for key, role_set in wanted.items():
                replace_roles(conn, int(key), role_set, now)
                self.ctx.trail.collect("user_roles_changed", {
                    "user": rows[key].username, "roles": sorted(role_set)})
        after = self.get(code)
        self.ctx.trail.changed("scim_group_updated", {"group": code},
                               {"members": sorted(old)}, {"members": sorted(new)})
        return after
