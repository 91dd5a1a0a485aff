"""Search the catalogue: keyword, department, share type, item name, level. Pure."""

from __future__ import annotations

from collections.abc import Iterable

from catalogue.model import Resource


def search(
    resources: Iterable[Resource],
    *,
    q: str | None = None,
    department: str | None = None,
    share_type: str | None = None,
    item: str | None = None,
    level: int | None = None,
    status: str | None = None,
) -> list[Resource]:
    """Resources matching every given filter.

    ``q`` matches (case-insensitively) the code, name, summary, conditions and the
    names and titles of items; ``item`` part of an item's name or title (case-insensitive:
    "身份证" finds 驾驶员身份证号, "phone" driver_phone); ``level``
    resources holding an item of that level; ``department`` the provider.
    """
    needle = q.strip().lower() if q else ""
    part = item.strip().lower() if item else ""
    out = []
    for r in resources:
        if department and r.provider != department:
            continue
        if share_type and r.share_type != share_type:
            continue
        if status and r.status != status:
            continue
        if part and not any(part in i.name.lower() or part in i.title.lower()
                            for i in r.items):
            continue
        if level is not None and not any(i.level == level for i in r.items):
            continue
        if needle:
            hay = [r.code, r.name, r.summary, r.conditions]
            hay += [i.name for i in r.items] + [i.title for i in r.items]
            if not any(needle in h.lower() for h in hay):
                continue
        out.append(r)
    return out
