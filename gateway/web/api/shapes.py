"""JSON Schemas the API's declarations share (``gateway.web.api.operation``): the
catalogue's objects as the API writes them, and the small pieces (codes, dates, free
text within ``catalogue.limits``) its bodies and parameters are made of. Written from
the code that produces or checks each value, which the comments name."""

from __future__ import annotations

from typing import Any

from catalogue.envelope import MAX_KEY, MAX_KEYS
from catalogue.limits import MAX_LENGTH
from catalogue.model import (
    APPLICATION_STATES,
    ITEM_TYPES,
    LEVELS,
    MASKS,
    METHODS,
    SHARE_METHODS,
    SHARE_TYPES,
    STATUSES,
)
from catalogue.query import MAX_NAMES
from gateway.web.api.schema_check import JSON, NOT_BLANK

# -- pieces ----------------------------------------------------------------------------

TEXT: JSON = {"type": "string"}
NULLABLE_TEXT: JSON = {"type": ["string", "null"]}
INT: JSON = {"type": "integer"}
BOOL: JSON = {"type": "boolean"}
DATE: JSON = {"type": "string", "format": "date"}
NULLABLE_DATE: JSON = {"type": ["string", "null"], "format": "date"}
TIME: JSON = {"type": "string", "format": "date-time"}
NULLABLE_TIME: JSON = {"type": ["string", "null"], "format": "date-time"}
#: a row's number: the catalogue's and the policies' ids are INTEGER columns (32 bits on
#: PostgreSQL, which refuses a larger number in a query rather than finding nothing)
ID: JSON = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
#: catalogue.model.CODE_RE: resources, departments, systems
CODE: JSON = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
#: catalogue.model.ITEM_RE
ITEM: JSON = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"}
#: an item named in an application or approval (catalogue.limits: "item")
ITEM_NAME: JSON = {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH["item"]}
FREE: JSON = {"type": "object"}


def text_of(field: str, *, required: bool = False) -> JSON:
    """Free text no longer than ``catalogue.limits.MAX_LENGTH[field]``; ``required``:
    not blank (a character other than a space)."""
    out: JSON = {"type": "string", "maxLength": MAX_LENGTH[field]}
    if required:
        out["pattern"] = NOT_BLANK
    return out


def obj(properties: dict[str, JSON], required: tuple[str, ...] | list[str] = (),
        *, closed: bool = False, **more: Any) -> JSON:
    out: JSON = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    out.update(more)
    return out


def array(items: JSON, **more: Any) -> JSON:
    return {"type": "array", "items": items, **more}


def wrapped(name: str, schema: JSON) -> JSON:
    """``{name: schema}``: how most answers carry their object."""
    return obj({name: schema}, [name])


# -- the catalogue's objects -------------------------------------------------------------

#: catalogue.model.Item.to_entry, and what item_problems accepts
ITEM_ENTRY: JSON = obj({
    "name": ITEM,
    "title": text_of("title", required=True),
    "type": {"enum": list(ITEM_TYPES)},
    "level": {"enum": list(LEVELS)},
    "mask": {"enum": list(MASKS)},
    "encrypt": BOOL, "authoritative": BOOL, "shareable": BOOL,
}, ["name", "title"], closed=True)

#: catalogue.model.Route.to_entry, route_problems
ROUTE_ENTRY: JSON = obj({
    "method": {"type": "string", "enum": list(METHODS)},
    "path": {"type": "string", "maxLength": MAX_LENGTH["path"], "pattern": "^/"},
    "records": {"type": ["string", "null"], "maxLength": MAX_LENGTH["records"],
                "pattern": r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)?$"},
    # catalogue.query.names_problems (NAME_RE; names compared without letter case)
    "query": {"type": ["array", "null"], "maxItems": MAX_NAMES, "uniqueItems": True,
              "items": {"type": "string", "pattern": r"^[A-Za-z0-9_$][A-Za-z0-9_.$-]{0,63}$"}},
    # catalogue.envelope.keys_problems (KEY_RE; compared exactly)
    "envelope": {"type": ["array", "null"], "maxItems": MAX_KEYS, "uniqueItems": True,
                 "items": {"type": "string", "maxLength": MAX_KEY,
                           "pattern": r"^[A-Za-z0-9_$][A-Za-z0-9_$-]*"
                                      r"(\.[A-Za-z0-9_$][A-Za-z0-9_$-]*)*$"}},
}, ["path"], closed=True)

#: catalogue.model.Resource.to_entry, resource_problems (the state file's format)
RESOURCE_ENTRY: JSON = obj({
    "code": CODE,
    "name": text_of("name", required=True),
    "summary": text_of("summary"),
    "provider": CODE,
    "system": CODE,
    "share_type": {"enum": list(SHARE_TYPES)},
    "conditions": text_of("conditions"),
    "basis": text_of("basis"),
    "share_method": {"enum": list(SHARE_METHODS)},
    "update_cycle": text_of("update_cycle"),
    "open_attr": text_of("open_attr"),
    "status": {"enum": list(STATUSES)},
    "version": {"type": "integer", "minimum": 1},
    "route": ROUTE_ENTRY,
    "items": array(ITEM_ENTRY, minItems=1),
}, ["code", "name", "provider", "system", "share_type", "route", "items"], closed=True)

#: catalogue.model.ApplicationEvent.to_dict (the step's detail merged in)
EVENT: JSON = obj({"at": TIME, "kind": TEXT, "status": TEXT, "by": TEXT,
                   "department": NULLABLE_TEXT, "reason": NULLABLE_TEXT},
                  ["at", "kind", "status", "by"])

#: catalogue.model.Application.to_dict
APPLICATION: JSON = obj({
    "id": INT, "resource": TEXT, "consumer": TEXT, "client": NULLABLE_TEXT,
    "applicant": TEXT, "items": array(TEXT), "purpose": TEXT, "basis": TEXT,
    "from": NULLABLE_DATE, "until": DATE, "status": {"enum": list(APPLICATION_STATES)},
    "due_at": TIME, "created_at": TIME, "decided_by": NULLABLE_TEXT,
    "decided_at": NULLABLE_TIME, "reason": NULLABLE_TEXT, "grant": {"type": ["integer", "null"]},
    "head_escalated_at": NULLABLE_TIME, "history": array(EVENT),
}, ["id", "resource", "consumer", "applicant", "items", "purpose", "until", "status",
    "due_at", "created_at", "history"])

#: catalogue.model.Grant.to_dict
GRANT: JSON = obj({
    "id": INT, "resource": TEXT, "consumer": TEXT, "client": NULLABLE_TEXT,
    "items": array(TEXT), "purpose": TEXT, "from": NULLABLE_DATE, "until": DATE,
    "status": TEXT, "basis": TEXT, "application": {"type": ["integer", "null"]},
    "approved_by": NULLABLE_TEXT, "revoked_at": NULLABLE_TIME, "revoked_by": NULLABLE_TEXT,
    "revoke_reason": NULLABLE_TEXT, "source": TEXT, "created_at": NULLABLE_TIME,
}, ["id", "resource", "consumer", "items", "purpose", "until", "status"])

#: a grant with its state now ("active", "expired", "revoked", "pending")
GRANT_NOW: JSON = {**GRANT, "properties": {**GRANT["properties"], "state": TEXT},
                   "required": [*GRANT["required"], "state"]}

#: gateway.steward_views.Usage.to_dict
# calls: delivered (answered below 400); not_delivered: let through, answered 400 or
# more; unconfirmed: let through, the answer not seen (forward-auth)
USAGE: JSON = obj({"calls": INT, "last_used": NULLABLE_TIME, "not_delivered": INT,
                   "unconfirmed": INT}, ["calls", "last_used", "not_delivered", "unconfirmed"])

#: gateway.steward_views.InboxEntry.to_dict
INBOX_ENTRY: JSON = {**APPLICATION, "properties": {
    **APPLICATION["properties"],
    "deadline": obj({"due_at": TIME, "overdue": BOOL, "working_days_left": INT,
                     "working_days_overdue": INT},
                    ["due_at", "overdue", "working_days_left", "working_days_overdue"]),
    "referred": BOOL}, "required": [*APPLICATION["required"], "deadline", "referred"]}

#: what the resource and warnings answers of save and publish carry
RESOURCE_SAVED: JSON = obj({"resource": RESOURCE_ENTRY, "warnings": array(TEXT)},
                           ["resource", "warnings"])

#: a reason (reject, escalate, close, refer, revoke): catalogue.workflow._reason
REASON_BODY: JSON = obj({"reason": text_of("reason", required=True)}, ["reason"],
                        closed=True)
