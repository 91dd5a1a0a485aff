"""The items a shaped request may not name (``catalogue.request_names``), for the
catalogue's decider and body check (``gateway.proxy.catalogue``).

Not given in the clear: an item cut from the caller's answer, one given only masked
(querying by the whole value would confirm it), and one given encrypted to a caller
with no usable key (withheld). The last is known only when the answer is shaped (the
client's registered keys): a request naming an encrypted item it was granted goes on,
marked (:func:`checked`), and the shaper refuses any answer (a HEAD's counts and a
404 too) when the caller has no usable key (``CatalogueShaping.withholds_encrypted``):
the records it would count or order are the oracle.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from catalogue import CatalogueDecision, Resource
from catalogue.item_names import NotGranted
from catalogue.model import Item
from catalogue.refusal import Refusal

NAMED_ENCRYPTED = "catalogue_named_encrypted"  # the ProxyRequest.extra key of the mark

Check = Callable[[NotGranted], Refusal | None]


def checked(resource: Resource, found: CatalogueDecision, check: Check
            ) -> tuple[Refusal | None, str | None]:
    """``check`` run against the items the caller is not given in the clear: its
    refusal, or None and the granted encrypted item the request names (if any)."""
    why = check(_not_granted(resource.items, found.items, keyed=False))
    if why is None or why.item is None or why.item not in _encrypted(resource, found):
        return why, None
    # granted encrypted: given if the caller has a key, which only the shaper knows
    return check(_not_granted(resource.items, found.items, keyed=True)), why.item


def _encrypted(resource: Resource, found: CatalogueDecision) -> frozenset[str]:
    return frozenset(i.name for i in resource.items
                     if i.encrypt and i.mask is None and i.name in found.items)


@functools.lru_cache(maxsize=256)
def _not_granted(items: tuple[Item, ...], allowed: tuple[str, ...], *, keyed: bool
                 ) -> NotGranted:
    clear = {i.name for i in items if i.name in allowed and i.mask is None
             and (keyed or not i.encrypt)}
    return NotGranted((i.name for i in items), clear)
