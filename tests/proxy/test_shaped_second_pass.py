"""What still passed a shaped route (the attack of 2026-12-05, second pass), through the
gateway on a real socket to a lax upstream on a real socket that reads whatever a
request names: nested filters (Rails' and Django's filter backends, Elasticsearch-like
bodies), GraphQL aliases, orderings; and answers numbers beside the records and header
fields whose values carry data. The demo's JG-0001 (``GET /api/vehicles``) and a POST
search over it (JG-0009), granted to czt without the driver's ID number, the mileage
or the vehicle type, with the driver's name masked; the provider (jgswj) is unshaped
and shows each oracle is real."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx
import pytest

from catalogue.item_names import NotGranted
from catalogue.request_names import MAX_DEPTH, MAX_NODES, Pairs, json_refusal
from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import ROWS, SECRET, VEHICLES, Shop, Upstream
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.catalogue.test_route_query_post import GRANT, SEARCH, search
from tests.tokens import access_token
from tests.wiring import apply_state

ENGINE = "LFV2A21K8G301234"  # a column the catalogue does not describe at all
FLEET = [dict(r, engine_number=f"{ENGINE}{k}", mileage_km=1000 * (k + 1))
         for k, r in enumerate(ROWS)]
PHONE = "13800138000"
JSON = "application/json"


def snake(name: str) -> str:
    """``driverIdNumber`` as a Jackson-style upstream maps it: driver_id_number."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()


@dataclass
class Lax:
    """What a lax upstream reads from one request: filters, an ordering, GraphQL
    aliases, wherever they stand."""

    filters: list[tuple[str, str, str]] = field(default_factory=list)  # column, op, value
    order: str | None = None
    aliases: list[tuple[str, str]] = field(default_factory=list)

    def graphql(self, text: str) -> None:
        self.aliases += re.findall(r"(\w+)\s*:\s*(\w+)", text)

    def query(self, text: str) -> None:
        for part in (p for p in text.split("&") if p):
            name, _, value = (unquote_plus(x) for x in part.partition("="))
            if m := re.fullmatch(r"filter\[(\w+)\]", name):
                self.filters.append((snake(m[1]), "eq", value))
            elif name in ("order", "sort"):
                self.order = value.replace(".desc", "").replace(".asc", "")
            elif name == "query":
                self.graphql(value)
            elif value.startswith("eq."):
                self.filters.append((snake(name), "eq", value[3:]))

    def json(self, node: Any, key: str = "") -> None:
        if isinstance(node, list):
            for v in node:
                self.json(v, key)
        elif isinstance(node, dict):
            if "field" in node and "value" in node:  # a filter list's entry
                self.filters.append((snake(node["field"]), "eq", str(node["value"])))
            for k, v in node.items():
                if key in ("filter", "q", "term") and not isinstance(v, dict | list):
                    col, _, op = k.partition("__")  # Django's lookups
                    self.filters.append((snake(col), op or "eq", str(v)))
                elif k in ("sort", "ordering") and isinstance(v, str):
                    self.order = v
                elif k == "query" and isinstance(v, str):
                    self.graphql(v)
                else:
                    self.json(v, k)

    def rows(self) -> list[dict[str, Any]]:
        rows = [dict(r) for r in FLEET]
        for col, op, value in self.filters:
            rows = [r for r in rows if (str(r.get(col)) == value if op == "eq"
                                        else str(r.get(col)).startswith(value))]
        if self.order:
            col = snake(self.order.lstrip("-"))
            rows.sort(key=lambda r: str(r.get(col)), reverse=self.order.startswith("-"))
        if self.aliases:
            rows = [{alias: r.get(col) for alias, col in self.aliases} for r in rows]
        return rows


@dataclass
class LaxUpstream(Upstream):
    """An upstream reading the query string and a JSON, form or GraphQL body as
    :class:`Lax` does; it answers ``status`` and ``headers`` with the rows in the demo's
    envelope plus ``envelope``."""

    status: str = "200 OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    envelope: dict[str, Any] = field(default_factory=dict)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            self.seen.append(target)
            head = {k.strip().lower(): v.strip()
                    for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            body = await reader.readexactly(int(head.get("content-length", "0")))
            lax = Lax()
            lax.query(target.partition("?")[2])
            media = head.get("content-type", "").split(";")[0]
            if media == JSON and body:
                lax.json(json.loads(body))
            elif media == "application/x-www-form-urlencoded":
                lax.query(body.decode())
            elif media == "application/graphql":
                lax.graphql(body.decode())
            rows = lax.rows()
            out = json.dumps({"items": rows, "total": len(rows), **self.envelope},
                             ensure_ascii=False).encode()
            fields = "".join(f"{k}: {v}\r\n" for k, v in self.headers)
            writer.write(f"HTTP/1.1 {self.status}\r\nContent-Type: application/json\r\n"
                         f"{fields}Content-Length: {len(out)}\r\nConnection: close\r\n\r\n"
                         .encode("latin-1") + out)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
def upstream() -> LaxUpstream:
    return LaxUpstream()


async def send(shop: Shop, method: str, target: str, body: bytes | None = None,
               content_type: str = JSON, who: str = "czt") -> httpx.Response:
    headers = {"Authorization": f"Bearer {shop.tokens[who]}"}
    if body is not None:
        headers["Content-Type"] = content_type
    return await shop.http.request(method, f"http://127.0.0.1:{shop.port}{target}",
                                   headers=headers, content=body)


def as_json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


async def refused(shop: Shop, method: str, target: str, body: bytes | None, parameter: str,
                  content_type: str = JSON) -> dict[str, Any]:
    """Refused (400 ``query_refused`` naming ``parameter``) before the upstream is
    called; the audit record says why, and its reason and extra hold no value the
    request sent."""
    before = len(shop.upstream.seen)
    r = await send(shop, method, target, body, content_type)
    assert r.status_code == 400, (target, body, r.text)
    problem = r.json()
    assert problem["type"] == "urn:govgate:error:query_refused", problem
    assert problem["parameter"] == parameter, (body, problem)
    assert len(shop.upstream.seen) == before
    rec = shop.record(r)
    assert (rec["outcome"], rec["status"], rec["items"]) == ("error", 400, [])
    assert rec["extra"]["query_refused"] == parameter
    # (``extra.path`` keeps the query string as sent, as every proxy record does)
    said = [rec["reason"], {k: v for k, v in rec["extra"].items() if k != "path"}]
    assert SECRET not in json.dumps(said) and SECRET not in r.text
    return rec


async def test_a_consumer_cannot_query_by_an_item_it_is_not_given(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [search()], "grants": [GRANT]})
    by_id = as_json({"filter": {"driver_id_number": SECRET}})
    # the oracle is real: the upstream filters by the nested key (the provider's answer)
    own = await send(shop, "POST", SEARCH, by_id, who="jgswj")
    assert own.status_code == 200 and own.json()["total"] == 1
    for doc, parameter, item in [
            ({"filter": {"driver_id_number": SECRET}}, "filter.driver_id_number",
             "driver_id_number"),
            ({"q": {"driver_id_number__startswith": "4501"}},  # Django's lookups
             "q.driver_id_number__startswith", "driver_id_number"),
            ({"filters": [{"field": "driverIdNumber", "value": SECRET}]},
             "filters[0].field", "driver_id_number"),
            ({"query": {"bool": {"must": [{"term": {"DRIVER_ID_NUMBER": SECRET}}]}}},
             "query.bool.must[0].term.DRIVER_ID_NUMBER", "driver_id_number"),
            ({"sort": "-driver_id_number"}, "sort", "driver_id_number"),  # bisects it
            ({"filter": {"mileage_km": 2000}}, "filter.mileage_km", "mileage_km"),
            # masked for czt (李**): filtering by the whole name would confirm it
            ({"filter": {"driver_name": "李建国"}}, "filter.driver_name", "driver_name")]:
        rec = await refused(shop, "POST", SEARCH, as_json(doc), parameter)
        assert rec["extra"]["names_item"] == item
        assert f"item {item!r}" in rec["reason"]
    await refused(shop, "POST", SEARCH, b"filter[driver_id_number]=" + SECRET.encode(),
                  "filter[driver_id_number]", "application/x-www-form-urlencoded")
    for query, parameter in [(f"?driver_id_number=eq.{SECRET}", "driver_id_number"),
                             ("?order=driver_id_number.desc", "order"),
                             ("?filter%5BdriverIdNumber%5D=" + SECRET,
                              "filter%5BdriverIdNumber%5D")]:
        rec = await refused(shop, "GET", VEHICLES + query, None, parameter)
        assert rec["extra"]["names_item"] == "driver_id_number"
    # nesting past the bound cannot be checked
    deep: Any = {"plate_number": "x"}
    for _ in range(MAX_DEPTH + 1):
        deep = {"and": [deep]}
    rec = await refused(shop, "POST", SEARCH, as_json(deep), "(body)")
    assert "nested deeper than 32 levels" in rec["reason"]
    # granted items (in the clear, or encrypted to the consumer) and free text pass
    for doc, total in [({"filter": {"plate_number": ROWS[1]["plate_number"]}}, 1),
                       ({"filter": {"driver_phone": ROWS[0]["driver_phone"]}}, 1),
                       ({"filter": {"brand": "红旗 H5"}, "sort": "-plate_number"}, 1),
                       ({"note": "driver id number"}, 2)]:
        r = await send(shop, "POST", SEARCH, as_json(doc))
        assert r.status_code == 200, (doc, r.text)
        assert r.json()["total"] == total and "driver_id_number" not in r.text


async def test_an_encrypted_item_is_queried_by_only_where_it_is_given(shop: Shop) -> None:
    """The phone is granted encrypted: a client with a key gets it (and may filter by
    it); czt's portal client has none, its answer withholds the phone, and the records
    of a filter by it would confirm a guessed number: the answer is refused."""
    apply_state(shop.services, {"catalogue": [search()], "grants": [GRANT]})
    shop.tokens["portal"] = access_token(shop.services, sub=None, department="czt",
                                         roles=("staff",), client_id="czt-portal")
    phone = ROWS[0]["driver_phone"]
    for method, target, body in [("GET", f"{VEHICLES}?driver_phone=eq.{phone}", None),
                                 ("POST", SEARCH, as_json({"filter": {"driverPhone": phone}}))]:
        keyed = await send(shop, method, target, body)
        assert keyed.status_code == 200 and keyed.json()["total"] == 1
        r = await send(shop, method, target, body, who="portal")
        assert r.status_code == 502, r.text
        assert r.json()["type"] == "urn:govgate:error:shaping_refused" and phone not in r.text
        rec = shop.record(r)
        assert (rec["outcome"], rec["items"]) == ("error", [])
        assert rec["extra"]["names_item"] == "driver_phone"
        assert "which this answer withholds" in rec["extra"]["refused"]
        # without naming it, the portal's answer is cut as before
        r = await send(shop, method, target.partition("?")[0],
                       None if body is None else b"{}", who="portal")
        assert r.status_code == 200 and "driver_phone" not in r.json()["items"][0]
    # nor does a HEAD's count or a 404 ("no such number") answer it (review of 2026-12-05)
    assert isinstance(shop.upstream, LaxUpstream)
    shop.upstream.headers = [("X-Total-Count", "1")]
    for status, method in [("200 OK", "HEAD"), ("404 Not Found", "GET")]:
        shop.upstream.status = status
        r = await send(shop, method, f"{VEHICLES}?driver_phone=eq.{phone}", who="portal")
        assert r.status_code == 502 and "x-total-count" not in r.headers, (method, r)
        rec = shop.record(r)
        assert (rec["extra"]["names_item"], rec["items"]) == ("driver_phone", [])
        r = await send(shop, method, f"{VEHICLES}?plate_number=eq.x", who="portal")
        assert r.status_code == int(status[:3])  # not naming it: as the upstream says


async def test_graphql_is_refused_unless_the_route_takes_it(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [search()], "grants": [GRANT]})
    rename = "{ vehicles { brand: engine_number } }"  # a column no item describes
    own = await send(shop, "POST", SEARCH, as_json({"query": rename}), who="jgswj")
    assert own.json()["items"][0] == {"brand": f"{ENGINE}0"}  # what the cut would keep
    for body, content_type, parameter in [
            (as_json({"query": rename}), JSON, "query"),
            (as_json({"query": f"query Fleet {rename}", "variables": {}}), JSON, "query"),
            (as_json([{"query": rename}]), JSON, "[0].query"),  # a batch
            (as_json({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab"}}}),
             JSON, "extensions.persistedQuery"),
            (rename.encode(), "application/graphql", "(body)")]:
        rec = await refused(shop, "POST", SEARCH, body, parameter, content_type)
        assert rec["extra"]["graphql"] is True and "GraphQL" in rec["reason"]
    rec = await refused(shop, "GET", f"{VEHICLES}?query={quote(rename)}", None, "query")
    assert rec["extra"]["graphql"] is True
    # a "query" that is search text, not a document, is a free-text search: refused to
    # czt unless the route lists it (the third pass: tests/proxy/test_shaped_third_pass.py)
    rec = await refused(shop, "POST", SEARCH, as_json({"query": "query about 红旗"}), "query")
    assert rec["extra"]["free_text"] is True and "graphql" not in rec["extra"]
    # a route that lists "query" takes GraphQL only from a caller given every item in
    # the clear (the third pass); czt's answer is cut, masked and encrypted
    apply_state(shop.services, {"catalogue": [search(query=["query"])]})
    r = await send(shop, "POST", SEARCH, as_json({"query": "query about 红旗"}))
    assert r.status_code == 200 and r.json()["total"] == 2
    for document in ("{ vehicles { brand } }", "{ vehicles { brand: driver_id_number } }"):
        rec = await refused(shop, "POST", SEARCH, as_json({"query": document}), "query")
        assert rec["extra"]["graphql"] is True and "every item" in rec["reason"]


async def test_an_unlisted_envelope_keeps_only_pagination_counts(shop: Shop) -> None:
    assert isinstance(shop.upstream, LaxUpstream)
    shop.upstream.envelope = {
        "page": 1, "per_page": 20, "has_more": False, "next": None, "totalCount": 2,
        "first_id_number": int(SECRET), "contact": int(PHONE), "code": 200, "score": 1.5,
        "pages": int(PHONE), "total_pages": -1}
    own = await shop.get(VEHICLES, who="jgswj")
    assert own.json()["first_id_number"] == int(SECRET)  # the upstream really sends it
    r = await shop.get(VEHICLES)
    assert r.status_code == 200, r.text
    doc = r.json()
    # "code": the wrapper's outcome (若依), a count, stays (catalogue.pagination)
    assert doc == {"items": doc["items"], "total": 2, "page": 1, "per_page": 20,
                   "has_more": False, "next": None, "totalCount": 2, "code": 200}
    assert SECRET not in r.text and PHONE not in r.text
    assert shop.record(r)["extra"]["envelope_dropped"] == [
        "first_id_number", "contact", "score", "pages", "total_pages"]


CARRYING = [
    ("Location", f"/api/vehicles?driver_id_number={SECRET}"),
    ("Content-Location", f"/api/vehicles/{SECRET}"),
    ("Content-Disposition", f'attachment; filename="{SECRET}.csv"'),
    ("Link", f'</api/vehicles?page=2&driver_id_number={SECRET}>; rel="next"'),
    ("Set-Cookie", f"last={SECRET}; Path=/"),
    ("Refresh", f"0; url=/api/vehicles?id={SECRET}"),
    ("X-Upstream-Note", f"call {PHONE}"),
    ("X-Total-Pages", PHONE),  # a count's name, a phone number's value
    ("X-Page", SECRET),
]
COUNTS = [("X-Total-Count", "2"), ("X-Pagination-Per-Page", "20"),
          ("X-RateLimit-Remaining", "99"), ("Retry-After", "5")]
GATEWAY_SET = {"content-type", "content-length", "cache-control", "x-content-type-options",
               "x-request-id", "date", "server"}


async def test_a_shaped_answers_head_carries_only_counts(shop: Shop) -> None:
    assert isinstance(shop.upstream, LaxUpstream)
    shop.upstream.headers = CARRYING + COUNTS
    own = await shop.get(VEHICLES, who="jgswj")  # the provider's, unshaped: all of them
    assert own.headers["content-disposition"] == f'attachment; filename="{SECRET}.csv"'
    for status in ("200 OK", "201 Created", "302 Found"):
        shop.upstream.status = status
        for method in ("GET", "HEAD"):
            r = await send(shop, method, VEHICLES)
            assert r.status_code == int(status[:3]), (status, method)
            assert SECRET not in str(r.headers) and PHONE not in str(r.headers)
            assert set(r.headers) <= GATEWAY_SET | {k.lower() for k, _ in COUNTS}, r.headers
            assert [(k, r.headers[k]) for k, _ in COUNTS] == COUNTS
            rec = shop.record(r)
            assert rec["extra"]["headers_dropped"] == [k.lower() for k, _ in CARRYING]
            assert SECRET not in json.dumps(rec["extra"])
    assert r.status_code == 302 and "location" not in r.headers  # no way on to the value


def test_a_json_bodys_walk_is_bounded_and_reads_every_key_and_value() -> None:
    names = NotGranted(["brand", "driver_id_number"], ["brand"])
    wide = Pairs([("ids", list(range(MAX_NODES)))])
    found = json_refusal(wide, names, False)
    assert found is not None and "more than 100000 keys and values" in found.reason
    assert json_refusal(Pairs([("ids", list(range(1000)))]), names, False) is None
    found = json_refusal(["x", Pairs([("a", ["y", "by DriverIdNumber"])])], names, False)
    assert found is not None and (found.parameter, found.item) == ("[1].a[1]",
                                                                   "driver_id_number")
