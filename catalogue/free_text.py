"""Free-text search parameters: ``?q=``, ``keyword=``, ``search[value]=``.

An upstream's free-text search reads every column it has (a SQL ``LIKE`` over each, a
search index of the whole record): ``?q=450102198305120031`` on a list whose answer is
cut to ``plate_number`` and ``brand`` tells the caller whether some vehicle's driver
has that ID number (a record comes back, or a count of one). No item's name stands in
the request, so ``catalogue.item_names`` cannot see it. So on a route whose answer
withholds items from the caller, a free-text parameter is refused unless the route's
``query:`` lists it (the steward saying the upstream's search reads only what the
caller may see; ``catalogue.request_names``).

A name (a query parameter's, its ``[...]`` and ``.`` parts, or a JSON body's keys from
the top) is a free-text search when one of its parts is a search word, alone or with
words that say which kind of search (:data:`SEARCH`, :data:`MODIFIERS`:
``searchText``, ``keyWord``, ``globalFilter``, ``fulltext``, OData's ``$search``), and
nothing after it but such words or digits (DataTables' ``search[value]``,
``filter[q]``, Elasticsearch's ``query.query_string.query``). A part after it that names
something else makes it structured: ``filter[brand]``, Ransack's ``q[brand_cont]``,
Elasticsearch's ``query.term.brand`` (read for items' names as any other). WordPress's
``s`` counts only as a whole name (Ransack's ``q[s]`` is a sort); OData's ``$filter`` is
an expression naming its columns, not a search (its ``$search`` is one).

The names Chinese systems' search boxes send count too: ``qs``, ``where``,
``criteria`` and Elasticsearch's ``match`` (``multi_match``) as search words;
``searchName``, ``queryParam`` run together (``search[name]`` is a filter by ``name``);
and, as a whole name (a query parameter's, a JSON body's top-level key), a kind of
search alone: ``fuzzy``, ``like``, ``likeValue``, ``content``, ``condition`` (查询条件:
``?condition=张``, ``conditionValue``; ``condition[brand]`` stays a filter), and the
pinyin initials ``gjz`` (关键字), ``mhcx`` (模糊查询), ``cxtj`` (查询条件). 若依's
``searchValue`` (its ``BaseEntity``'s search box) is a search word with a modifier.
``text``, ``value``, ``key``, ``input`` alone are not: a form's field, a setting's
value, an API key far more often than a search box (a system searching by one lists
it in the route's ``query:``). Elasticsearch's ``_all``
and ``*`` name every field: a value under one is searched text
(``query.bool.must.match._all``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from catalogue.item_names import item_key, words

# a search: Baidu's ``wd``, jQuery UI autocomplete's ``term``, Chinese systems' 关键字
SEARCH = frozenset({
    "q", "query", "search", "keyword", "keywords", "kw", "kwd", "wd", "word", "words",
    "term", "terms", "fulltext", "filter", "filters", "qs", "where", "criteria", "match",
    "关键字", "关键词", "搜索", "检索", "查询", "模糊查询", "查询条件", "搜索条件"})
# words that say which kind of search, or where its text stands
MODIFIERS = frozenset({
    "key", "keys", "text", "texts", "value", "values", "val", "str", "string", "input",
    "content", "all", "any", "global", "quick", "full", "fuzzy", "simple", "like",
    "multi", "phrase", "plain", "web", "general"})
# WordPress's ``?s=``; the pinyin initials of 关键字, 模糊查询, 查询条件
TOP_ONLY = frozenset({"s", "gjz", "mhcx", "cxtj"})
# run together after a search word only: ``search[name]`` filters by ``name``
TRAILING = frozenset({"name", "names", "param", "params", "condition", "conditions"})
# a kind of search, as a whole name by itself (``?fuzzy=``, ``likeValue=``)
KINDS = frozenset({"fuzzy", "like", "content", "condition", "conditions"})
_PARTS = re.compile(r"[\[\].]+")
# the run-together spellings words() cannot split (``searchtext``, ``fulltextsearch``)
_JOINED = frozenset({*SEARCH, *(a + b for a in SEARCH for b in MODIFIERS | SEARCH | TRAILING),
                     *(b + a for a in SEARCH for b in MODIFIERS)})
_WHOLE = frozenset({*KINDS, *(a + b for a in KINDS for b in MODIFIERS),
                    *(b + a for a in KINDS for b in MODIFIERS)})
_TOP = TOP_ONLY | _WHOLE  # what a whole name alone may be besides a search word
# Elasticsearch's every field (``{"match": {"_all": ...}}``, ``"fields": ["*"]``)
_EVERY_FIELD = frozenset({"_all", "*"})


@functools.lru_cache(maxsize=4096)
def _kind(part: str) -> int:
    """2: a search word (with modifiers), or every field; 1: only modifiers or digits;
    0: other."""
    key = item_key(part)
    if key in _JOINED or part.strip() in _EVERY_FIELD:
        return 2
    ws = words(part)
    if not ws:
        return 1 if key.isdigit() or not key else 0
    if all(w in MODIFIERS or w.isdigit() for w in ws):
        return 1
    if all(w in SEARCH or w in MODIFIERS or w.isdigit() for w in ws) and any(
            w in SEARCH for w in ws):
        return 2
    return 0


def step(free: bool, key: str) -> bool:
    """Whether a value under ``key``, itself under a free-text name (``free``) or not,
    is free text (module docstring)."""
    kind = _kind(key)
    return kind == 2 or (free and kind == 1)


def first(key: str) -> bool:
    """:func:`step` for a JSON body's top-level key, where a kind of search alone is one
    (module docstring)."""
    return step(False, key) or item_key(key) in _WHOLE


def is_free_text(name: str) -> bool:
    """Whether the parameter ``name`` (decoded, ``[...]`` kept) is a free-text search."""
    parts = [p for p in _PARTS.split(name) if p]
    if len(parts) == 1 and item_key(parts[0]) in _TOP:
        return True
    if name.strip().lower() == "$filter":
        return False  # OData's: an expression naming its columns (read for items' names)
    free = False
    for part in parts:
        free = step(free, part)
    return free


def free_text_path(keys: Iterable[str]) -> bool:
    """:func:`is_free_text` of a JSON value's keys from the top."""
    free = None
    for key in keys:
        free = first(key) if free is None else step(free, key)
    return bool(free)
