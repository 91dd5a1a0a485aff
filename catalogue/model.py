"""The catalogue model (政务信息资源目录): resources, data items, share types,
applications and grants, and the pure validation of a resource entry.

A resource is served by one system at one route (method + path template); its
JSON response holds records, and each record's keys are data items (信息项).

    share types   unconditional 无条件共享 | conditional 有条件共享 | none 不予共享
    status        draft → published → retired
    item levels   1 一般 … 4 核心 (after GB/T 43697-2024; a resource is as high as its
                  highest item: 就高从严)
    masks         keep_last_4 | keep_first_char | phone_middle | pseudonym | redact

Dates of a grant (``valid_from``, ``until``) are whole days in China Standard
Time (UTC+8); ``until`` is inclusive.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from catalogue.envelope import keys_problems
from catalogue.limits import length_problems
from catalogue.query import names_problems
from texts import Text, where

UNCONDITIONAL = "unconditional"
CONDITIONAL = "conditional"
NONE = "none"
SHARE_TYPES = (UNCONDITIONAL, CONDITIONAL, NONE)
SHARE_TYPE_TITLES = {UNCONDITIONAL: "无条件共享", CONDITIONAL: "有条件共享", NONE: "不予共享"}

DRAFT = "draft"
PUBLISHED = "published"
RETIRED = "retired"
STATUSES = (DRAFT, PUBLISHED, RETIRED)

MASKS = ("keep_last_4", "keep_first_char", "phone_middle", "pseudonym", "redact")
LEVELS = (1, 2, 3, 4)
SENSITIVE_LEVEL = 3  # 敏感 and above (4 核心): marked wherever items are chosen
# the three admin roles (三员分立, as gateway.org names them): they run the platform, they
# are not business users, so they do not apply for data
ADMIN_ROLES = frozenset({"sysadmin", "secadmin", "auditor"})
# who decides a department's applications: its data stewards, and its head (负责人),
# to whom overdue or referred applications go
DATA_STEWARD = "data_steward"
DEPT_HEAD = "dept_head"
SHARE_METHODS = ("api", "file")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "*")
ITEM_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "object", "array")

# application states (申请 → 审核 → 授权)
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
ESCALATED = "escalated"
CLOSED = "closed"
APPLICATION_STATES = (SUBMITTED, APPROVED, REJECTED, ESCALATED, CLOSED)
OPEN_STATES = (SUBMITTED, ESCALATED)

# grant states (使用 → 到期/撤销); "expired" is computed from ``until``, never stored
ACTIVE = "active"
REVOKED = "revoked"

CST = timezone(timedelta(hours=8), "CST")

CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
ITEM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
RECORDS_RE = re.compile(r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?\Z")
ROUTE_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/{}-]*\Z")

RESOURCE_REQUIRED = frozenset(
    {"code", "name", "provider", "system", "share_type", "route", "items"}
)
RESOURCE_OPTIONAL = frozenset({
    "summary", "conditions", "basis", "share_method", "update_cycle", "open_attr", "status",
    "version",
})
ITEM_REQUIRED = frozenset({"name", "title"})
ITEM_OPTIONAL = frozenset({"type", "level", "mask", "encrypt", "authoritative", "shareable"})
ROUTE_KEYS = frozenset({"method", "path", "records", "query", "envelope"})


def day_start(d: date) -> datetime:
    """00:00 China Standard Time of ``d``, as an aware UTC datetime."""
    return datetime.combine(d, time(0), CST).astimezone(UTC)


def day_end(d: date) -> datetime:
    """The first instant after ``d`` (inclusive last day) in China Standard Time."""
    return day_start(d + timedelta(days=1))


def cst_date(at: datetime) -> date:
    return at.astimezone(CST).date()


@dataclass(frozen=True)
class Item:
    """A data item (信息项) of a resource."""

    name: str
    title: str
    type: str = "string"
    level: int = 1
    mask: str | None = None
    encrypt: bool = False
    authoritative: bool = False  # 一数一源: the provider is the single source of this item
    shareable: bool = True  # False: withheld from every consumer, whatever the share type

    def to_entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "title": self.title}
        if self.type != "string":
            out["type"] = self.type
        out["level"] = self.level
        if self.mask:
            out["mask"] = self.mask
        if self.encrypt:
            out["encrypt"] = True
        if self.authoritative:
            out["authoritative"] = True
        if not self.shareable:
            out["shareable"] = False
        return out


@dataclass(frozen=True)
class Route:
    """Where a resource is served: method, path template (``/api/vehicles/{plate}``)
    and where the records sit in the JSON body (dotted path; empty = the body);
    ``query``: the query parameters a consumer may send (None: any but the projection,
    renaming and wrapping ones; ``catalogue.query``); ``envelope``: the keys kept
    beside the records (None: pagination counts only; ``catalogue.envelope``)."""

    method: str
    path: str
    records: str = ""
    query: tuple[str, ...] | None = None
    envelope: tuple[str, ...] | None = None

    def to_entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.records:
            out["records"] = self.records
        if self.query is not None:
            out["query"] = list(self.query)
        if self.envelope is not None:
            out["envelope"] = list(self.envelope)
        return out


@dataclass(frozen=True)
class Resource:
    """A catalogue resource (目录项)."""

    code: str
    name: str
    provider: str  # department code (提供方)
    system: str  # system code serving it
    share_type: str
    route: Route
    items: tuple[Item, ...]
    summary: str = ""
    conditions: str = ""  # 共享条件
    basis: str = ""  # legal or policy basis for conditional / none (依据)
    share_method: str = "api"
    update_cycle: str = ""
    open_attr: str = ""  # 开放属性
    status: str = DRAFT
    version: int = 1
    published_at: datetime | None = None

    @property
    def level(self) -> int:
        return max((i.level for i in self.items), default=1)

    @property
    def item_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items)

    @property
    def shareable_items(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.items if i.shareable)

    def item(self, name: str) -> Item | None:
        for i in self.items:
            if i.name == name:
                return i
        return None

    def content(self) -> dict[str, Any]:
        """What a version covers: everything but status, version and dates."""
        out = self.to_entry()
        out.pop("status", None)
        out.pop("version", None)
        return out

    def to_entry(self) -> dict[str, Any]:
        """The resource in the state-file format."""
        out: dict[str, Any] = {"code": self.code, "name": self.name}
        if self.summary:
            out["summary"] = self.summary
        out.update(provider=self.provider, system=self.system, share_type=self.share_type)
        for key in ("conditions", "basis"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.share_method != "api":
            out["share_method"] = self.share_method
        for key in ("update_cycle", "open_attr"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out["status"] = self.status
        out["version"] = self.version
        out["route"] = self.route.to_entry()
        out["items"] = [i.to_entry() for i in self.items]
        return out


@dataclass(frozen=True)
class Grant:
    """An authorisation (授权) for a consumer department, optionally one client."""

    id: int
    resource: str
    consumer: str
    items: tuple[str, ...]
    purpose: str
    until: date  # inclusive, China Standard Time
    client_id: str | None = None
    valid_from: date | None = None
    status: str = ACTIVE
    basis: str = ""
    application_id: int | None = None
    approved_by: str | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    source: str = "application"
    created_at: datetime | None = None

    def state_at(self, now: datetime) -> str:
        """active | revoked | expired | pending (not yet valid)."""
        if self.status == REVOKED:
            return REVOKED
        if now >= day_end(self.until):
            return "expired"
        if self.valid_from is not None and now < day_start(self.valid_from):
            return "pending"
        return ACTIVE

    def ends_at(self) -> datetime:
        return day_end(self.until)

    def describe(self) -> str:
        who = self.consumer + (f"/{self.client_id}" if self.client_id else "")
        return f"grant {self.id} ({self.resource} to {who}, purpose {self.purpose})"

    def key(self) -> tuple[str, str, str, str]:
        """The identity of a state-file grant."""
        return (self.resource, self.consumer, self.client_id or "", self.purpose)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "resource": self.resource, "consumer": self.consumer,
            "client": self.client_id, "items": list(self.items), "purpose": self.purpose,
            "from": self.valid_from.isoformat() if self.valid_from else None,
            "until": self.until.isoformat(), "status": self.status, "basis": self.basis,
            "application": self.application_id, "approved_by": self.approved_by,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_by": self.revoked_by, "revoke_reason": self.revoke_reason,
            "source": self.source,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


# the steps of an application's timeline (catalogue_application_events.kind)
EVENT_SUBMITTED = "submitted"
EVENT_APPROVED = "approved"
EVENT_REJECTED = "rejected"
EVENT_ESCALATED = "escalated"  # to the security admin (协商), by the consumer
EVENT_REFERRED = "referred"  # to the provider's department head: by the steward, or overdue
EVENT_CLOSED = "closed"
EVENT_REVOKED = "revoked"  # the grant the approval created
EVENT_KINDS = (EVENT_SUBMITTED, EVENT_APPROVED, EVENT_REJECTED, EVENT_ESCALATED,
               EVENT_REFERRED, EVENT_CLOSED, EVENT_REVOKED)


@dataclass(frozen=True)
class ApplicationEvent:
    """One step of an application's timeline: who did what when, and why. ``detail``
    holds what the step decided: the items granted and removed and the period of an
    approval, the grant, ``overdue`` for a referral the gateway made itself."""

    at: datetime
    kind: str
    status: str  # the application's status after the step
    actor: str
    actor_department: str | None = None
    reason: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.detail, "at": self.at.isoformat(), "kind": self.kind,
                "status": self.status, "by": self.actor, "department": self.actor_department,
                "reason": self.reason}


@dataclass(frozen=True)
class Application:
    """An access application (共享申请); ``history`` is its timeline, oldest first."""

    id: int
    resource: str
    consumer: str
    applicant: str
    items: tuple[str, ...]
    purpose: str
    until: date
    status: str
    due_at: datetime
    created_at: datetime
    client_id: str | None = None
    valid_from: date | None = None
    basis: str = ""
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    grant_id: int | None = None
    history: tuple[ApplicationEvent, ...] = field(default_factory=tuple)
    head_escalated_at: datetime | None = None

    def overdue_at(self, now: datetime) -> bool:
        return self.status in OPEN_STATES and now >= self.due_at

    def reasons(self) -> list[ApplicationEvent]:
        """The steps that gave a reason (rejected, escalated, referred, closed, revoked)."""
        return [e for e in self.history if e.reason and e.kind != EVENT_APPROVED]

    def approval(self) -> ApplicationEvent | None:
        return next((e for e in self.history if e.kind == EVENT_APPROVED), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "resource": self.resource, "consumer": self.consumer,
            "client": self.client_id, "applicant": self.applicant, "items": list(self.items),
            "purpose": self.purpose, "basis": self.basis,
            "from": self.valid_from.isoformat() if self.valid_from else None,
            "until": self.until.isoformat(), "status": self.status,
            "due_at": self.due_at.isoformat(), "created_at": self.created_at.isoformat(),
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason": self.reason, "grant": self.grant_id,
            "head_escalated_at": self.head_escalated_at.isoformat()
            if self.head_escalated_at else None,
            "history": [e.to_dict() for e in self.history],
        }


NOTICE_PENDING = "pending"
NOTICE_SENT = "sent"
NOTICE_ABANDONED = "abandoned"


@dataclass(frozen=True)
class Notice:
    """A referral's notice to deliver on one channel (the gateway's: webhook, email)."""

    id: int
    event_id: int
    application_id: int
    channel: str
    attempts: int
    created_at: datetime


# ---------------------------------------------------------------------------
# validation (pure)


def parse_date(value: Any) -> date | None:
    """A date from a YAML date, or an ISO ``YYYY-MM-DD`` string; None otherwise."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _short(value: Any, keep: int = 80) -> Any:
    """``value`` cut for a message: a problem never echoes megabytes."""
    return value[:keep] + "…" if isinstance(value, str) and len(value) > keep else value


def _bool(value: Any, default: bool) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return None


def resource_problems(entry: Any) -> list[str]:
    """Every problem in one resource entry (state-file format), without its place."""
    if not isinstance(entry, Mapping):
        return [Text("field.mapping", "must be a mapping")]
    problems: list[str] = []
    for key in sorted(set(entry) - RESOURCE_REQUIRED - RESOURCE_OPTIONAL):
        problems.append(Text("field.unknown_key", "unknown key {key!r}", key=key))
    for key in sorted(RESOURCE_REQUIRED - set(entry)):
        problems.append(Text("field.missing_key", "missing key {key!r}", key=key))
    code = entry.get("code")
    if code is not None and not CODE_RE.match(str(code)):
        problems.append(Text("field.bad_code", "bad code {code!r}", code=_short(code)))
    if "name" in entry and (not isinstance(entry["name"], str) or not entry["name"].strip()):
        problems.append(Text("field.non_empty", "{field} must be a non-empty string",
                             field="name"))
    share = entry.get("share_type")
    if share is not None and share not in SHARE_TYPES:
        problems.append(Text("field.one_of_got", "{field} must be one of {known} (got {value!r})",
                             field="share_type", known=", ".join(SHARE_TYPES), value=share))
    if share == CONDITIONAL and not (entry.get("conditions") or entry.get("basis")):
        problems.append(Text("cat.conditions",
                             "a conditional resource needs its conditions (共享条件)"))
    if share == NONE and not (entry.get("basis") or entry.get("conditions")):
        problems.append(Text("cat.basis",
                             "a resource not shared (none) needs its basis (不予共享依据)"))
    for key in ("summary", "conditions", "basis", "update_cycle", "open_attr"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            problems.append(Text("field.string", "{field} must be a string", field=key))
    problems += length_problems(entry, ("name", "summary", "conditions", "basis",
                                        "update_cycle", "open_attr"))
    if entry.get("share_method", "api") not in SHARE_METHODS:
        problems.append(Text("field.one_of", "{field} must be one of {known}",
                             field="share_method", known=", ".join(SHARE_METHODS)))
    if entry.get("status", PUBLISHED) not in STATUSES:
        problems.append(Text("field.one_of", "{field} must be one of {known}",
                             field="status", known=", ".join(STATUSES)))
    if "version" in entry and (
        isinstance(entry["version"], bool) or not isinstance(entry["version"], int)
    ):
        problems.append(Text("field.integer", "{field} must be an integer", field="version"))
    # a key given as null is as wrong as any other value that is not a route or a list
    if "route" in entry:
        problems.extend(route_problems(entry["route"]))
    items = entry.get("items")
    if "items" in entry:
        if not isinstance(items, list) or not items:
            problems.append(Text("field.non_empty_list", "{field} must be a non-empty list",
                                 field="items"))
        else:
            seen: dict[str, int] = {}
            for k, item in enumerate(items):
                for p in item_problems(item):
                    problems.append(where(f"items[{k}]", p))
                if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                    if item["name"] in seen:
                        problems.append(where(f"items[{k}]", Text(
                            "cat.duplicate_item", "duplicate item {name!r} (first at {first})",
                            name=item["name"], first=f"items[{seen[item['name']]}]")))
                    else:
                        seen[item["name"]] = k
    return problems


def route_problems(route: Any) -> list[str]:
    if not isinstance(route, Mapping):
        return [Text("cat.route_mapping", "route must be a mapping with method, path and records")]
    problems: list[str] = [where("route", Text("field.unknown_key", "unknown key {key!r}", key=k))
                          for k in sorted(set(route) - ROUTE_KEYS)]
    method = route.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        problems.append(where("route", Text("field.one_of", "{field} must be one of {known}",
                                            field="method", known=", ".join(METHODS))))
    path = route.get("path")
    long = length_problems(route, ("path", "records"))
    problems += [where("route", p) for p in long]
    if long:
        return problems
    if not isinstance(path, str) or not ROUTE_RE.match(path):
        problems.append(where("route", Text(
            "cat.route_path", "path must be a path starting with / (templates like {{plate}})")))
    else:
        from catalogue.routes import template_problems

        problems.extend(where("route", p) for p in template_problems(path))
    records = route.get("records", "")
    if records is None:
        records = ""
    if not isinstance(records, str) or not RECORDS_RE.match(records):
        problems.append(where("route", Text(
            "cat.route_records", "records must be a dotted key path like items or data.items")))
    problems += [where("route", p) for p in names_problems(route.get("query"))]
    problems += [where("route", p) for p in keys_problems(
        route.get("envelope"), records if isinstance(records, str) else "")]
    return problems


def item_problems(item: Any) -> list[str]:
    if not isinstance(item, Mapping):
        return [Text("field.mapping", "must be a mapping")]
    problems: list[str] = [Text("field.unknown_key", "unknown key {key!r}", key=k)
                          for k in sorted(set(item) - ITEM_REQUIRED - ITEM_OPTIONAL)]
    problems += [Text("field.missing_key", "missing key {key!r}", key=k)
                 for k in sorted(ITEM_REQUIRED - set(item))]
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or not ITEM_RE.match(name)):
        problems.append(Text("cat.item_name", "bad item name {name!r} (letters, digits and _)",
                             name=_short(name)))
    if "title" in item and (not isinstance(item["title"], str) or not item["title"].strip()):
        problems.append(Text("field.non_empty", "{field} must be a non-empty string",
                             field="title"))
    problems += length_problems(item, ("title",))
    if item.get("type", "string") not in ITEM_TYPES:
        problems.append(Text("field.one_of", "{field} must be one of {known}",
                             field="type", known=", ".join(ITEM_TYPES)))
    level = item.get("level", 1)
    if isinstance(level, bool) or level not in LEVELS:
        problems.append(Text("cat.level", "level must be 1, 2, 3 or 4 (一般 … 核心)"))
    mask = item.get("mask")
    if mask is not None and mask not in MASKS:
        problems.append(Text("field.one_of_got", "{field} must be one of {known} (got {value!r})",
                             field="mask", known=", ".join(MASKS), value=mask))
    for key in ("encrypt", "authoritative", "shareable"):
        if key in item and not isinstance(item[key], bool):
            problems.append(Text("field.bool", "{field} must be true or false", field=key))
    return problems


def resource_from_entry(entry: Mapping[str, Any], *, status: str | None = None) -> Resource:
    """A Resource from a valid entry (check ``resource_problems`` first)."""
    route = entry["route"]
    items = tuple(
        Item(
            name=str(i["name"]),
            title=str(i["title"]),
            type=str(i.get("type", "string")),
            level=int(i.get("level", 1)),
            mask=i.get("mask"),
            encrypt=bool(_bool(i.get("encrypt"), False)),
            authoritative=bool(_bool(i.get("authoritative"), False)),
            shareable=bool(_bool(i.get("shareable"), True)),
        )
        for i in entry["items"]
    )
    return Resource(
        code=str(entry["code"]),
        name=str(entry["name"]).strip(),
        provider=str(entry["provider"]),
        system=str(entry["system"]),
        share_type=str(entry["share_type"]),
        route=Route(
            method=str(route.get("method", "GET")).upper(),
            path=str(route["path"]),
            records=str(route.get("records") or ""),
            query=None if route.get("query") is None else tuple(route["query"]),
            envelope=None if route.get("envelope") is None else tuple(route["envelope"]),
        ),
        items=items,
        summary=str(entry.get("summary") or ""),
        conditions=str(entry.get("conditions") or ""),
        basis=str(entry.get("basis") or ""),
        share_method=str(entry.get("share_method", "api")),
        update_cycle=str(entry.get("update_cycle") or ""),
        open_attr=str(entry.get("open_attr") or ""),
        status=status or str(entry.get("status", PUBLISHED)),
        version=int(entry.get("version", 1)),
    )


def requested_item_problems(resource: Resource, names: list[str]) -> list[str]:
    """What is wrong with the items an application or a grant names: a name the
    resource does not have is told apart from an item it withholds (``shareable:
    false``), and the names it shares are listed, so the applicant sees what to ask
    for instead of reading a typo as a refusal."""
    problems: list[str] = []
    unknown = [n for n in names if n not in resource.item_names]
    if unknown:
        problems.append(Text("cat.no_such_items",
                             "{code} has no item {names} (its shared items: {shared})",
                             code=resource.code, names=", ".join(unknown),
                             shared=", ".join(resource.shareable_items) or "-"))
    withheld = [n for n in names if n in resource.item_names
                and n not in resource.shareable_items]
    if withheld:
        problems.append(Text("cat.not_shareable", "items not shareable in {code}: {names}",
                             code=resource.code, names=", ".join(withheld)))
    return problems
