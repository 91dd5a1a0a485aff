"""jQuery DataTables' server-side parameters, read as one table.

With ``serverSide: true`` DataTables (1.10 and 2.x, by default) sends, as a query
string or a form body::

    draw=1&columns[0][data]=plate_number&columns[0][name]=&columns[0][searchable]=true
    &columns[0][orderable]=true&columns[0][search][value]=&columns[0][search][regex]=false
    ...&order[0][column]=0&order[0][dir]=asc&order[0][name]=&start=0&length=10
    &search[value]=&search[regex]=false&_=1733400000000

Every ``columns[i][data]`` is a column of the consumer's table and is read for items'
names as any value (``catalogue.request_names``): a table configured with a column for
a cut item is refused. Two parameters point at a column by its position instead:

- ``columns[i][search][value]``, the column's own filter: a free-text search by its
  name (``catalogue.free_text``), but it filters by one column, the request's
  ``columns[i]``. When that column is named by a word (its ``data``, and its ``name``
  when sent), the filter is structured, by a name that was read for items, and passes
  (:attr:`Table.filters`); otherwise it stays a free-text search.
- ``order[j][column]=i`` orders by ``columns[i]``. When the request names no such
  column by a word (not sent, an empty ``data`` as for a ``data: null`` column, a bare
  number as for array rows), the servers fall back to a column list of their own
  (DataTables' ``ssp.class.php`` reads a missing ``data`` as its column 0; hand-written
  servers index their own array): an ordering by a column no name in the request
  shows, refused (:attr:`Table.refusal`). The position is read as PHP's ``intval``
  reads it (``5.0`` is 5; ``abc`` and ``-1`` fall to column 0).

A column for an item the caller is given only masked (``driver_name``, shown ``李**``)
may stand in the table: DataTables sends every column, and showing it queries nothing.
Its ``columns[i][data]`` and ``columns[i][name]`` pass (:attr:`Table.shown`) when
nothing orders or filters by it: no ordering points at it, its own filter is empty, and
the search box (in any spelling) is empty or the column says ``searchable=false``.

The global ``search[value]`` stays a free-text search (refused unless the route lists
``search`` for a caller with items withheld): whether an upstream's global search
keeps to the request's searchable columns is the upstream's own reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from catalogue.pairs import Pairs
from catalogue.param_path import name_path
from catalogue.refusal import MAX_SHOWN, Refusal
from catalogue.routes import fold
from texts import Text

_MARK = re.compile(r"columns|order", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_SPLIT = re.compile(r"[&;]")
FUNCTION = "function"  # DataTables' ``data`` of a column rendered by a function


@dataclass(frozen=True)
class Table:
    """What a request's DataTables parameters say beyond their names and values."""

    filters: frozenset[str]  # raw ``columns[i][search][value]=…`` of named columns
    refusal: Refusal | None  # an ordering by a column the request does not name
    # raw ``columns[i][data]=…`` and ``columns[i][name]=…`` of columns nothing orders or
    # filters by: shown only (a masked item's column may stand there)
    shown: frozenset[str] = frozenset()


def _named(value: str | None) -> bool:
    return value is not None and bool(_LETTER.search(value)) and (
        fold(value).strip() != FUNCTION)


def read(text: str) -> Table | None:
    """The table of a query string or form body ``text``, or None when it has no
    DataTables column or ordering parameter."""
    if _MARK.search(text if text.isascii() else fold(unquote_plus(text))) is None:
        return None
    entries = []
    for part in _SPLIT.split(text):
        raw, _, value = part.partition("=")
        entries.append((name_path(fold(unquote_plus(raw)).split("\x00", 1)[0].strip()),
                        unquote_plus(value), part, raw))
    return _table(entries)


def read_json(doc: Any) -> Table | None:
    """The table of a JSON body (``ajax.submitAs: 'json'`` in 2.x, ``JSON.stringify(d)``
    in ``ajax.data``): the same parameters as members (``{"columns": [{"data": ...,
    "search": {"value": ...}}], "order": [{"column": 0}], "search": {...}}``), each
    known by where ``catalogue.request_names.json_refusal`` says it stands
    (``columns[0].search.value``); or None when the body has no ``columns`` or
    ``order`` member."""
    if not isinstance(doc, Pairs) or not any(
            fold(key).strip() in ("columns", "order") for key, _ in doc):
        return None
    entries: list[tuple[tuple[str, ...], str, str, str]] = []

    def walk(node: Any, path: tuple[str, ...], where: str) -> None:
        if len(path) > 4:
            return  # deeper than any DataTables parameter (``columns[0].search.value``)
        if isinstance(node, Pairs):
            for key, value in node:
                walk(value, (*path, fold(key).strip()), f"{where}.{key}" if where else key)
        elif isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, (*path, str(k)), f"{where}[{k}]")
        else:
            entries.append((path, _json_text(node), where, where))

    walk(doc, (), "")
    return _table(entries)


def _table(entries: Iterable[tuple[tuple[str, ...], str, str, str]]) -> Table | None:
    """The table of ``entries``: each parameter's path, value, the parameter as
    :attr:`Table.filters` and :attr:`Table.shown` hold it, and its name as shown."""
    data: dict[str, str] = {}
    names: dict[str, str] = {}
    searches: list[tuple[str, str]] = []
    orders: list[tuple[str, int]] = []
    used: set[str] = set()  # columns ordered or filtered by (their own or the global search)
    own: dict[str, list[str]] = {}  # a column's data and name parameters, raw
    unsearchable: set[str] = set()  # ``searchable=false``: a global search leaves them
    everywhere = False  # a global search
    for path, value, part, raw in entries:
        if path[0] == "search" and path[1:] != ("regex",):
            everywhere = everywhere or bool(value.strip())  # ``search[value]``, any spelling
            continue
        if len(path) < 3 or not path[1].isdigit():
            continue
        if path[0] == "columns" and len(path) == 3 and path[2] in ("data", "name"):
            (data if path[2] == "data" else names)[path[1]] = value
            own.setdefault(path[1], []).append(part)
        elif path[0] == "columns" and path[2:] == ("search", "value"):
            searches.append((path[1], part))
            if value.strip():
                used.add(path[1])
        elif path[0] == "columns" and path[2:] == ("searchable",):
            if value.strip().lower() == "false":
                unsearchable.add(path[1])
        elif path[0] == "order" and path[2:] == ("column",):
            index = _intval(value)
            orders.append((raw, index))
            used.add(str(index))
    if everywhere:
        used |= set(own) - unsearchable
    if not (data or names or searches or orders):
        return None

    def named(index: str) -> bool:
        name = names.get(index, "")
        return _named(data.get(index)) and (not name.strip() or _named(name))

    # (the value is not shown: it may be anything the caller typed)
    refusal = next((Refusal(raw[:MAX_SHOWN], Text(
        "qr.dt_order", "it orders by a column of the table that the request names by no "
        "word (an upstream then orders by a column of its own list)"))
                    for raw, index in orders if index < 0 or not named(str(index))), None)
    return Table(frozenset(part for index, part in searches if named(index)), refusal,
                 frozenset(p for index, parts in own.items() if index not in used
                           for p in parts))


def _json_text(value: Any) -> str:
    """A JSON scalar as a query string would carry it (``null`` empty, ``false``)."""
    if value is None or isinstance(value, list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_LEADING_INT = re.compile(r"\s*([+-]?[0-9]+)")
# DataTables' parameters by their path: the last words are the protocol's
_COLUMN_KEYS = frozenset({("data",), ("name",), ("searchable",), ("orderable",),
                          ("search", "value"), ("search", "regex")})
_ORDER_KEYS = frozenset({("column",), ("dir",), ("name",)})
_SEARCH_KEYS = frozenset({("search", "value"), ("search", "regex")})


def protocol(name: str) -> bool:
    """Whether the decoded parameter name ``name`` is one of DataTables' own
    (``columns[i][name]``, ``order[j][dir]``, ``search[value]``, 1.9's
    ``mDataProp_0``), whose words say what its value is rather than name a column."""
    if not _MARK_NAMES.search(name):
        return False
    if legacy(name) is not None:
        return True
    path = name_path(fold(name).split("\x00", 1)[0].strip())
    if path in _SEARCH_KEYS:
        return True
    if len(path) < 3 or not path[1].isdigit():
        return False
    keys = _COLUMN_KEYS if path[0] == "columns" else _ORDER_KEYS if path[0] == "order" else ()
    return path[2:] in keys


_MARK_NAMES = re.compile(r"columns|order|search|sort|prop|regex|echo|display",
                         re.IGNORECASE)
# DataTables 1.9's parameters (``fnServerParams``' ``aoData``): ``iSortCol_0``,
# ``sSearch_0`` point at a column by its position, ``sSearch`` is the search box
_LEGACY = re.compile(
    r"(?P<order>isortcol_\d+)|(?P<filter>ssearch_\d+)|(?P<search>ssearch)|(?P<own>"
    r"(?:mdataprop|bsearchable|bsortable|bregex|ssortdir)_\d+|bregex|scolumns|icolumns"
    r"|secho|idisplaystart|idisplaylength|isortingcols)")
ORDER, FILTER, SEARCH = "order", "filter", "search"


def legacy(name: str) -> str | None:
    """What DataTables 1.9's parameter ``name`` (decoded) is: :data:`ORDER` (an
    ordering by a position), :data:`FILTER` (a column's filter by its position),
    :data:`SEARCH` (the search box), ``"own"`` (another of its words), or None."""
    m = _LEGACY.fullmatch(fold(name).split("\x00", 1)[0].strip())
    return None if m is None else m.lastgroup


def _intval(value: str) -> int:
    """The column an ordering's value points at, as PHP's ``intval`` reads it (the
    laxest: ``1.0`` is 1, ``abc`` is 0)."""
    m = _LEADING_INT.match(value)
    return int(m[1]) if m else 0
