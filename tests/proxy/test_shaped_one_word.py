"""A one-word item cut from a shaped answer (shaped routes for real consumers,
2026-12-05): JG-0001 with an ``id`` item (编号) that czt's grant leaves out, through the
gateway on a real socket to a lax upstream on a real socket (it reads ``filter[...]``,
``sort``, ``x=eq.v`` and nested JSON filters). A consumer's paging and its own
names holding the word (``pageId``, ``sort=order_id``, ``orderId``) reach the upstream;
the item itself in any spelling of a filter, a lookup or a sort is refused, audited
(tests/catalogue/test_one_word_items.py holds the reading)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import VEHICLES, Shop, jg_0001
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.catalogue.test_route_query_post import GRANT, SEARCH, search
from tests.proxy.test_shaped_second_pass import LaxUpstream, as_json, refused, send
from tests.wiring import apply_state

ID = {"name": "id", "title": "编号", "type": "integer", "level": 1}


@pytest.fixture
def upstream() -> LaxUpstream:
    return LaxUpstream()


def with_id(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "items": [ID, *entry["items"]]}


async def test_a_one_word_item_is_named_only_as_itself(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [with_id(jg_0001()), with_id(search())],
                                "grants": [GRANT]})
    for target in (f"{VEHICLES}?pageId=2", f"{VEHICLES}?sort=order_id",
                   f"{VEHICLES}?orderId=", f"{VEHICLES}?page_id=1&order=-parentId",
                   f"{VEHICLES}?idCard=x"):
        before = len(shop.upstream.seen)
        r = await send(shop, "GET", target)
        assert r.status_code == 200, (target, r.text)
        assert len(shop.upstream.seen) == before + 1 and r.json()["total"] >= 0
        rec = shop.record(r)
        assert "names_item" not in rec["extra"] and "id" not in rec["items"]
    r = await send(shop, "POST", SEARCH, as_json({"where": {"order_id": 7},
                                                  "sort": "-pageId"}))
    assert r.status_code == 200, r.text
    for query, parameter in [("?id=1", "id"), ("?ID=1", "ID"), ("?Id=eq.1", "Id"),
                             ("?filter%5Bid%5D=1", "filter%5Bid%5D"),
                             ("?id__in=1,2", "id__in"), ("?sort=-id", "sort"),
                             ("?order=id.eq", "order"), ("?ids=1,2", "ids"),
                             ("?idList=1", "idList"), ("?max_id=9", "max_id")]:
        rec = await refused(shop, "GET", VEHICLES + query, None, parameter)
        assert rec["extra"]["names_item"] == "id", query
        assert "item 'id'" in rec["reason"]
    for doc, parameter in [({"where": {"id": 1}}, "where.id"),
                           ({"filter": {"id__in": [1, 2]}}, "filter.id__in"),
                           ({"sort": "-ID"}, "sort")]:
        rec = await refused(shop, "POST", SEARCH, as_json(doc), parameter)
        assert rec["extra"]["names_item"] == "id"
        assert json.dumps(doc) not in rec["reason"]


async def test_a_remembered_query_follows_the_catalogue(shop: Shop) -> None:
    """The query check is remembered per route, decision and query
    (``gateway.proxy.catalogue_names.checked_query``): the same query after the grant,
    the item or the route's ``query:`` changed is decided on the new ones."""
    target = f"{VEHICLES}?vehicle_type=eq.x&per_page=20"
    await refused(shop, "GET", target, None, "vehicle_type")
    wider = {**GRANT, "resource": "JG-0001", "items": [*GRANT["items"], "vehicle_type"]}
    apply_state(shop.services, {"grants": [wider]})
    r = await send(shop, "GET", target)
    assert r.status_code == 200, r.text
    apply_state(shop.services, {"grants": [{**GRANT, "resource": "JG-0001"}]})
    await refused(shop, "GET", target, None, "vehicle_type")
    # the item now masked for everyone: still not given in the clear, still refused
    apply_state(shop.services, {"grants": [wider]})
    assert (await send(shop, "GET", target)).status_code == 200
    entry = jg_0001()
    entry["items"] = [dict(i, mask="keep_first_char") if i["name"] == "vehicle_type" else i
                      for i in entry["items"]]
    apply_state(shop.services, {"catalogue": [entry]})
    await refused(shop, "GET", target, None, "vehicle_type")
    apply_state(shop.services, {"catalogue": [jg_0001(query=["vehicle_type"])]})
    r = await send(shop, "GET", target)  # per_page is no longer listed
    assert r.status_code == 400 and r.json()["parameter"] == "per_page", r.text
