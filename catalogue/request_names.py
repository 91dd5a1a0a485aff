"""What a shaped request names beyond its top-level parameters: items the caller is not
given in the clear, and GraphQL.

``catalogue.query`` checks a shaped request's parameter names (the query string's, a
form body's, a JSON object's top-level keys) against the route's ``query:``. Filters go
deeper: ``{"filter": {"driver_id_number": "4501..."}}`` (Rails and Django REST filter
backends), ``?filter[driver_id_number]=``, Elasticsearch-like ``{"query": {"bool":
{"must": [{"term": {...}}]}}}``, ``{"filters": [{"field": "driver_id_number", ...}]}``,
``?order=driver_id_number.desc``. Each queries *by* an item whose value the caller is not
given, and whether records come back tells it the value. So every parameter name and
value of the query string and a form body (decoded once, ``[...]`` kept), and every key
and string value of a JSON body at any depth, is read for an item's name
(``catalogue.item_names.NotGranted``: the items cut from the caller's answer, and those
it gets only masked). A JSON body deeper than :data:`MAX_DEPTH` or with more than
:data:`MAX_NODES` keys and values is refused as not checkable.

GraphQL renames any field to a granted name with an alias, and the gateway does not
parse it (``catalogue.graphql``): a ``query`` parameter or member holding a GraphQL
document, a persisted query's hash (``extensions.persistedQuery``) and an
``application/graphql`` body are refused unless the route's ``query:`` lists ``query``
and the caller is given every item in the clear (then they are read for items' names as
any other text). A caller with items withheld is refused GraphQL on any route: a
string's escapes (``orderBy: "driver\\u005fid_number"``) name a field no reading of
the text sees, and an alias puts an encrypted item under a clear item's name.

A free-text search (``catalogue.free_text``: ``?q=``, ``keyword=``, ``search[value]=``,
``{"query": {"query_string": {"query": ...}}}``) searches columns no name in the
request shows: for a caller with items withheld it is refused unless the route's
``query:`` lists the parameter (``listed``: every parameter that reaches this reading
passed that list). An empty one passes (nothing searched). A listed one's value is read
as search terms (``NotGranted.named``'s ``free``: ``?q=lost id card`` does not name
``id``; ``?q=id:3`` does). jQuery DataTables' filter of one column
(``columns[i][search][value]``) is a filter by that column when the request names it by
a word, and an ordering by a column's position must point at a named one
(``catalogue.datatables``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from catalogue import datatables
from catalogue.free_text import first, is_free_text, step
from catalogue.graphql import PERSISTED, is_graphql
from catalogue.item_names import NotGranted, item_key
from catalogue.pairs import Pairs
from catalogue.refusal import BODY, MAX_SHOWN, Refusal
from texts import Text

MAX_DEPTH = 32  # Elasticsearch's bool queries nest about ten deep
MAX_NODES = 100_000  # keys and values of one JSON body
NO_NAME = "(no name)"  # the parameter of a value sent without one ("=x")
_SPLIT = re.compile(r"[&;]")


def _graphql_refusal(where: str, listed: bool) -> Refusal:
    if listed:
        return Refusal(where[:MAX_SHOWN], Text(
            "qr.graphql_clear", "GraphQL goes only to a caller given every item of the "
            "route in the clear (a string escape names a field no check reads; an alias "
            "puts an item under another's name)"), graphql=True)
    return Refusal(where[:MAX_SHOWN], Text(
        "qr.graphql", "GraphQL is refused on a route whose answer is cut for this caller "
        "(an alias can put any field under a granted item's name) unless the route lists "
        "query"), graphql=True)


def _free_text_refusal(where: str) -> Refusal:
    return Refusal(where[:MAX_SHOWN], Text(
        "qr.free_text", "a free-text search may read items this caller is not given in "
        "the clear (whether records come back tells their values): refused unless the "
        "route lists it in query"), free_text=True)


def _named(where: str, item: str, *, value: bool) -> Refusal:
    if value:
        why = Text("qr.value_names", "its value names item {item!r}, which this caller is "
                   "not given in the clear: a request may not select, filter or sort by it",
                   item=item)
    else:
        why = Text("qr.names", "it names item {item!r}, which this caller is not given in "
                   "the clear: a request may not select, filter or sort by it", item=item)
    return Refusal(where[:MAX_SHOWN], why, item=item)


def parameters(text: str) -> list[str]:
    """The raw parameters (``name=value``) of a query string or form body, split at ``&``
    and ``;`` as upstreams split them."""
    return _SPLIT.split(text)


def query_refusal(text: str, names: NotGranted, graphql_ok: bool, *, listed: bool = False
                  ) -> Refusal | None:
    """The first parameter of a query string (or form body) naming an item of ``names``
    in its name or value, or carrying GraphQL, or a free-text search (module docstring),
    or None. ``graphql_ok``: the route lists ``query``; ``listed``: it lists its
    parameters. A parameter's outcome is remembered with ``names``
    (:data:`MEMO_PARAMETER_CHARS`): most of a query (``per_page=20``,
    ``sort=-plate_number``) comes again and again."""
    memo = names.memo
    # jQuery DataTables' column filters and orderings point at its columns by position
    table = datatables.read(text) if names else None
    for part in parameters(text):
        key = (part, graphql_ok, listed)
        found = memo.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = _parameter_refusal(part, names, graphql_ok, listed)
            # jQuery's cache-buster is new each time: remembered, it would push out the rest
            if len(part) <= MEMO_PARAMETER_CHARS and not is_cache_buster(part):
                if len(memo) >= MEMO_PARAMETERS:
                    memo.clear()
                memo[key] = found
        if isinstance(found, Refusal) and not (table is not None and (
                (found.free_text and part in table.filters)
                or (found.item in names.masked and part in table.shown
                    and _is_item(part, found.item)))):
            return found
    return None if table is None else table.refusal


def _is_item(part: str, item: str) -> bool:
    """Whether the value of ``part`` is ``item``'s name and nothing else (a column
    ``driver_name``, not ``driver_name,driver_id_number``)."""
    return item_key(unquote_plus(part.partition("=")[2])) == item_key(item)


def is_cache_buster(part: str) -> bool:
    """Whether the raw parameter ``part`` is jQuery's ``cache: false`` one (``_=``
    and the time in milliseconds, what DataTables sends by default): a bare number
    under ``_`` names no item and searches nothing."""
    return part[:2] == "_=" and part[2:].isdigit() and part[2:].isascii()


MEMO_PARAMETER_CHARS = 128  # a longer parameter is read every time
MEMO_PARAMETERS = 1024  # remembered per ``NotGranted``, then forgotten all at once
_UNSEEN = object()


def _parameter_refusal(part: str, names: NotGranted, graphql_ok: bool, listed: bool
                       ) -> Refusal | None:
    """One ``name=value`` of :func:`query_refusal`."""
    raw, _, value = part.partition("=")
    if not raw and not value:
        return None
    name, value = unquote_plus(raw), unquote_plus(value)
    folded = item_key(name)
    if not (graphql_ok and names.all_clear) and (
            (item_key(name.split("[", 1)[0]) == "query" and is_graphql(value))
            or _persisted(folded, value)):
        return _graphql_refusal(raw or NO_NAME, graphql_ok)
    old = datatables.legacy(name) if names else None
    free = bool(names) and (is_free_text(name) or old in (datatables.FILTER,
                                                          datatables.SEARCH))
    # DataTables' own names (``columns[0][name]``) are its protocol's words, not
    # columns: a table of a resource with an item ``name`` is read by its values
    texts = ((value, True),) if datatables.protocol(name) else ((name, False), (value, True))
    for text_, is_value in texts:
        item = names.named(text_, key=folded if not is_value else None,
                           free=free and is_value)
        if item is not None:
            return _named(raw or NO_NAME, item, value=is_value)
    if free and not listed and value.strip():
        return _free_text_refusal(raw or NO_NAME)
    if old == datatables.ORDER and not listed:
        return _legacy_order_refusal(raw or NO_NAME)
    return None


def _legacy_order_refusal(where: str) -> Refusal:
    # 1.9's server script indexes its own column list (``$aColumns``) whatever
    # ``mDataProp_i`` names: the position is the upstream's alone
    return Refusal(where[:MAX_SHOWN], Text(
        "qr.dt_legacy", "DataTables 1.9 orders by a column's position in the upstream's "
        "own column list, which the request does not show: refused unless the route "
        "lists it in query"))


def _pair_name(node: Pairs) -> str | None:
    """The parameter name of a ``{"name": ..., "value": ...}`` object (nothing else in
    it), or None."""
    if len(node) != 2:
        return None
    keys = {item_key(k): v for k, v in node}
    name = keys.get("name")
    return name if "value" in keys and isinstance(name, str) else None


def _persisted(name_key: str, value: str) -> bool:
    """A persisted query's hash: in a JSON value (``extensions={"persistedQuery":
    ...}``), or in the name (``name_key``: as :func:`item_key` reads it) as parsers that
    nest ``[...]`` and ``.`` read it (``extensions[persistedQuery][sha256Hash]=``); not
    search text naming one."""
    return PERSISTED in name_key or (
        value.lstrip()[:1] in ("{", "[") and PERSISTED in item_key(value))


def text_refusal(text: str, names: NotGranted, graphql_ok: bool) -> Refusal | None:
    """An ``application/graphql`` body: refused unless the route takes GraphQL and the
    caller is given every item in the clear, then read for items' names."""
    if not (graphql_ok and names.all_clear):
        return _graphql_refusal(BODY, graphql_ok)
    item = names.named(text)
    return None if item is None else _named(BODY, item, value=True)


def json_refusal(doc: Any, names: NotGranted, graphql_ok: bool, *, listed: bool = False
                 ) -> Refusal | None:
    """The first key or string value of a parsed JSON body (objects as :class:`Pairs`)
    naming an item of ``names``, or carrying GraphQL, or a free-text search, or too big
    to check; or None (``graphql_ok``, ``listed``: as :func:`query_refusal`'s)."""
    graphql = graphql_ok and names.all_clear
    # DataTables sent as JSON: its column filters and orderings by position
    table = datatables.read_json(doc) if names else None
    # (node, where, the last keys from the top, as many as an item has words (JPA's
    # ``driver.idNumber`` reads no further back), depth, whether a value here is free
    # text: catalogue.free_text); an object in a top-level array stands at the top
    # (``[{"fuzzy": ...}]``, a batch of searches)
    span = names.span
    stack: list[tuple[Any, str, tuple[str, ...], int, bool]] = [(doc, "", (), 0, False)]
    seen = 0
    while stack:
        node, where, keys, depth, free = stack.pop()
        if depth > MAX_DEPTH:
            return Refusal(BODY, Text("qr.deep", "the body is nested deeper than {n} "
                                      "levels: it cannot be checked", n=MAX_DEPTH))
        if isinstance(node, Pairs):
            seen += len(node)
            below = []
            # jQuery's ``serializeArray()`` and DataTables 1.9's ``aoData`` sent as JSON:
            # ``{"name": "sSearch_0", "value": ...}`` is the parameter its name says
            named_as = _pair_name(node) if names else None
            if named_as is not None:
                if datatables.legacy(named_as) == datatables.ORDER and not listed:
                    return _legacy_order_refusal(where or BODY)
                if is_free_text(named_as) or datatables.legacy(named_as) in (
                        datatables.FILTER, datatables.SEARCH):
                    free = True  # the value is the search's text
            for key, value in node:
                at = f"{where}.{key}" if where else key
                path = (*keys[1 - span:], key) if span > 1 else ()
                item = names.named(key)
                if item is not None and table is not None and datatables.protocol(at):
                    item = None  # ``columns[0].name``: the protocol's word
                if item is None and len(path) > 1:
                    # JPA's ``{"driver": {"idNumber": ...}}``, as ``driver.idNumber``
                    item = names.path_named(".".join(path))
                if item is not None:
                    return _named(at, item, value=False)
                folded = item_key(key)
                if not graphql and (folded == PERSISTED or (
                        folded == "query" and isinstance(value, str) and is_graphql(value))):
                    return _graphql_refusal(at, graphql_ok)
                below.append((value, at, path or (key,), depth + 1, bool(names) and (
                    (free and named_as is not None and folded == "value")
                    or (step(free, key) if keys else first(key)))))
            stack.extend(reversed(below))  # in the document's order
        elif isinstance(node, list):
            seen += len(node)
            stack.extend(reversed([(v, f"{where}[{k}]", keys, depth + 1, free)
                                   for k, v in enumerate(node)]))
        elif isinstance(node, str):
            item = names.named(node, free=free)
            if item is not None and not (
                    table is not None and item in names.masked and where in table.shown
                    and item_key(node) == item_key(item)):
                return _named(where or BODY, item, value=True)
            if (item is None and free and not listed and node.strip()
                    and not (table is not None and where in table.filters)):
                return _free_text_refusal(where or BODY)
        elif free and not listed and isinstance(node, int | float) and not isinstance(
                node, bool) and not (table is not None and where in table.filters):
            return _free_text_refusal(where or BODY)
        if seen > MAX_NODES:
            return Refusal(BODY, Text("qr.nodes", "the body holds more than {n} keys and "
                                      "values: it cannot be checked", n=MAX_NODES))
    return None if table is None else table.refusal
