"""What the second pass and the real-consumer pass left on a shaped route (the attack of
2026-12-05, fourth session), through the gateway on a real socket to a lax upstream on
a real socket that searches every column on a free-text parameter (``q``, ``keyword``,
``search[value]``, an Elasticsearch ``query_string``), orders by whatever an ordering
names (``orderById``, ``sort_by_id``, ``order_by=col desc``), runs GraphQL with aliases,
fragments and string escapes. The demo's
JG-0001 (with an ``id`` item, 编号) and a POST search over it, granted to czt without
``id``, ``driver_id_number``, ``mileage_km``, ``vehicle_type``, with ``driver_name``
masked and ``driver_phone`` encrypted; the provider (jgswj) is unshaped and shows each
oracle is real."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx
import pytest

from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import ROWS, SECRET, VEHICLES, Shop, jg_0001
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.catalogue.test_route_query_post import GRANT, SEARCH, search
from tests.proxy.test_shaped_one_word import ID, with_id
from tests.proxy.test_shaped_second_pass import (
    FLEET,
    JSON,
    LaxUpstream,
    as_json,
    refused,
    send,
    snake,
)
from tests.tokens import access_token
from tests.wiring import apply_state

ROWS_WITH_ID = [dict(r, id=1001 + k) for k, r in enumerate(FLEET)]
# the answer's first plate, ordered by the ID number descending (the upstream's default
# order is ascending): what an ordering by a cut item tells
LAST = ROWS[1]["plate_number"]
FREE_TEXT = re.compile(r"(?:q|keyword|search|kw|wd|s|filter|query|searchtext|"
                       r"search\[value\]|\$search)", re.IGNORECASE)


def graphql_rows(document: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A lax GraphQL reading: string escapes decoded, ``orderBy: "col"`` sorts, every
    ``alias: field`` (in the query or a fragment) renames, fields and ``__typename``
    kept."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), document)
    if m := re.search(r'orderBy\s*:\s*"(\w+)"', text):
        rows = sorted(rows, key=lambda r: str(r.get(m[1])), reverse=True)
    out = []
    for r in rows:
        row: dict[str, Any] = {}
        for alias, column in re.findall(r"(\w+)\s*:\s*(\w+)(?!\s*[\"(])", text):
            if column in r:
                row[alias] = r[column]
        for column in re.findall(r"(?<![:\w])\s*\b(\w+)\b(?!\s*[:(\"])", text):
            if column in r and column not in row:
                row[column] = r[column]
        out.append(row)
    return out


@dataclass
class Searching(LaxUpstream):
    """A lax upstream that searches every column of every record on a free-text
    parameter or member, orders by what an ordering names, and answers GraphQL."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            self.seen.append(target)
            head = {k.strip().lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(head.get("content-length", "0")))
            params = [tuple(unquote_plus(x) for x in p.partition("=")[::2])
                      for p in target.partition("?")[2].split("&") if p]
            doc = json.loads(body) if body and head.get("content-type") == JSON else {}
            rows = self.rows(params, doc)
            out = json.dumps({"items": rows, "total": len(rows)}, ensure_ascii=False).encode()
            fields = "".join(f"{k}: {v}\r\n" for k, v in self.headers)
            writer.write(f"HTTP/1.1 {self.status}\r\nContent-Type: application/json\r\n"
                         f"{fields}Content-Length: {len(out)}\r\nConnection: close\r\n\r\n"
                         .encode("latin-1") + out)
            await writer.drain()
        finally:
            writer.close()

    def rows(self, params: list[tuple[str, str]], doc: Any) -> list[dict[str, Any]]:
        rows = [dict(r) for r in ROWS_WITH_ID]
        texts = [v for n, v in params if FREE_TEXT.fullmatch(n) and not v.startswith("{")]
        texts += self.json_texts(doc)
        for text in (t for t in texts if t):
            rows = [r for r in rows if any(text in str(v) for v in r.values())]
        order = None
        for name, value in params:
            low = name.lower()
            if m := re.fullmatch(r"(?:order|sort)_?by_?(\w+)", low):
                order = (m[1], value == "desc")
            elif low in ("sortby", "order_by", "orderby"):
                column, _, way = value.partition(" ")
                order = (snake(column), way == "desc")
        if order is not None:
            rows.sort(key=lambda r: str(r.get(order[0])), reverse=order[1])
        graphql = [v for n, v in params if n == "query" and v.lstrip().startswith("{")]
        if isinstance(doc, dict) and isinstance(doc.get("query"), str):
            graphql.append(doc["query"])
        for document in graphql:
            rows = graphql_rows(document, rows)
        return rows

    def json_texts(self, node: Any, key: str = "") -> list[str]:
        if isinstance(node, dict):
            return [t for k, v in node.items() for t in self.json_texts(v, k)]
        if isinstance(node, list):
            return [t for v in node for t in self.json_texts(v, key)]
        if key in ("q", "keyword", "value") or (key == "query" and not str(node).startswith("{")):
            return [str(node)]
        return []


@pytest.fixture
def upstream() -> Searching:
    return Searching()


async def passes(shop: Shop, method: str, target: str, body: bytes | None = None,
                 who: str = "czt") -> httpx.Response:
    before = len(shop.upstream.seen)
    r = await send(shop, method, target, body, who=who)
    assert r.status_code == 200, (target, body, r.text)
    assert len(shop.upstream.seen) == before + 1
    return r


def czt_on_both() -> dict[str, Any]:
    return {"catalogue": [with_id(jg_0001()), with_id(search())],
            "grants": [GRANT, {**GRANT, "resource": "JG-0001"}]}


async def test_a_free_text_search_is_refused_where_items_are_withheld(shop: Shop) -> None:
    apply_state(shop.services, czt_on_both())
    # the oracle is real: the upstream searches every column (the provider's answers)
    assert (await passes(shop, "GET", f"{VEHICLES}?q={SECRET}", who="jgswj")).json()[
        "total"] == 1
    assert (await passes(shop, "GET", f"{VEHICLES}?q=450199", who="jgswj")).json()[
        "total"] == 0
    for query, parameter in [
            (f"?q={SECRET}", "q"), (f"?Q={SECRET}", "Q"), (f"?keyword={SECRET}", "keyword"),
            (f"?search={SECRET}", "search"), (f"?kw={SECRET}", "kw"),
            (f"?wd={SECRET}", "wd"), (f"?s={SECRET}", "s"), (f"?filter={SECRET}", "filter"),
            (f"?searchText={SECRET}", "searchText"), (f"?keyWord={SECRET}", "keyWord"),
            (f"?%24search={SECRET}", "%24search"), (f"?query={SECRET}", "query"),
            (f"?search%5Bvalue%5D={SECRET}", "search%5Bvalue%5D"),
            (f"?page=1&q={SECRET[:6]}", "q")]:
        rec = await refused(shop, "GET", VEHICLES + query, None, parameter)
        assert rec["extra"]["free_text"] is True and "free-text search" in rec["reason"]
        assert "names_item" not in rec["extra"]
    for doc, parameter in [
            ({"q": SECRET}, "q"), ({"keyword": int(SECRET)}, "keyword"),
            ({"query": {"query_string": {"query": SECRET}}}, "query.query_string.query"),
            ({"search": {"value": SECRET, "regex": False}}, "search.value"),
            ({"filter": {"q": SECRET}}, "filter.q")]:
        rec = await refused(shop, "POST", SEARCH, as_json(doc), parameter)
        assert rec["extra"]["free_text"] is True
    # nothing searched, or a structured filter on a granted item: as before
    assert (await passes(shop, "GET", f"{VEHICLES}?q=&page=1")).json()["total"] == 2
    r = await passes(shop, "GET", f"{VEHICLES}?filter%5Bbrand%5D=x&sort=-plate_number")
    assert "free_text" not in shop.record(r)["extra"]
    await passes(shop, "POST", SEARCH, as_json({"query": {"term": {"brand": "红旗 H5"}}}))


async def test_a_listed_free_text_parameter_reads_its_words_as_search_terms(
        shop: Shop) -> None:
    """The steward lists ``q`` (the upstream's search reads only what czt may see): it
    passes, its words are search terms (``lost id card`` does not name ``id``), and an
    item named in a field's syntax is still refused."""
    apply_state(shop.services, {**czt_on_both(), "catalogue": [
        with_id(jg_0001(query=["q", "page"])), with_id(search(query=["q", "sort"]))]})
    r = await passes(shop, "GET", f"{VEHICLES}?q={quote('红旗')}&page=1")
    assert r.json()["total"] == 1 and "driver_id_number" not in r.json()["items"][0]
    for text in ("id", "ids", "lost id card", "ID", "my id."):
        await passes(shop, "GET", f"{VEHICLES}?q={quote(text)}")
        await passes(shop, "POST", SEARCH, as_json({"q": text}))
    for text in ("id:1001", "id.eq.1001", "ids:1001", "driver_id_number:4501*"):
        rec = await refused(shop, "GET", f"{VEHICLES}?q={quote(text)}", None, "q")
        assert rec["extra"]["names_item"] in ("id", "driver_id_number")
    # an unlisted one is still refused on the listed route, as any unlisted parameter
    await refused(shop, "GET", f"{VEHICLES}?keyword=x", None, "keyword")


async def test_a_consumer_given_every_item_may_search(shop: Shop) -> None:
    """A grant of every item in the clear withholds nothing: free text passes without a
    list. With an item granted encrypted, the client holding a key searches; the one
    with none (its answers withhold the item) gets no answer to count."""
    clear = [i for i in jg_0001()["items"] if "mask" not in i and "encrypt" not in i]
    names = [i["name"] for i in clear]
    apply_state(shop.services, {
        "catalogue": [{**jg_0001(), "items": [ID, *clear]}],
        "grants": [{**GRANT, "resource": "JG-0001", "items": ["id", *names]}]})
    r = await passes(shop, "GET", f"{VEHICLES}?q={quote('红旗')}&keyword=H5")
    assert r.json()["total"] == 1 and set(r.json()["items"][0]) == {
        "id", "plate_number", "brand", "mileage_km"}  # (the rows have no vehicle type)
    assert "free_text" not in shop.record(r)["extra"]
    phone = [i for i in jg_0001()["items"] if i["name"] == "driver_phone"]
    apply_state(shop.services, {
        "catalogue": [{**jg_0001(), "items": [*clear, *phone]}],
        "grants": [{**GRANT, "resource": "JG-0001", "items": [*names, "driver_phone"]}]})
    r = await passes(shop, "GET", f"{VEHICLES}?q={ROWS[0]['driver_phone']}")
    assert r.json()["total"] == 1 and r.json()["items"][0]["driver_phone"].count(".") == 4
    shop.tokens["portal"] = access_token(shop.services, sub=None, department="czt",
                                         roles=("staff",), client_id="czt-portal")
    r = await send(shop, "GET", f"{VEHICLES}?q={ROWS[0]['driver_phone']}", who="portal")
    assert r.status_code == 502 and ROWS[0]["driver_phone"] not in r.text
    rec = shop.record(r)
    assert rec["extra"]["names_item"] == "driver_phone" and rec["items"] == []


async def test_orderings_and_plurals_around_a_cut_item(shop: Shop) -> None:
    apply_state(shop.services, czt_on_both())
    own = await passes(shop, "GET", f"{VEHICLES}?order_by=driver_id_number%20desc",
                       who="jgswj")
    assert own.json()["items"][0]["plate_number"] == LAST  # ordering bisects the item
    own = await passes(shop, "GET", f"{VEHICLES}?orderById=desc", who="jgswj")
    assert own.json()["items"][0]["id"] == 1002
    for query, parameter, item in [
            ("?orderById=desc", "orderById", "id"), ("?sort_by_id=desc", "sort_by_id", "id"),
            ("?OrderByID=desc", "OrderByID", "id"), ("?orderbyid=desc", "orderbyid", "id"),
            ("?groupById=true", "groupById", "id"),
            ("?sortBy=driverIdNumber", "sortBy", "driver_id_number"),
            ("?order_by=driver_id_number%20desc", "order_by", "driver_id_number"),
            ("?sort_by_driver_id_number=desc", "sort_by_driver_id_number",
             "driver_id_number"),
            (f"?driver_id_numbers={SECRET}", "driver_id_numbers", "driver_id_number"),
            (f"?driverIdNumbers={SECRET}", "driverIdNumbers", "driver_id_number"),
            ("?mileage_kms=1000", "mileage_kms", "mileage_km")]:
        rec = await refused(shop, "GET", VEHICLES + query, None, parameter)
        assert rec["extra"]["names_item"] == item, query
    rec = await refused(shop, "POST", SEARCH, as_json({"orderById": "desc"}), "orderById")
    assert rec["extra"]["names_item"] == "id"
    # orderings by what czt is given, and names holding the word: as before
    for query in ("?orderByPlateNumber=desc", "?sort_by=plate_number", "?order_id=7",
                  "?sortId=2", "?orderBy=brand"):
        await passes(shop, "GET", VEHICLES + query)


async def test_graphql_goes_only_to_a_caller_given_every_item(shop: Shop) -> None:
    apply_state(shop.services, {**czt_on_both(), "catalogue": [
        with_id(jg_0001(query=["query"])), with_id(search(query=["query"]))]})
    escaped = '{ vehicles(orderBy: "driver\\u005fid\\u005fnumber") { plate_number } }'
    own = await passes(shop, "GET", f"{VEHICLES}?query={quote(escaped)}", who="jgswj")
    assert own.json()["items"][0] == {"plate_number": LAST}  # sorted by the ID number
    for document in [
            escaped,  # no reading of the text sees the item
            "{ v: vehicles { x: driver_id_number } }",
            "{ vehicles { ...F } } fragment F on Vehicle { brand: engine_number }",
            "{ vehicles { __typename brand } }",
            "{ vehicles { brand } }",
            "query { vehicles { plate_number: driver_phone } }"]:  # unsealed
        rec = await refused(shop, "GET", f"{VEHICLES}?query={quote(document)}", None,
                            "query")
        assert rec["extra"]["graphql"] is True and "every item" in rec["reason"]
        rec = await refused(shop, "POST", SEARCH, as_json({"query": document}), "query")
        assert rec["extra"]["graphql"] is True
        await refused(shop, "POST", SEARCH, document.encode(), "(body)",
                      "application/graphql")
    # given every item in the clear: the route's GraphQL, aliases and all
    clear = [i for i in jg_0001()["items"] if "mask" not in i and "encrypt" not in i]
    apply_state(shop.services, {
        "catalogue": [{**jg_0001(query=["query"]), "items": clear}],
        "grants": [{**GRANT, "resource": "JG-0001", "items": [i["name"] for i in clear]}]})
    r = await passes(shop, "GET", f"{VEHICLES}?query={quote('{ vehicles { brand } }')}")
    assert r.json()["items"][0] == {"brand": ROWS[0]["brand"]}
