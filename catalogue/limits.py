"""How long the catalogue's free text may be: one table, one check.

Every way in goes through these: the API (``POST /api/v1/catalogue/...``), the
portal's forms, ``govgate catalogue`` (import, apply-for, approve, reject, ...)
and the state file's ``catalogue:`` and ``grants:`` sections. Lengths are in
characters (a Chinese character counts one), checked on the value as given. The
table is documented in docs/catalogue.md.

    field              max   where
    name               200   resource name (资源名称)
    summary           2000   resource summary (摘要)
    conditions        2000   sharing conditions (共享条件)
    basis             2000   legal basis of a resource, an application or a grant (依据)
    update_cycle        64   update cycle (更新周期)
    open_attr          200   open attribute (开放属性)
    title              200   data item title (信息项名称)
    path               500   route path template
    records            200   where the records sit in the response (dotted path)
    purpose            500   purpose of an application or a grant (用途)
    note              2000   approval note (审批意见)
    reason            2000   reason to reject, escalate, close or revoke
    client             128   client id named by an application
    item                64   a data item name in an application or approval
"""

from __future__ import annotations

from typing import Any

from texts import Text

MAX_LENGTH: dict[str, int] = {
    "name": 200,
    "summary": 2000,
    "conditions": 2000,
    "basis": 2000,
    "update_cycle": 64,
    "open_attr": 200,
    "title": 200,
    "path": 500,
    "records": 200,
    "purpose": 500,
    "note": 2000,
    "reason": 2000,
    "client": 128,
    "item": 64,
}


def too_long(field: str, value: Any, maximum: int | None = None) -> str | None:
    """The problem with ``value`` as ``field`` if it is text longer than its maximum
    (``maximum``, or the table's), else None. Not text is another check's business."""
    limit = MAX_LENGTH[field] if maximum is None else maximum
    if isinstance(value, str) and len(value) > limit:
        if field == "purpose":  # 用途, not the field's name, in Chinese
            return Text("cat.purpose_long", "purpose longer than {n} characters", n=limit)
        return Text("field.too_long", "{field} longer than {n} characters", field=field, n=limit)
    return None


def length_problems(values: dict[str, Any] | Any, fields: tuple[str, ...]) -> list[str]:
    """``too_long`` for each of ``fields`` present in the mapping ``values``."""
    if not hasattr(values, "get"):
        return []
    return [p for f in fields if (p := too_long(f, values.get(f))) is not None]
