"""The items a shaped request may not name (``catalogue.request_names``), for the
catalogue's decider and body check (``gateway.proxy.catalogue``).

Not given in the clear: an item cut from the caller's answer, one given only masked
(querying by the whole value would confirm it), and one given encrypted to a caller
with no usable key (withheld). The last is known only when the answer is shaped (the
client's registered keys): a request naming an encrypted item it was granted goes on,
marked (:func:`checked`; so is a free-text search when only such items are
withheld), and the shaper refuses any answer (a HEAD's counts and a
404 too) when the caller has no usable key (``CatalogueShaping.withholds_encrypted``):
the records it would count or order are the oracle.

A shaped request's query string is checked once per route, decision and raw query
(:func:`checked_query`): consumers send the same queries again and again (a list
polled, the first page), and reading every name and value costs 10 to 20 µs a request.
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Callable

from catalogue import CatalogueDecision, Resource
from catalogue.item_names import NotGranted
from catalogue.model import Item
from catalogue.query import refusal
from catalogue.refusal import Refusal

NAMED_ENCRYPTED = "catalogue_named_encrypted"  # the ProxyRequest.extra key of the mark
MAX_REMEMBERED = 2048  # query strings remembered, the oldest forgotten first
MAX_REMEMBERED_CHARS = 1024  # a longer one is checked every time

Check = Callable[[NotGranted], Refusal | None]
Checked = tuple[Refusal | None, str | None]
# (resource code, items decided, raw query) → the resource's items and route it was
# checked against (the snapshot's own objects, compared by identity: a reload makes
# new ones) and the outcome
_queries: OrderedDict[tuple[str, tuple[str, ...], str], tuple[object, object, Checked]] = (
    OrderedDict())


def checked(resource: Resource, found: CatalogueDecision, check: Check
            ) -> tuple[Refusal | None, str | None]:
    """``check`` run against the items the caller is not given in the clear: its
    refusal, or None and the granted encrypted item the request names (if any)."""
    plain = _not_granted(resource.items, found.items, keyed=False)
    why = check(plain)
    if why is None:
        return None, None
    sealed = _encrypted(resource, found)
    if why.item is not None and why.item in sealed:
        named = why.item
    elif why.free_text and sealed.issuperset(plain.items):
        # a free-text search where only encrypted items are withheld: it searches what
        # the caller reads once decrypted (marked with the first of them)
        named = plain.items[0]
    else:
        return why, None
    # granted encrypted: given if the caller has a key, which only the shaper knows
    return check(_not_granted(resource.items, found.items, keyed=True)), named


def _encrypted(resource: Resource, found: CatalogueDecision) -> frozenset[str]:
    return frozenset(i.name for i in resource.items
                     if i.encrypt and i.mask is None and i.name in found.items)


# by the identity of the snapshot's items (hashing them, every field of every item,
# cost more than the rest of a remembered check); the entry holds them, so no other
# tuple takes their id while it stands
_readers: dict[tuple[int, tuple[str, ...], bool], tuple[tuple[Item, ...], NotGranted]] = {}
MAX_READERS = 256


def _not_granted(items: tuple[Item, ...], allowed: tuple[str, ...], *, keyed: bool
                 ) -> NotGranted:
    key = (id(items), allowed, keyed)
    hit = _readers.get(key)
    if hit is not None and hit[0] is items:
        return hit[1]
    clear = {i.name for i in items if i.name in allowed and i.mask is None
             and (keyed or not i.encrypt)}
    names = NotGranted((i.name for i in items), clear,
                       sealed=(i.name for i in items if i.encrypt and i.name in clear),
                       masked=(i.name for i in items
                               if i.name in allowed and i.mask is not None))
    if len(_readers) >= MAX_READERS:
        _readers.clear()
    _readers[key] = (items, names)
    return names


def _memo_key(resource: Resource, found: CatalogueDecision, query: str) -> str:
    """``query`` as remembered: jQuery's cache-buster (``_=1733400000000``, which
    ``$.ajax``'s ``cache: false`` appends last, anew with every DataTables request) as
    ``_=``, since a bare number under ``_`` changes no outcome
    (``catalogue.request_names.is_cache_buster``), unless an item's name is a bare
    number once its ``_`` are aside (``_110``), which such a value names."""
    # (from the end: ``"_=" in query`` costs microseconds on a DataTables query,
    # every other character of which is ``=`` or ``_``)
    head, _, stamp = query.rpartition("=")
    if not (stamp.isdigit() and stamp.isascii()) or not (
            head == "_" or head.endswith(("&_", ";_"))) or _not_granted(
            resource.items, found.items, keyed=False).numbered:
        return query
    return head + "="


def checked_query(resource: Resource, found: CatalogueDecision, query: str) -> Checked:
    """:func:`checked` of the raw query string ``query`` (``catalogue.query.refusal``
    against the route's ``query:``), remembered (module docstring): the outcome depends
    on nothing but the resource's items and route, the items decided and the query."""
    # (jQuery's stamp is 13 digits; a longer number is only remembered as it is)
    key = (resource.code, found.items, _memo_key(resource, found, query)
           if "_=" in query[-24:] else query)
    hit = _queries.get(key)
    if hit is not None and hit[0] is resource.items and hit[1] is resource.route:
        return hit[2]
    outcome = checked(resource, found, functools.partial(
        refusal, query, resource.route.query))
    if len(query) <= MAX_REMEMBERED_CHARS:
        if len(_queries) >= MAX_REMEMBERED:
            # (another thread's request may have forgotten it first)
            with contextlib.suppress(KeyError):
                _queries.popitem(last=False)
        _queries[key] = (resource.items, resource.route, outcome)
    return outcome
