"""The keys kept beside the records of a governed answer (a route's ``envelope:``).

The proxy cuts the records to the granted items, but an upstream's envelope around
them is the upstream's to fill: ``{"items": [...], "first_driver": "4501...",
"note": "王五 13800138000"}`` would hand the consumer an ID number and a phone number
nobody granted. So the envelope keeps (``catalogue.shaping``):

    envelope unset     counts under the names of pagination only (``total``,
                       ``page``, ``has_more``: ``catalogue.pagination``): no string, no
                       other number, no object or array off the records' path
    envelope: [a, b]   only these keys, each holding any JSON scalar; a dotted path
                       (``page.next``) names a key inside an envelope object
    either way         never a key naming an item (``outside_records``)

Keys are compared exactly, as JSON spells them: a listed ``next`` keeps ``next``,
not ``Next``. Every dropped key is named in the audit record.
"""

from __future__ import annotations

import re
from typing import Any

from texts import Text, where

# a dotted path of JSON keys: letters, digits and ``_ - $`` (not starting with ``-``)
KEY_RE = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$-]*(\.[A-Za-z0-9_$][A-Za-z0-9_$-]*)*\Z")
MAX_KEY = 200  # characters, as a route's ``records`` path
MAX_KEYS = 50
MAX_SHOWN = 80  # of a key, in a problem and the audit record
MAX_NAMED = 20  # dropped keys named in one audit record; the rest are counted


def keys_problems(value: Any, records: str = "") -> list[str]:
    """Problems of a route's ``envelope`` (None: unset, no problem); ``records`` is the
    route's records path: a listed key cannot be it, lead to it or sit inside it."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [Text("cat.envelope_list", "envelope must be a list of key names")]
    problems: list[str] = []
    if len(value) > MAX_KEYS:
        problems.append(Text("cat.envelope_many", "envelope names more than {n} keys",
                             n=MAX_KEYS))
    seen: dict[str, int] = {}
    for k, key in enumerate(value[:MAX_KEYS + 1]):
        if not isinstance(key, str) or len(key) > MAX_KEY or not KEY_RE.match(key):
            problems.append(where(f"envelope[{k}]", Text(
                "cat.envelope_key", "bad key {key!r} (a dotted path of letters, digits and "
                "_ - $, at most {n})", key=key[:MAX_SHOWN] if isinstance(key, str) else key,
                n=MAX_KEY)))
            continue
        if key in seen:
            problems.append(where(f"envelope[{k}]", Text(
                "cat.envelope_twice", "key {key!r} listed twice (first at {first})",
                key=key, first=f"envelope[{seen[key]}]")))
            continue
        seen[key] = k
        if records and (key == records or f"{records}.".startswith(f"{key}.")
                        or key.startswith(f"{records}.")):
            problems.append(where(f"envelope[{k}]", Text(
                "cat.envelope_records", "key {key!r} is on the records' path {records!r}: "
                "the records are shaped item by item", key=key, records=records)))
    return problems


def bounded(names: list[str]) -> tuple[list[str], int]:
    """The first :data:`MAX_NAMED` of ``names`` (each cut to :data:`MAX_SHOWN`) and how
    many more there are: an upstream's envelope may hold any number of keys."""
    return [n[:MAX_SHOWN] for n in names[:MAX_NAMED]], max(0, len(names) - MAX_NAMED)
