"""The pure readings behind a shaped route's second pass: which text names an item the
caller is not given in the clear (``catalogue.item_names``), what is a GraphQL document
(``catalogue.graphql``), what counts as pagination (``catalogue.pagination``), and the
query string read whole (``catalogue.request_names``). The proxy's use of them is
tests/proxy/test_shaped_second_pass.py."""

from __future__ import annotations

import pytest

from catalogue.graphql import is_graphql
from catalogue.item_names import NotGranted
from catalogue.pagination import count_header, is_count, is_pagination
from catalogue.query import refusal

ITEMS = ["plate_number", "brand", "name", "driver_name", "driver_id_number", "driver_phone"]
NAMES = NotGranted(ITEMS, ["plate_number", "brand", "driver_name", "driver_phone"])


@pytest.mark.parametrize(("text", "item"), [
    ("driver_id_number", "driver_id_number"), ("-driver_id_number", "driver_id_number"),
    ("driver_id_number__startswith", "driver_id_number"),  # Django
    ("driver_id_number_start", "driver_id_number"),  # Ransack
    ("driverIdNumber", "driver_id_number"), ("DriverIDNumber", "driver_id_number"),
    ("DRIVER-ID-NUMBER", "driver_id_number"), ("driveridnumber", "driver_id_number"),
    ("ｄｒｉｖｅｒ＿ｉｄ＿ｎｕｍｂｅｒ", "driver_id_number"),
    ("vehicles.driver_id_number desc", "driver_id_number"),
    ("brand:driver_id_number", "driver_id_number"),
    ("driver_name_or_name_cont", "name"),  # the granted driver_name out, "name" stays
    ("name", "name"),
    # letters Java's equalsIgnoreCase reads as i and s (catalogue.routes.fold)
    ("drıver_id_number", "driver_id_number"), ("DRİVER_ID_NUMBER", "driver_id_number"),
    ("drıver_ıd_number_start", "driver_id_number"), ("drıverIdNumber", "driver_id_number"),
    ("driver_id_number_ſtart", "driver_id_number"), ("nAme", "name"), ("namе", None),
    ("driver_name_cont", None), ("driver_phone", None), ("plate_number.desc", None),
    ("driver id number", None),  # free text: the words apart
    ("李建国 桂A·G1024", None), ("", None)])
def test_a_text_names_an_item_by_its_words_in_a_row(text: str, item: str | None) -> None:
    assert NAMES.named(text) == item
    assert NotGranted(ITEMS, ITEMS).named(text) is None  # all given in the clear


@pytest.mark.parametrize(("text", "graphql"), [
    ("{ vehicles { brand: driver_id_number } }", True), ("query{x}", True),
    ("query Fleet($n: Int) { v }", True), ("mutation { a }", True),
    ("# comment\n , { ...Parts }", True), ("\ufeff fragment F on V { a }", True),
    ('{"a": 1}', False), ("{}", False), ("{ 1 }", False), ("query about cars", False),
    ("queryX { a }", False), ("Query { a }", False), ("桂A", False)])
def test_a_graphql_document_is_recognised_by_its_first_token(text: str,
                                                              graphql: bool) -> None:
    assert is_graphql(text) is graphql


def test_pagination_counts() -> None:
    for key in ("total", "totalCount", "total-count", "page_size", "pageNum", "has_more",
                "isLastPage", "next"):
        assert is_pagination(key), key
    # a wrapper's outcome as a count (若依's code, success) is kept; its text is not
    for key in ("code", "errcode", "success"):
        assert is_pagination(key), key
    for key in ("first_id_number", "contact", "score", "cursor", "msg", "message"):
        assert not is_pagination(key), key
    assert all(is_count(v) for v in (None, True, False, 0, 2**31 - 1))
    assert not any(is_count(v) for v in (-1, 2**31, 13800138000, 1.5, "2", [1]))
    for name, value in (("x-total-count", b"2"), ("x-pagination-per-page", b" 20 "),
                        ("x-ratelimit-remaining", b"99"), ("ratelimit-reset", b"30"),
                        ("retry-after", b"5"), ("x-next-page", b"3")):
        assert count_header(name, value), name
    for name, value in (("x-total-count", b"13800138000"), ("x-total-count", b"2, 3"),
                        ("x-total-count", b""), ("x-total-count", b"-1"),
                        ("location", b"2"), ("x-upstream", b"1"),
                        ("retry-after", b"Fri, 31 Dec 1999 23:59:59 GMT")):
        assert not count_header(name, value), (name, value)


def test_a_query_string_is_read_whole() -> None:
    for query, parameter, item in [
            ("driver_id_number=eq.4501", "driver_id_number", "driver_id_number"),
            ("filter%5Bdriver_id_number%5D=1", "filter%5Bdriver_id_number%5D",
             "driver_id_number"),
            ("limit=1;order=driverIdNumber.desc", "order", "driver_id_number"),
            ("page=x&=driver_id_number", "(no name)", "driver_id_number")]:  # no name
        found = refusal(query, None, NAMES)
        assert found is not None and (found.parameter, found.item) == (parameter, item), query
    found = refusal("query=%7B%20v%20%7B%20brand%20%7D%20%7D", None, NAMES)
    assert found is not None and found.graphql and found.parameter == "query"
    found = refusal('extensions={"persistedQuery":{"sha256Hash":"ab"}}', None, NAMES)
    assert found is not None and found.graphql
    # the hash in a name: qs (Express) nests brackets and, with allowDots, dots
    # (Apollo 2/3 took an object); two bracketed ones are refused as named twice
    for query in ("extensions.persistedQuery.version=1&extensions.persistedQuery.sha256Hash=ab",
                  "extensions[persisted_query][sha256Hash]=ab"):
        found = refusal(query, None, NAMES)
        assert found is not None and found.graphql, query
    # search text about persisted queries is not one
    # (a free-text search the route lists: catalogue.free_text)
    assert refusal("q=persisted+query+tutorial", ["q"], NAMES) is None
    # GraphQL on a route listing query goes only to a caller given every item in the
    # clear (the third pass)
    found = refusal("query=%7B%20v%20%7B%20brand%20%7D%20%7D", ["query"], NAMES)
    assert found is not None and found.graphql
    assert refusal("query=%7B%20v%20%7B%20brand%20%7D%20%7D", ["query"],
                   NotGranted(NAMES.items, NAMES.items)) is None
    assert refusal("plate_number=eq.x&query=brand&limit=2",
                   ["plate_number", "query", "limit"], NAMES) is None
