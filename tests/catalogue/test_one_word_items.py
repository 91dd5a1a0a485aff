"""A one-word item not given in the clear (``id``, ``name``) as a request names it
(shaped routes for real consumers, 2026-12-05; ``catalogue.item_names``): the item
itself, in any letter case, plural, or beside the words of a filter, range, lookup or
sort (``id__in``, ``id_gteq``, ``idList``, ``max_id``), but not a longer name of which
the word is only a part (``pageId``, ``order_id``, ``idCard``). Through the proxy:
tests/proxy/test_shaped_one_word.py."""

from __future__ import annotations

import pytest

from catalogue.item_names import NotGranted
from catalogue.query import refusal
from catalogue.request_names import MEMO_PARAMETER_CHARS, MEMO_PARAMETERS, query_refusal

ITEMS = ["id", "plate_number", "brand", "name", "driver_name", "driver_id_number"]
NAMES = NotGranted(ITEMS, ["plate_number", "brand", "driver_name"])


@pytest.mark.parametrize("text", [
    "id", "ID", "Id", "iD", "_id", "-id", "+id", "ids", "IDs", "id.eq", "id__in",
    "id__gte", "id__isnull", "id_eq", "id_not_eq", "id_in", "id_not_in", "idIn",
    "idNotIn", "id_gteq", "ID_LT", "id_i_cont", "id_start", "id_present", "id_min",
    "idMax", "max_id", "min_id", "since_id", "before_id", "id_from", "idTo",
    "id_range", "id_between", "idList", "id_list", "id_array", "id1", "id_2",
    "by_id", "plate_number_or_id_eq", "brand_and_id", "id_desc", "idAsc", "ｉｄ",
    "ıd", "vehicles.id desc", "brand:id"])
def test_the_item_with_the_words_of_a_filter_names_it(text: str) -> None:
    assert NAMES.named(text) == "id", text
    assert NotGranted(ITEMS, ITEMS).named(text) is None


@pytest.mark.parametrize("text", [
    "pageId", "page_id", "order_id", "orderId", "OrderID", "userId", "parent_id",
    "idCard", "id_card", "idCardNo", "identity", "valid", "video_id", "idx", "sortId",
    "order_by", "paid", "idea", "grid_id", "order_id_in", "pageId_gt", "list_of_orders",
    "idNo", "id_no"])
def test_a_longer_name_holding_the_word_does_not_name_it(text: str) -> None:
    assert NAMES.named(text) is None, text


@pytest.mark.parametrize(("text", "item"), [
    ("name", "name"), ("names", "name"), ("name_cont", "name"), ("nameLike", "name"),
    ("name__icontains", "name"), ("driver_name_or_name_cont", "name"),
    ("driver_name_cont", None), ("custodian_name", None), ("nameplate", None),
    ("name_card", None), ("driver_id_number_in", "driver_id_number"),
    ("first_driver_id_number", "driver_id_number")])  # a longer item: words in a row
def test_other_items(text: str, item: str | None) -> None:
    assert NAMES.named(text) == item


def test_query_strings_and_bodies() -> None:
    for query in ("pageId=2", "sort=order_id", "orderId=", "page_id=3&order=-orderId",
                  "idCard=1"):
        assert refusal(query, None, NAMES) is None, query
    for query, parameter in [("id=1", "id"), ("ID=1", "ID"), ("filter[id]=1", "filter[id]"),
                             ("id__in=1,2", "id__in"), ("sort=-id", "sort"),
                             ("order=id.desc", "order"), ("q=id.eq.3", "q"),
                             ("ids[]=1", "ids[]"), ("idList=1,2", "idList")]:
        found = refusal(query, None, NAMES)
        assert found is not None and (found.parameter, found.item) == (parameter, "id"), query


def test_a_parameters_reading_is_remembered_within_bounds() -> None:
    names = NotGranted(ITEMS, ["brand"])
    for n in range(MEMO_PARAMETERS + 10):
        assert query_refusal(f"page={n}&per_page=20", names, False) is None
    assert 0 < len(names.memo) <= MEMO_PARAMETERS
    long = "page=" + "x" * MEMO_PARAMETER_CHARS
    assert query_refusal(long, names, False) is None and (long, False) not in names.memo
    # remembered apart for a route taking GraphQL and one not (GraphQL goes only to a
    # caller given every item in the clear: the third pass)
    document = "query=%7B%20v%20%7B%20brand%20%7D%20%7D"
    everything = NotGranted(ITEMS, ITEMS)
    for _ in range(2):
        found = query_refusal(document, everything, False)
        assert found is not None and found.graphql
        assert query_refusal(document, everything, True) is None
    found = query_refusal("per_page=20&sort=-id", names, False)
    assert found is not None and (found.parameter, found.item) == ("sort", "id")
