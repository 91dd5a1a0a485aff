"""How a shaped request's free-text searches, orderings, plurals and GraphQL are read
(the attack of 2026-12-05, fourth session; ``catalogue.free_text``,
``catalogue.item_names``, ``catalogue.request_names``). Through the proxy:
tests/proxy/test_shaped_third_pass.py."""

from __future__ import annotations

import json

import pytest

from catalogue.free_text import free_text_path, is_free_text
from catalogue.item_names import NotGranted
from catalogue.query import body_refusal, refusal

ITEMS = ["id", "plate_number", "brand", "name", "driver_name", "driver_id_number",
         "driver_phone"]
GRANTED = ["plate_number", "brand", "driver_name"]
NAMES = NotGranted(ITEMS, GRANTED)
EVERYTHING = NotGranted(ITEMS, ITEMS)
SEALED = NotGranted(ITEMS, ITEMS, sealed=["driver_phone"])  # given only encrypted


@pytest.mark.parametrize("name", [
    "q", "Q", "query", "search", "$search", "keyword", "keywords", "keyWord", "KeyWords",
    "kw", "kwd", "wd", "s", "term", "filter", "searchText", "search_text",
    "searchValue", "searchKey", "searchkeyword", "fulltext", "fullText", "globalFilter",
    "quickFilter", "fuzzyQuery", "queryString", "q1", "search[value]", "filter[q]",
    "filter[search]", "filter.keyword", "columns[0][search][value]", "ｑ", "关键字",
    "关键词", "qs", "where", "criteria", "queryParam", "searchName", "search_name",
    "queryParams", "searchCondition", "fuzzy", "likeValue", "content", "match", "_all",
    "query.bool.must.match._all", "query[bool][must][multi_match]", "query.match.*",
    "condition", "conditions", "conditionValue", "searchVal", "gjz", "mhcx", "cxtj",
    "查询条件"])
def test_free_text_names(name: str) -> None:
    assert is_free_text(name), name


@pytest.mark.parametrize("name", [
    "page", "per_page", "sort", "order", "key", "value", "text", "id", "brand",
    "filter[brand]", "q[brand_cont]", "q[s]", "search[regex]", "searchType",
    "search_field", "filterType", "queryId", "termId", "password", "passwords", "ss",
    "plate_number", "keyId", "filter[plate_number][eq]", "$filter", "all", "search[name]",
    "where[brand]", "queryParams[beginTime]", "match[brand]", "query.match.brand",
    "params[beginTime]", "condition[brand]", "post[content]", "input", "params[dataScope]"])
def test_other_names(name: str) -> None:
    assert not is_free_text(name), name


def test_json_paths() -> None:
    assert free_text_path(["query", "query_string", "query"])
    assert free_text_path(["query", "multi_match", "query"])
    assert free_text_path(["search", "value"]) and free_text_path(["filter", "q"])
    assert not free_text_path(["query", "term", "brand"])
    assert not free_text_path(["query", "bool", "must", "term", "brand"])
    assert not free_text_path(["filter", "brand"]) and not free_text_path(["s"])
    assert free_text_path(["query", "bool", "must", "match", "_all"])
    assert free_text_path(["fuzzy"]) and free_text_path(["likeValue"])
    assert not free_text_path(["a", "fuzzy"]) and not free_text_path(["a", "content"])


@pytest.mark.parametrize(("text", "item"), [
    # a one-word item's word alone is a search term
    ("id", None), ("ids", None), ("IDs", None), ("lost id card", None), ("my id.", None),
    ("id card", None), ("name", None), ("names of drivers", None), ("-id", None),
    # in a field's syntax, or in a filter's words, it is a name
    ("id:1001", "id"), ("ID:1001", "id"), ("id.eq.1001", "id"), ("id=3", "id"),
    ("id>3", "id"), ("ids:1", "id"), ("id__in", "id"), ("max_id", "id"),
    ("name:李*", "name"),
    # an item of several words is a name anywhere
    ("driver_id_number", "driver_id_number"), ("driver_id_number:4501*", "driver_id_number"),
    ("driverIdNumbers", "driver_id_number"), ("driver id number", None)])
def test_free_text_values(text: str, item: str | None) -> None:
    assert NAMES.named(text, free=True) == item, text
    assert EVERYTHING.named(text, free=True) is None


@pytest.mark.parametrize(("text", "item"), [
    ("orderById", "id"), ("sort_by_id", "id"), ("OrderByID", "id"), ("orderbyid", "id"),
    ("sortbyid", "id"), ("groupById", "id"), ("order_by_ids", "id"),
    ("sort_by_driver_id_number", "driver_id_number"),
    ("sortbydriveridnumber", "driver_id_number"), ("orderByName", "name"),
    ("driver_id_numbers", "driver_id_number"), ("DRIVER_ID_NUMBERS", "driver_id_number"),
    ("driverIdNumbers", "driver_id_number"), ("driver_id_numbers_in", "driver_id_number"),
    ("first_driver_id_numbers", "driver_id_number"), ("driver_phones", "driver_phone"),
    # not an ordering by a cut item
    ("orderBy", None), ("sortBy", None), ("order_by", None), ("orderByPlateNumber", None),
    ("sort_by_brand", None), ("order_id", None), ("sortId", None), ("orderByDriverName", None),
    ("group_id", None), ("orderbyplate", None)])
def test_orderings_and_plurals(text: str, item: str | None) -> None:
    assert NAMES.named(text) == item, text


@pytest.mark.parametrize(("text", "item"), [
    # JPA's nested property paths: the words across the dots (fifth session)
    ("driver.idNumber", "driver_id_number"), ("driver.idNumber,desc", "driver_id_number"),
    ("Driver.Id_Number", "driver_id_number"), ("driver.id.number", "id"),
    ("filter.driver.idNumbers", "driver_id_number"), ("driver.phone", "driver_phone"),
    # PostgREST's dots keep their reading: a filter by the cut id, not by a granted column
    ("id.eq.3", "id"), ("id.desc", "id"), ("or=(brand.eq.x,id.eq.3)", "id"),
    ("plate_number.eq.x", None), ("brand.desc", None), ("or=(brand.eq.x,plate_number.eq.y)",
                                                        None),
    ("plate_number.asc,brand.desc", None), ("driver.name.eq.x", "name"),
    ("driver_name.number", None), ("vehicle.brand", None), ("driver.id", "id"),
    ("driver.plate_number", None)])
def test_dotted_paths(text: str, item: str | None) -> None:
    assert NAMES.named(text) == item, text
    assert EVERYTHING.named(text) is None


def test_free_text_parameters_are_refused_unless_listed() -> None:
    for query, parameter in [("q=4501", "q"), ("page=1&keyword=4501", "keyword"),
                             ("search%5Bvalue%5D=4501", "search%5Bvalue%5D"),
                             ("filter=4501", "filter"), ("%24search=x", "%24search")]:
        found = refusal(query, None, NAMES)
        assert found is not None and found.free_text and found.parameter == parameter
        assert found.item is None and "4501" not in found.reason
        # a caller given every item (encrypted ones too): nothing withheld to search
        assert refusal(query, None, EVERYTHING) is None
        assert refusal(query, None, SEALED) is None
    listed = ["q", "page", "keyword", "search", "filter", "$search"]
    for query in ("q=4501", "page=1&keyword=4501", "q=lost+id+card", "q=id", "q=ids"):
        assert refusal(query, listed, NAMES) is None, query
    found = refusal("q=id%3A3", listed, NAMES)
    assert found is not None and found.item == "id"
    # an empty search searches nothing; a structured filter names its column
    assert refusal("q=&keyword=+", None, NAMES) is None
    assert refusal("filter%5Bbrand%5D=x&q%5Bbrand_cont%5D=y", None, NAMES) is None


def body(doc: object, allowed: list[str] | None = None, names: NotGranted = NAMES):
    return body_refusal(json.dumps(doc).encode(), "application/json", None, "", allowed,
                        names)


def test_free_text_members_of_a_body() -> None:
    for doc, where in [({"q": "4501"}, "q"), ({"keyword": 4501}, "keyword"),
                       ({"query": {"query_string": {"query": "4501"}}},
                        "query.query_string.query"),
                       ({"search": {"value": "4501", "regex": False}}, "search.value"),
                       ({"filter": [{"q": "4501"}]}, "filter[0].q")]:
        found = body(doc)
        assert found is not None and found.free_text and found.parameter == where, doc
        assert body(doc, names=EVERYTHING) is None
    top = ["q", "keyword", "query", "search", "filter"]
    assert body({"q": "lost id card"}, top) is None
    assert body({"query": {"query_string": {"query": "4501"}}}, top) is None
    # an array's members stand under no listed parameter
    found = body([{"q": "4501"}], top)
    assert found is not None and found.free_text
    for doc in ({"q": ""}, {"q": None}, {"q": True}, {"query": {"term": {"brand": "x"}}},
                {"filter": {"brand": "x"}}):
        assert body(doc) is None, doc


def test_graphql_goes_only_to_a_caller_given_every_item_in_the_clear() -> None:
    document = "query=%7B%20v%20%7B%20brand%20%7D%20%7D"
    for names in (NAMES, SEALED):
        found = refusal(document, ["query"], names)
        assert found is not None and found.graphql and "every item" in found.reason
        found = body({"query": "{ v { brand } }"}, ["query"], names)
        assert found is not None and found.graphql
        found = body_refusal(b"{ v { brand } }", "application/graphql", None, "",
                             ["query"], names)
        assert found is not None and found.graphql
    assert refusal(document, ["query"], EVERYTHING) is None
    assert body({"query": "{ v { brand } }"}, ["query"], EVERYTHING) is None
    # unlisted: refused to everyone, as before
    found = refusal(document, None, EVERYTHING)
    assert found is not None and found.graphql and "unless the route lists" in found.reason
