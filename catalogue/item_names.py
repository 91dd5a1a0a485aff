"""Item names as lax readers compare them, and finding one named in a request's text.

A consumer whose answer is cut to some items can still *query by* an item it is not
given in the clear, and learn it from whether records come back (an oracle: is this ID
number in the fleet?): ``{"filter": {"driver_id_number": "4501..."}}``, Django's
``driver_id_number__startswith``, Ransack's ``driver_id_number_start``, a filter list's
``{"field": "driverIdNumber"}``, an ordering ``-driver_id_number`` (sorting by it
bisects it). :class:`NotGranted` finds such a name in any key or string value.

A text is read token by token (runs of letters, digits, ``_`` and ``-``, after NFKC),
each split into words at ``_``, ``-``, digits and camelCase humps. A token names an
item when the whole token is the item's name as :func:`item_key` compares
(``DRIVERIDNUMBER``), or, once the granted items' own words are taken out (so
``driver_name_cont`` names the granted ``driver_name``, not a cut ``name``):

- an item of several words, when they stand in it in a row (``first_driver_id_number``:
  the words together are specific enough), the last one plural too
  (``driver_id_numbers``);
- an item of one word (``id``, ``name``), when a part of the token between Ransack's
  ``or`` and ``and`` holds that word (or its plural, ``ids``) beside nothing but the
  words of a filter, range, lookup or sort (:data:`OPERATORS`: ``id__in``,
  ``id_not_eq``, ``idList``, ``max_id``, ``id_desc``), an ordering's ``order``,
  ``sort`` or ``group`` followed by ``by`` (``orderById``, ``sort_by_id``; run
  together, ``orderbyid``) and digits (``id2``). A longer name of which the word is
  only a part names something else (``pageId``, ``order_id``, ``idCard``: in Chinese
  systems the ID card's number, an item of its own under its own name; ``sortId``: a
  category's).

Free text naming the words apart (``driver id number``) is not a name. A value that is
the one word alone is (``?sort=id``), but in a free-text search's value
(``catalogue.free_text``: ``?q=id``, ``?q=lost id card``) the word is a search term,
and names the item only in a field's syntax (``id:3``, ``id.eq.3``, ``id>3``).

The reading of one request is bounded (:func:`words_budget`): the word by word reading
above runs on the event loop, and a value of a million dotted parts (2 MB, well under
the body limit) held it some 20 s; past :data:`MAX_WORDS` the reading stops with
:class:`TooManyWords` and the request is refused, never passed half read.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any

from catalogue.routes import fold

_SEPARATORS = re.compile(r"[\W_]+")
_TOKENS = re.compile(r"[\w-]+")
# a path of parts joined by ``.`` or nested in ``[...]`` (Spring Data's and JPA's
# ``driver.idNumber``, Rails' ``filter[driver][id_number]``, a JSON body's keys), as
# ``catalogue.param_path`` reads ``[x]`` and ``.x`` alike. From a token's start only,
# its runs taken whole (possessive): otherwise a long token with a dot after it is
# tried again from every one of its characters (quadratic: 75 s for 32 000)
_PATHS = re.compile(r"(?<![\w-])[\w-]++(?:(?:\.|\]?\[|\]\.)[\w-]++)+")
# ASCII humps first (``IDNumber`` is ID, Number), then digits, then other scripts' words
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_A-Za-z]+")
# letters Java's equalsIgnoreCase and Unicode case-insensitive matching read as ASCII
# ones (``catalogue.routes.fold``), mapped before a text is cut into words
_AS_ASCII = str.maketrans({"\u0131": "i", "\u0130": "I", "\u017f": "s"})
# the words beside a one-word item in a filter, range, lookup or sort parameter: Django's
# lookups (``__in``, ``__icontains``), Ransack's predicates (``_not_eq``, ``_i_cont``),
# Sequelize/Mongo/Prisma operators as names (``idNotIn``), ranges (``id_from``,
# ``max_id``, ``since_id``), lists (MyBatis' ``idList``), sort directions. Not ``order``,
# ``sort``, ``page``, ``no``: ``order_id``, ``sortId`` (a category), ``pageId``,
# ``idNo`` (an ID card's number) are other names.
_OPERATOR_WORDS = """
    eq ne neq not equal equals exact iexact is in nin any all none lt le lte lteq gt ge
    gte gteq min max from to since until before after begin start end starts ends
    startswith istartswith endswith iendswith with contains icontains cont i like ilike
    match matches regex iregex search range between null isnull notnull present blank
    empty exists true false asc desc list array arr by filter where
"""
OPERATORS = frozenset(_OPERATOR_WORDS.split())
_PLURALS = ("", "s", "es")  # a name as it is, and its plurals
_JOINS = frozenset({"or", "and"})  # Ransack's ``brand_or_id_eq``: two names, one value
# ``order``, ``sort``, ``group`` with ``by`` after them: an ordering (or grouping, whose
# counts tell as much) by what follows (``orderById``, ``sort_by_id``, ``groupById``)
_SORTS = frozenset({"order", "sort", "group"})
_BY_KEYS = tuple(w + "by" for w in sorted(_SORTS))
# after a one-word item's word in free text: a field's syntax (Lucene's ``id:3``,
# PostgREST's ``id.eq.3``, ``id=3``, ``id>3``, ``id[gt]``), not a search term
_FIELD_SYNTAX = re.compile(r"[:=<>\[!~]|\.\w")


# words read word by word for one request: a query or a JSON body of an agency's table
# client reads a few hundred; this many take ~0.1-0.3 s of the event loop here
MAX_WORDS = 20_000
_words_left: ContextVar[list[int] | None] = ContextVar("words_left", default=None)


class TooManyWords(Exception):
    """A request's text holds more words to read than :data:`MAX_WORDS`."""


@contextlib.contextmanager
def words_budget(limit: int = MAX_WORDS) -> Iterator[None]:
    """Bound the words :class:`NotGranted` reads word by word inside the block (one
    request's check): past ``limit`` it raises :class:`TooManyWords`."""
    token = _words_left.set([limit])
    try:
        yield
    finally:
        _words_left.reset(token)


def _spend(n: int) -> None:
    left = _words_left.get()
    if left is not None:
        left[0] -= n
        if left[0] < 0:
            raise TooManyWords


def item_key(name: str) -> str:
    """``name`` as a lax reader compares keys: compatibility forms, letter case and
    the separators between words (``_``, ``-``, spaces) aside."""
    return _SEPARATORS.sub("", fold(name))


def words(token: str) -> tuple[str, ...]:
    """The words of one token (``driverIdNumber``: driver, id, number), case folded."""
    return tuple(w.casefold() for w in _WORDS.findall(token))


def _within(seq: tuple[str, ...], run: list[str]) -> bool:
    n = len(seq)
    return any(tuple(run[k:k + n]) == seq for k in range(len(run) - n + 1))


class NotGranted:
    """The items of a resource a caller is not given in the clear (cut, or masked), and
    where a request's text names one of them (module docstring)."""

    def __init__(self, items: Iterable[str], granted: Iterable[str], *,
                 sealed: Iterable[str] = (), masked: Iterable[str] = ()) -> None:
        clear = [n for n in dict.fromkeys(granted)]
        self.items = tuple(n for n in dict.fromkeys(items) if n not in clear)
        # of those, the ones the caller is given masked: it may show them (a table's
        # column, ``catalogue.datatables``), not query by them
        self.masked = frozenset(masked) & frozenset(self.items)
        # granted, and read here as clear, but given only encrypted: an alias putting one
        # under a clear item's name would unseal it (``catalogue.request_names``)
        self.sealed = tuple(dict.fromkeys(sealed))
        self._keys = {item_key(n): n for n in self.items}
        self._memo: dict[Any, Any] = {}
        self._any = re.compile("|".join(map(re.escape, self._keys)) or r"(?!)")
        # an item of several words, and its plural (``driver_id_numbers``)
        several = [(n, ws) for n in self.items if len(ws := words(n)) > 1]
        self._seqs = [(n, (*ws[:-1], ws[-1] + end)) for n, ws in several
                      for end in _PLURALS]
        self._keys.update((item_key(n) + end, n) for n, _ in several for end in _PLURALS
                          if item_key(n) + end not in self._keys)
        self._several = frozenset(n for n, _ in several)
        self._span = max((len(ws) for _, ws in several), default=1)
        # a one-word item by its word and plural (``ids``, ``statuses``)
        self._one = {f: n for n in reversed(self.items) if len(ws := words(n)) == 1
                     for f in (ws[0] + end for end in _PLURALS)}
        self._keys.update((item_key(f), n) for f, n in self._one.items()
                          if item_key(f) not in self._keys)  # ``IDs``
        self._one_keys = frozenset(item_key(f) for f in self._one)
        # longest first: ``driver_phone_number`` is taken out before ``driver_phone``
        self._granted = sorted((s for s in (words(n) for n in clear) if s),
                               key=len, reverse=True)

    @property
    def memo(self) -> dict[Any, Any]:
        """What ``catalogue.request_names`` remembers of a parameter's reading against
        these items (bounded there)."""
        return self._memo

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def span(self) -> int:
        """The most words an item of these has (1 when none has several): how many of
        a path's parts one item can stand across (:meth:`path_named`)."""
        return self._span

    @property
    def numbered(self) -> bool:
        """Whether an item's name is a bare number once its ``_`` are aside (``_110``):
        a value that is that number names it."""
        return any(key.isdigit() for key in self._keys)

    @property
    def all_clear(self) -> bool:
        """Whether the caller is given every item in the clear (none withheld, none
        only encrypted)."""
        return not self.items and not self.sealed

    def named(self, text: str, *, key: str | None = None, free: bool = False
              ) -> str | None:
        """The first item of these that ``text`` names, or None; ``key``:
        ``item_key(text)`` if the caller has it. ``free``: ``text`` is the value of a
        free-text search (``?q=``), whose words are search terms: a one-word item's
        word alone (``lost id card``) names it only in a field's syntax (Lucene's
        ``id:4501``, ``id.eq.3``, ``id=3``)."""
        # every way of naming an item below leaves its key in the text's: most text
        # (values, other names) is done with here, at C speed
        if self._any.search(item_key(text) if key is None else key) is None:
            return None
        if not text.isascii():
            text = unicodedata.normalize("NFKC", text).translate(_AS_ASCII)
        for match in _TOKENS.finditer(text):
            _spend(1)
            token = match[0]
            token_key = item_key(token)
            found = self._keys.get(token_key)
            if found is not None and not (
                    free and token_key in self._one_keys
                    and _FIELD_SYNTAX.match(text, match.end()) is None):
                return found
            # run together in lower case: ``orderbyid``, ``sortbydriveridnumber``
            for lead in _BY_KEYS:
                if token_key.startswith(lead) and (
                        after := self._keys.get(token_key[len(lead):])) is not None:
                    return after
            if found is not None:
                continue  # the word alone in free text
            for run in self._runs(words(token)):
                for name, seq in self._seqs:
                    if _within(seq, run):
                        return name
                if self._one and (found := self._alone(run)) is not None:
                    return found
        return self._across(text) if self._seqs and ("." in text or "[" in text) else None

    def path_named(self, path: str) -> str | None:
        """The item of several words that the ``.``-joined ``path`` (a JSON body's keys
        from the top: ``driver.idNumber``) names across its parts, or None."""
        if self._any.search(item_key(path)) is None:
            return None
        if not path.isascii():
            path = unicodedata.normalize("NFKC", path).translate(_AS_ASCII)
        return self._across(path)

    def _across(self, text: str) -> str | None:
        """An item of several words whose words stand in a row across the parts of a
        ``.``-joined path in ``text`` (a JPA relation's property, ``driver.idNumber``,
        ``driver.id_number``; module docstring). Each part was read as a token already,
        so ``id.eq.3`` keeps its reading; only words across the dots are added."""
        for match in _PATHS.finditer(text):
            _spend(1)
            path = match[0]
            if self._keys.get(item_key(path)) in self._several:
                return self._keys[item_key(path)]
            for run in self._runs(words(path)):
                for name, seq in self._seqs:
                    if _within(seq, run):
                        return name
        return None

    def _alone(self, run: list[str]) -> str | None:
        """The one-word item a part of ``run`` (between ``or`` and ``and``) holds beside
        nothing but :data:`OPERATORS` and digits (module docstring), or None."""
        found, other = None, False
        run = [*run, "or"]
        for k, w in enumerate(run):
            if w in _JOINS:
                if found is not None and not other:
                    return found
                found, other = None, False
            elif (item := self._one.get(w)) is not None:
                found = found or item
            elif w not in OPERATORS and not w.isdigit() and not (
                    w in _SORTS and run[k + 1] == "by"):  # ``orderById``, ``sort_by_id``
                other = True
        return None

    def _runs(self, ws: tuple[str, ...]) -> list[list[str]]:
        """``ws`` split where a granted item's words stand in a row (those taken out)."""
        _spend(len(ws))
        runs: list[list[str]] = [[]]
        k = 0
        while k < len(ws):
            seq = next((s for s in self._granted if ws[k:k + len(s)] == s), None)
            if seq is None:
                runs[-1].append(ws[k])
                k += 1
            else:
                runs.append([])
                k += len(seq)
        return [r for r in runs if r]
