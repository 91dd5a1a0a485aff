"""A SCIM filter (RFC 7644 section 3.4.2.2) as a SQLAlchemy condition.

scim2-models parses the text (its lark grammar of the RFC with the errata); this
module walks the tree and builds the condition from column objects and bound
values, never from SQL text. Attribute names are case-insensitive and so are the
string comparisons (every published attribute is ``caseExact: false``). An attribute
govgate does not keep, or an operator its type cannot take, is ``invalidFilter``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from gateway.admin.scim.errors import invalid_filter
from gateway.admin.scim.schema import ENTERPRISE_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from gateway.limits import unstorable
from gateway.tables import roles, scim_users, user_roles, users

if TYPE_CHECKING:
    from scim2_models.path import AttrPath, CompareOperator, FilterNode

Condition = ColumnElement[bool]


@functools.cache
def _grammar() -> SimpleNamespace:
    """scim2-models' filter parser and tree, on the first filter (gateway.admin.scim.model
    says why not at start). The operators are compared by their text (a StrEnum)."""
    from scim2_models import InvalidFilterException, ScimFilter
    from scim2_models.path import Comparison, LogicalExpr, Not, Present, ValuePath

    return SimpleNamespace(InvalidFilterException=InvalidFilterException,
                           ScimFilter=ScimFilter, Comparison=Comparison,
                           LogicalExpr=LogicalExpr, Not=Not, Present=Present,
                           ValuePath=ValuePath)


@dataclass(frozen=True)
class Column:
    """A filterable attribute: its column and kind (string, exact: a case-exact string,
    active, dateTime), or ``build`` for an attribute that is a condition of its own."""

    expr: Any
    kind: str = "string"
    build: Callable[[CompareOperator | None, Any], Condition] | None = None


def _has_role(op: CompareOperator | None, value: Any) -> Condition:
    rows = sa.select(user_roles.c.user_id).where(user_roles.c.user_id == users.c.id)
    if op is not None:
        rows = rows.where(_compare(Column(user_roles.c.role_code), op, value))
    return rows.exists()


def _has_member(seen: Condition, op: CompareOperator | None, value: Any) -> Condition:
    rows = (sa.select(user_roles.c.role_code)
            .join(users, users.c.id == user_roles.c.user_id)
            .where(user_roles.c.role_code == roles.c.code, seen))
    if op is not None:
        rows = rows.where(_compare(Column(sa.cast(user_roles.c.user_id, sa.String)), op,
                                   value))
    return rows.exists()


def _always(op: CompareOperator | None, value: Any) -> Condition:
    """``type``/``primary`` of the one e-mail or phone: "work" and true."""
    return sa.true()


USER_COLUMNS: dict[str, Column] = {
    "id": Column(sa.cast(users.c.id, sa.String), "exact"),
    "username": Column(users.c.username),
    "externalid": Column(sa.select(scim_users.c.external_id)
                         .where(scim_users.c.user_id == users.c.id).scalar_subquery(),
                         "exact"),
    "displayname": Column(users.c.name),
    "name": Column(users.c.name),
    "name.formatted": Column(users.c.name),
    "active": Column(users.c.status, "active"),
    "emails": Column(users.c.email),
    "emails.value": Column(users.c.email),
    "phonenumbers": Column(users.c.phone_number),
    "phonenumbers.value": Column(users.c.phone_number),
    "meta.created": Column(users.c.created_at, "dateTime"),
    "meta.lastmodified": Column(users.c.updated_at, "dateTime"),
    "department": Column(users.c.department_code),
    "groups": Column(None, build=_has_role),
    "groups.value": Column(None, build=_has_role),
}
# inside emails[...] / phoneNumbers[...]: the sub-attributes of the one value
CONTACT_SUB = {"type", "primary", "value"}

def group_columns(seen: Condition) -> dict[str, Column]:
    """The filterable attributes of a group whose members are the users ``seen`` holds
    of (the client's scope): a member elsewhere matches nothing, as it is not shown."""
    members = Column(None, build=functools.partial(_has_member, seen))
    return {"id": Column(roles.c.code, "exact"), "displayname": Column(roles.c.name),
            "members": members, "members.value": members}

_SCHEMAS = {USER_SCHEMA.lower(), GROUP_SCHEMA.lower(), ENTERPRISE_SCHEMA.lower()}


def _key(path: AttrPath, prefix: str = "") -> str:
    uri = (path.uri or "").lower()
    if uri and uri not in _SCHEMAS:
        raise invalid_filter(f"unknown schema {path.uri!r}")
    name = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
    return f"{prefix}.{name}" if prefix else name


def _like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _compare(column: Column, op: CompareOperator, value: Any) -> Condition:
    if column.build is not None:
        return column.build(op, value)
    expr = column.expr
    if column.kind == "active":
        if not isinstance(value, bool) or op not in ("eq", "ne"):
            raise invalid_filter("active takes eq or ne with true or false")
        want = value if op == "eq" else not value
        return expr == "active" if want else expr != "active"
    if column.kind == "dateTime":
        if not isinstance(value, str):
            raise invalid_filter("a dateTime is compared with a quoted ISO 8601 time")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_filter(f"not a dateTime: {value!r}") from None
        return _ordered(expr, op, moment)
    if not isinstance(value, str):
        # a string attribute compared with a number, boolean or null matches nothing
        return sa.false() if op != "ne" else sa.true()
    # caseExact: false (every attribute but id and externalId): compared in lower case
    lowered = expr if column.kind == "exact" else sa.func.lower(expr)
    text = value if column.kind == "exact" else value.lower()
    if op == "eq":
        return lowered == text
    if op == "ne":
        return sa.or_(expr.is_(None), lowered != text)
    if op == "co":
        return lowered.like(f"%{_like_escaped(text)}%", escape="\\")
    if op == "sw":
        return lowered.like(f"{_like_escaped(text)}%", escape="\\")
    if op == "ew":
        return lowered.like(f"%{_like_escaped(text)}", escape="\\")
    return _ordered(lowered, op, text)


def _ordered(expr: Any, op: CompareOperator, value: Any) -> Condition:
    if op == "eq":
        return expr == value  # type: ignore[no-any-return]
    if op == "ne":
        return expr != value  # type: ignore[no-any-return]
    if op == "gt":
        return expr > value  # type: ignore[no-any-return]
    if op == "ge":
        return expr >= value  # type: ignore[no-any-return]
    if op == "lt":
        return expr < value  # type: ignore[no-any-return]
    if op == "le":
        return expr <= value  # type: ignore[no-any-return]
    raise invalid_filter(f"{op.value} does not apply to a dateTime")


def _present(column: Column) -> Condition:
    if column.build is not None:
        return column.build(None, None)
    if column.kind in ("active", "dateTime"):
        return column.expr.is_not(None)  # type: ignore[no-any-return]
    return sa.and_(column.expr.is_not(None), column.expr != "")


# comparisons in one filter: past any provisioning client's need, within every database's
# limits on a statement (SQLite refused 3,000 ``or``-ed terms, and that was a 503)
MAX_TERMS = 100


class _Translator:
    def __init__(self, columns: dict[str, Column]) -> None:
        self.columns = columns
        self.terms = 0

    def counted(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise invalid_filter(f"a filter compares at most {MAX_TERMS} times")

    def column(self, path: AttrPath, prefix: str = "") -> Column:
        key = _key(path, prefix)
        if prefix and key.split(".")[-1] in ("type", "primary") and prefix in (
                "emails", "phonenumbers"):
            return Column(None, build=_always)
        found = self.columns.get(key)
        if found is None:
            raise invalid_filter(f"cannot filter on {path}")
        return found

    def node(self, node: FilterNode, prefix: str = "") -> Condition:
        g = _grammar()
        if isinstance(node, g.LogicalExpr):
            parts = [self.node(term, prefix) for term in node.terms]
            return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
        if isinstance(node, g.Not):
            return sa.not_(self.node(node.expr, prefix))
        if isinstance(node, g.Present | g.Comparison):
            self.counted()
        if isinstance(node, g.Present):
            return _present(self.column(node.attr_path, prefix))
        if isinstance(node, g.Comparison):
            if unstorable(node.value):  # "\ud800", "\u0000": no column holds one
                raise invalid_filter("a value holds a NUL character or an unpaired surrogate")
            return _compare(self.column(node.attr_path, prefix), node.op, node.value)
        if isinstance(node, g.ValuePath):
            if prefix:
                raise invalid_filter("a value path cannot nest")
            outer = _key(node.attr_path)
            if outer not in ("emails", "phonenumbers", "groups", "members"):
                raise invalid_filter(f"{node.attr_path} is not multi-valued")
            inner = self.node(node.val_filter, outer)
            presence = _present(self.columns[outer])
            return sa.and_(presence, inner)
        raise invalid_filter(f"unsupported filter {node}")


def condition(text: str, columns: dict[str, Column]) -> Condition:
    """The condition of filter ``text`` over ``columns`` (``USER_COLUMNS`` or
    ``group_columns(...)``), or ScimError ``invalidFilter``."""
    g = _grammar()
    try:
        tree = g.ScimFilter(text).ast
    except g.InvalidFilterException as exc:
        raise invalid_filter(f"invalid filter: {exc}") from None
    except ValueError as exc:
        raise invalid_filter(f"invalid filter: {exc}") from None
    return _Translator(columns).node(tree)
