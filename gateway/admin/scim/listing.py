"""What a query asks for (RFC 7644 section 3.4.2): startIndex and count (section
3.4.2.4), sortBy/sortOrder (3.4.2.3), attributes/excludedAttributes (3.4.2.5), and the
projection of one resource onto them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.admin.scim.errors import ScimError, invalid_value
from gateway.admin.scim.schema import MAX_RESULTS

# never dropped by ``attributes`` (returned: always)
ALWAYS = frozenset({"schemas", "id"})


@dataclass(frozen=True)
class Query:
    filter: str | None = None
    start: int = 1
    count: int = MAX_RESULTS
    sort_by: str | None = None
    descending: bool = False
    attributes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: 1e999 (infinity)
        raise invalid_value(f"{name} must be an integer") from None


def _names(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, list):
        raw = ",".join(str(x) for x in raw)
    if not isinstance(raw, str):
        raise invalid_value("attributes are a comma-separated list")
    return tuple(n.strip() for n in raw.split(",") if n.strip())


# past any directory's size (the page is empty), within the database's 64-bit OFFSET
MAX_START = 2**31


def user_key(value: str) -> int | None:
    """A user's SCIM id as the ``users.id`` it is, or None (not one: ASCII digits that
    fit the column, so "١٤" or twenty digits are no user rather than a 500)."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


def parse_query(params: Mapping[str, Any]) -> Query:
    """From a query string or a SearchRequest body (the same names)."""
    order = str(params.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise invalid_value("sortOrder is ascending or descending")
    filter_ = params.get("filter")
    if filter_ is not None and not isinstance(filter_, str):
        raise ScimError(400, "filter must be a string", "invalidFilter")
    sort_by = params.get("sortBy")
    return Query(
        filter=filter_ or None,
        # RFC 7644 3.4.2.4: below 1 reads as 1; a negative count as 0; above the maximum
        # as the maximum
        start=min(MAX_START, max(1, _int(params, "startIndex", 1))),
        count=min(MAX_RESULTS, max(0, _int(params, "count", MAX_RESULTS))),
        sort_by=str(sort_by) if sort_by else None,
        descending=order == "descending",
        attributes=_names(params.get("attributes")),
        excluded=_names(params.get("excludedAttributes")),
    )


def _split(name: str, extensions: tuple[str, ...]) -> tuple[str | None, str, str | None]:
    """(extension or None, attribute, sub-attribute), all lower-case."""
    lowered = name.lower()
    for ext in extensions:
        if lowered.startswith(ext.lower() + ":"):
            rest = lowered[len(ext) + 1:]
            attr, _, sub = rest.partition(".")
            return ext, attr, sub or None
        if lowered == ext.lower():
            return ext, "", None
    for core in ("urn:ietf:params:scim:schemas:core:2.0:user:",
                 "urn:ietf:params:scim:schemas:core:2.0:group:"):
        if lowered.startswith(core):
            lowered = lowered[len(core):]
    attr, _, sub = lowered.partition(".")
    return None, attr, sub or None


def _find(obj: Mapping[str, Any], name: str) -> str | None:
    for key in obj:
        if key.lower() == name:
            return key
    return None


def project(resource: dict[str, Any], query: Query,
            extensions: tuple[str, ...] = ()) -> dict[str, Any]:
    """``resource`` cut to ``attributes`` (plus id and schemas) or without
    ``excludedAttributes``."""
    if query.attributes:
        out: dict[str, Any] = {k: v for k, v in resource.items() if k in ALWAYS}
        for name in query.attributes:
            ext, attr, sub = _split(name, extensions)
            source: Any = resource
            target = out
            if ext is not None:
                if ext not in resource:
                    continue
                source = resource[ext]
                if not attr:
                    out[ext] = source
                    continue
                target = out.setdefault(ext, {})
            key = _find(source, attr)
            if key is None:
                continue
            value = source[key]
            if sub is None or not isinstance(value, dict | list):
                target[key] = value
            elif isinstance(value, dict):
                subkey = _find(value, sub)
                if subkey is not None:
                    target.setdefault(key, {})[subkey] = value[subkey]
            else:
                target[key] = [{k: v for k, v in item.items() if k.lower() == sub}
                               for item in value]
        return out
    out = dict(resource)
    for name in query.excluded:
        ext, attr, sub = _split(name, extensions)
        holder: Any = out if ext is None else out.get(ext)
        if not isinstance(holder, dict):
            continue
        if ext is not None and holder is not out:
            holder = out[ext] = dict(holder)
        key = _find(holder, attr)
        if key is None or key in ALWAYS:
            continue
        if sub is None:
            del holder[key]
        elif isinstance(holder[key], dict):
            holder[key] = {k: v for k, v in holder[key].items() if k.lower() != sub}
        elif isinstance(holder[key], list):
            holder[key] = [{k: v for k, v in item.items() if k.lower() != sub}
                           for item in holder[key]]
    return out


def check_version(resource: dict[str, Any], if_match: str | None) -> None:
    """RFC 7644 section 3.14: a write with ``If-Match`` names the version it read."""
    if if_match and if_match.strip() != "*" and resource["meta"]["version"] not in [
            v.strip() for v in if_match.split(",")]:
        raise ScimError(412, "the resource changed since that version was read")
