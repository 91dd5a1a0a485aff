"""How long the organisation's free text may be: regions, departments, users,
systems and clients, from the state file and from ``govgate user|dept|client``.
The catalogue's own table is ``catalogue.limits``; both give the one message
``{field} longer than {n} characters``. Documented in docs/state-file.md.

    field                      max   (the database column)
    name                       200   every name (区域、部门、用户姓名、系统、客户端名称)
    scope                      500   a client's scopes
    upstream                   500   a system's upstream URL
    portal_path                500   a system's portal path
    backchannel_logout_uri     500
    redirect_uri               500   each of a client's redirect_uris
    post_logout_redirect_uri   500   each of a client's post_logout_redirect_uris
"""

from __future__ import annotations

import unicodedata
from typing import Any

from catalogue.limits import too_long

MAX_LENGTH: dict[str, int] = {
    "name": 200,
    "scope": 500,
    "upstream": 500,
    "portal_path": 500,
    "backchannel_logout_uri": 500,
    "redirect_uri": 500,
    "post_logout_redirect_uri": 500,
}


def org_too_long(field: str, value: Any) -> str | None:
    """The problem with the text ``value`` as ``field`` if it is too long, else None."""
    return too_long(field, value, MAX_LENGTH[field])


def unstorable(value: Any) -> bool:
    """True when some string in ``value`` (keys included) holds a NUL (PostgreSQL
    stores none) or cannot be encoded as UTF-8 (a lone surrogate from a ``\\ud800``
    escape in JSON, which no database driver writes)."""
    if isinstance(value, str):
        if "\x00" in value:
            return True
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False


# the bidirectional embeddings, overrides and isolates: text that reads as another name
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character(value: str) -> str | None:
    """The first control character of ``value`` (C0, DEL, C1, a bidirectional
    override), or None. A person's name or address with one rewrites a terminal or
    reverses what a console shows; the identity sources' input is refused with it."""
    for char in value:
        if char in _BIDI or unicodedata.category(char) == "Cc":
            return char
    return None
