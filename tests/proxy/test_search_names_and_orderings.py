"""The names Chinese systems' search boxes send, and Spring Data's several orderings, on
a shaped route (the walk of 2026-12-05, fourth session; ``catalogue.free_text``,
``catalogue.query``'s :data:`~catalogue.query.REPEATABLE`).

The upstream on a real socket reads the request as a Spring Boot list does: every
``sort`` in turn (the first the primary ordering), ``page``/``size``, and any other
parameter, or any string in a JSON body, as text searched in every column (a MyBatis
``LIKE`` over each). czt is granted the vehicles without the driver's ID number, the
driver's name masked (``tests.proxy.test_table_clients.catalogued``); the provider
(jgswj, unshaped) shows each refusal closes a real oracle."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import SECRET, Shop, Upstream, jg_0001
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.proxy.test_shaped_second_pass import snake
from tests.proxy.test_table_clients import (
    ROUTES,
    ROWS,
    catalogued,
    get,
    listed,
    plates,
    refused,
)
from tests.wiring import apply_state

SPRING = ROUTES["SD"][0]


def strings(node: Any) -> list[str]:
    """Every string of a JSON value (what a search over the body's text reads)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


@dataclass
class Spring(Upstream):
    """A Spring Boot list: ``Pageable`` with every ``sort``, and a search of every
    column by any other parameter or a JSON body's text."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            target = head.split(" ", 2)[1]
            self.seen.append(target)
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            body = (await reader.readexactly(int(m[1]))).decode() if m else ""
            pairs = parse_qsl(target.partition("?")[2], keep_blank_values=True)
            searched = [v for k, v in pairs if k not in ("page", "size", "sort") and v]
            if body.startswith("{"):
                searched += strings(json.loads(body))
            else:
                pairs += parse_qsl(body, keep_blank_values=True)
            rows = [r for r in ROWS
                    if all(any(t in str(v) for v in r.values()) for t in searched)]
            # Spring's Sort: the first ordering the primary one
            for sort in reversed([v for k, v in pairs if k == "sort"]):
                column, _, way = sort.partition(",")
                rows.sort(key=lambda r: str(r[snake(column)]), reverse=way == "desc")
            answer = json.dumps({"content": rows, "totalElements": len(rows)},
                                ensure_ascii=False).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(answer)
                         + answer)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
def upstream() -> Spring:
    return Spring()


# as each is sent: a search box's name, the ID number searched by it
SEARCH_NAMES = ["qs", "queryParam", "searchName", "where", "criteria", "fuzzy", "keywords",
                "searchKey", "searchValue", "content", "likeValue", "search_name",
                "queryParams", "query[bool][must][match][_all]", "query.bool.must.match._all",
                "query[bool][must][multi_match]", "query.match.*",
                "query[bool][must][simple_query_string]"]


async def post_json(shop: Shop, body: Any, who: str = "czt") -> httpx.Response:
    return await shop.http.post(
        f"http://127.0.0.1:{shop.port}/s/vehicles{SPRING}",
        headers={"Authorization": f"Bearer {shop.tokens[who]}"}, json=body)


def json_route(shop: Shop) -> None:
    """The Spring list also as a POST taking a JSON search (Elasticsearch's DSL)."""
    apply_state(shop.services, {"catalogue": [
        {**jg_0001(path=SPRING, records="content", method="POST"), "code": "JG-0120"}],
        "grants": [{"resource": "JG-0120", "consumer": "czt", "purpose": "费用核算",
                    "items": ["plate_number", "brand"], "until": "2027-12-31"}]})


async def test_search_box_names_are_refused_to_a_caller_with_items_withheld(
        shop: Shop) -> None:
    """Failed on the base: ``qs=``, ``queryParam=``, ``where=``, ``fuzzy=``,
    ``content=``, ``likeValue=``, ``match._all`` ... reached the upstream (200, one
    record: the ID number is some driver's)."""
    catalogued(shop)
    for name in SEARCH_NAMES:
        # the oracle is real: the provider's search finds the ID number's one vehicle
        own = await get(shop, "SD", f"{name}={SECRET}", who="jgswj")
        assert own.status_code == 200 and own.json()["totalElements"] == 1, (name, own.text)
        problem = await refused(shop, "SD", f"page=0&size=20&{name}={SECRET}", name)
        assert "全文检索" in problem["detail"], problem
    # an empty search box searches nothing and passes
    answer = await listed(shop, "SD", "page=0&size=20&keywords=&searchValue=")
    assert answer["totalElements"] == 3
    # a filter by a granted column under those words stays a filter
    for query in ("where[brand]=红旗", "search[name]=x", "queryParams[beginTime]=2026-01-01",
                  "query[match][brand]=红旗"):
        r = await get(shop, "SD", query)
        assert r.status_code == 200, (query, r.text)
    # Elasticsearch's DSL in a JSON body: a match of every field
    json_route(shop)
    for body, where in [
            ({"query": {"bool": {"must": [{"match": {"_all": SECRET}}]}}},
             "query.bool.must[0].match._all"),
            ({"query": {"bool": {"must": {"multi_match": SECRET}}}},
             "query.bool.must.multi_match"),
            ({"fuzzy": SECRET}, "fuzzy"), ({"likeValue": SECRET}, "likeValue"),
            ({"content": SECRET}, "content"), ({"qs": SECRET}, "qs")]:
        own = await post_json(shop, body, who="jgswj")
        assert own.json()["totalElements"] == 1, (body, own.text)
        before = len(shop.upstream.seen)
        r = await post_json(shop, body)
        assert r.status_code == 400, (body, r.text)
        assert (r.json()["type"], r.json()["parameter"]) == (
            "urn:govgate:error:query_refused", where), r.text
        assert len(shop.upstream.seen) == before
    r = await post_json(shop, {"query": {"match": {"brand": "红旗"}}})
    assert r.status_code == 200 and r.json()["totalElements"] == 2, r.text


async def test_spring_datas_several_orderings(shop: Shop) -> None:
    """Failed on the base: ``sort=brand,desc&sort=plate_number,asc`` was refused as
    named twice (400)."""
    catalogued(shop)
    # the upstream takes every ordering: the provider's list by the ID number first
    own = (await get(shop, "SD", "sort=driver_id_number,desc&sort=plate_number,asc",
                     who="jgswj")).json()
    assert plates(own["content"]) == ["桂A·G4096", "桂A·G2048", "桂A·G1024"]
    for query, expected in [
            ("page=0&size=20&sort=brand,desc&sort=plate_number,asc",
             ["桂A·G1024", "桂A·G4096", "桂A·G2048"]),
            ("sort=plateNumber%2Cdesc&sort=brand", ["桂A·G4096", "桂A·G2048", "桂A·G1024"]),
            ("sort=brand&page=0&sort=plate_number,desc&sort=brand,asc",
             ["桂A·G2048", "桂A·G4096", "桂A·G1024"])]:
        before = len(shop.upstream.seen)
        answer = await listed(shop, "SD", query)
        assert plates(answer["content"]) == expected, query
        assert shop.upstream.seen[before:] == [f"{SPRING}?{query}"]  # every one sent
    # any of them naming an item czt is not given in the clear: refused
    for query in ("sort=plate_number,desc&sort=driver_id_number,asc",
                  "sort=brand&sort=driverIdNumber",
                  "sort=brand&sort=plate_number&sort=driverName%2Cdesc",
                  "sort=brand&sort=mileage_km,desc"):
        await refused(shop, "SD", query, "sort")
    # a repeat the framework does not read as "all of them" stays refused
    for query, parameter in [("sort=brand&sort[x]=plate_number", "sort[x]"),
                             ("sort[x]=brand&sort=plate_number", "sort"),
                             ("size=1&size=50", "size"), ("page=0&PAGE=1", "PAGE"),
                             ("columns[0][data]=plate_number&columns[0][data]=brand",
                              "columns[0][data]")]:
        await refused(shop, "SD", query, parameter)
    # in a JSON body a key keeps one value: the query's sort and the body's are two
    json_route(shop)
    before = len(shop.upstream.seen)
    r = await shop.http.post(
        f"http://127.0.0.1:{shop.port}/s/vehicles{SPRING}?sort=brand",
        headers={"Authorization": f"Bearer {shop.tokens['czt']}"},
        json={"sort": "plate_number"})
    assert r.status_code == 400 and r.json()["parameter"] == "sort", r.text
    assert len(shop.upstream.seen) == before
    # a form body's sort beside the query's: Spring reads both
    r = await shop.http.post(
        f"http://127.0.0.1:{shop.port}/s/vehicles{SPRING}?sort=brand,desc",
        headers={"Authorization": f"Bearer {shop.tokens['czt']}",
                 "Content-Type": "application/x-www-form-urlencoded"},
        content=b"sort=plate_number")
    assert r.status_code == 200, r.text
    assert plates(r.json()["content"]) == ["桂A·G1024", "桂A·G4096", "桂A·G2048"]


async def test_forward_auth_reads_several_orderings_and_search_names_alike(shop: Shop) -> None:
    """``/auth/verify`` answers what the proxy does: a shaped route's query passes its
    check (then the caller is sent to the proxy: ``shaping_required``) or is refused
    (failed on the base: ``query_refused`` for the several orderings, ``shaping_required``
    for ``fuzzy=``)."""
    catalogued(shop)
    for query, kind in [("sort=brand,desc&sort=plate_number,asc", "shaping_required"),
                        ("sort=brand&sort=driver_id_number,desc", "query_refused"),
                        (f"fuzzy={SECRET}", "query_refused"),
                        (f"query.match._all={SECRET}", "query_refused"),
                        ("sort=brand&sort[x]=plate_number", "query_refused")]:
        r = await shop.http.get(f"http://127.0.0.1:{shop.port}/auth/verify", headers={
            "Authorization": f"Bearer {shop.tokens['czt']}", "X-Original-Method": "GET",
            "X-Original-URI": f"/s/vehicles{SPRING}?{query}"})
        assert (r.status_code, r.json()["type"]) == (403, f"urn:govgate:error:{kind}"), (
            query, r.text)
