"""The spellings real clients send that the shaped-route checks did not read (the attack
of 2026-12-05, fifth session): Spring Data's and JPA's nested property paths
(``sort=driver.idNumber,desc``), a JSON body that is an array (``[{"fuzzy": ...}]``),
DataTables sent as JSON and DataTables 1.9's legacy parameters, PHP's and Rack's
``x[]=1&x[]=2``, jQuery's ``_=`` cache-buster, and the search boxes of Chinese systems
(``condition=``, 若依's ``searchValue``).

The upstream on a real socket honours each spelling as its framework does: a Spring
Boot list (JPA's ``driver.idNumber`` is the column ``driver_id_number``; any other
parameter, or a JSON body's text, searched in every column), DataTables' server
(``ssp.class.php`` for 1.10+ in a query, a form or a JSON body; 1.9's classic script,
which indexes its own column list by ``iSortCol_0`` and ``sSearch_0``). czt is granted
the vehicles without the driver's ID number, the name masked
(``tests.proxy.test_table_clients.catalogued``); the provider (jgswj, unshaped) shows
each refusal closes a real oracle."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from gateway.proxy import catalogue_names
from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import SECRET, Shop, jg_0001
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.proxy.test_shaped_second_pass import snake
from tests.proxy.test_table_clients import (
    OWN_COLUMNS,
    ROUTES,
    ROWS,
    Tables,
    catalogued,
    datatables,
    get,
    listed,
    nested,
    plates,
    refused,
)
from tests.wiring import apply_state

SPRING, TABLE = ROUTES["SD"][0], ROUTES["DT"][0]
LEGACY = "/api/legacy/vehicles"  # DataTables 1.9's server: records under aaData
PAGING = ("page", "size", "sort", "_")


def column(name: str) -> str:
    """A JPA property path as the column it reads: ``driver.idNumber`` is
    ``driver_id_number``."""
    return "_".join(snake(p) for p in name.split("."))


def stringify(node: Any) -> Any:
    """A JSON body as PHP's ``json_decode`` then the query reader sees it (lists by
    position, ``true`` as ``"true"``)."""
    if isinstance(node, dict):
        return {k: stringify(v) for k, v in node.items()}
    if isinstance(node, list):
        return {str(k): stringify(v) for k, v in enumerate(node)}
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def leaves(node: Any, path: str = "") -> list[tuple[str, str]]:
    """A JSON value's strings with their object keys joined by ``.`` (Spring's
    binder of a nested object)."""
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(node, list):
        return [x for v in node for x in leaves(v, path)]
    return [(path, node)] if isinstance(node, str) else []


@dataclass
class Lax(Tables):
    """A Spring Boot list, DataTables' servers (1.10+ and 1.9) on real sockets."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            target = head.split(" ", 2)[1]
            self.seen.append(target)
            m = re.search(r"(?im)^content-length:\s*(\d+)", head)
            body = (await reader.readexactly(int(m[1]))).decode() if m else ""
            path, _, query = target.partition("?")
            doc = json.loads(body) if body[:1] in ("{", "[") else None
            form = "" if doc is not None else body
            if path == TABLE:
                answer = self.dt(stringify(doc) if doc is not None else nested(
                    "&".join(p for p in (query, form) if p)))
            elif path == LEGACY:  # aoData as a query, or as JSON name/value pairs
                answer = self.legacy({p["name"]: str(p["value"]) for p in doc} if doc
                                     else dict(parse_qsl(query, keep_blank_values=True)))
            else:
                answer = self.spring(parse_qsl("&".join(p for p in (query, form) if p),
                                               keep_blank_values=True), doc)
            out = json.dumps(answer, ensure_ascii=False).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(out) + out)
            await writer.drain()
        finally:
            writer.close()

    def spring(self, pairs: list[tuple[str, str]], doc: Any) -> dict[str, Any]:
        rows = [dict(r) for r in ROWS]
        lists: dict[str, list[str]] = {}
        searched: list[str] = []
        for name, value in pairs:
            if name.endswith("[]"):  # PHP's list: brand[]=a&brand[]=b, any of them
                lists.setdefault(column(name[:-2]), []).append(value)
            elif column(name) in ROWS[0]:
                rows = [r for r in rows if value in str(r[column(name)])]
            elif name not in PAGING and value:
                searched.append(value)
        for col, values in lists.items():
            rows = [r for r in rows if str(r[col]) in values]
        for path, value in leaves(doc):
            if column(path) in ROWS[0]:
                rows = [r for r in rows if value in str(r[column(path)])]
            else:
                searched.append(value)
        rows = [r for r in rows if all(any(t in str(v) for v in r.values()) for t in searched)]
        for sort in reversed([v for k, v in pairs if k == "sort"]):
            col, _, way = sort.partition(",")
            rows.sort(key=lambda r: str(r[column(col)]), reverse=way == "desc")
        return {"content": rows, "totalElements": len(rows)}

    def legacy(self, q: dict[str, str]) -> dict[str, Any]:
        """DataTables 1.9's ``server_processing.php``: ``$aColumns`` indexed by the
        request's positions, whatever ``mDataProp_i`` says."""
        rows = [dict(r) for r in ROWS]
        if value := q.get("sSearch"):
            rows = [r for r in rows if any(
                value in str(r[c]) for i, c in enumerate(OWN_COLUMNS)
                if q.get(f"bSearchable_{i}") == "true")]
        for i, c in enumerate(OWN_COLUMNS):
            if value := q.get(f"sSearch_{i}"):
                rows = [r for r in rows if value in str(r[c])]
        for i in reversed(range(int(q.get("iSortingCols", 0)))):
            col = OWN_COLUMNS[int(q[f"iSortCol_{i}"])]
            rows.sort(key=lambda r: str(r[col]), reverse=q.get(f"sSortDir_{i}") == "desc")
        start, length = int(q.get("iDisplayStart", 0)), int(q.get("iDisplayLength", 10))
        return {"sEcho": int(q["sEcho"]), "iTotalRecords": len(ROWS),
                "iTotalDisplayRecords": len(rows), "aaData": rows[start:start + length]}


@pytest.fixture
def upstream() -> Lax:
    return Lax()


def more_routes(shop: Shop, **legacy_route: Any) -> None:
    """Beside the four lists: the Spring list and the table as POSTs taking JSON, and
    DataTables 1.9's list, granted to czt as the others are."""
    entries = [
        {**jg_0001(path=SPRING, records="content", method="POST"), "code": "JG-0120"},
        {**jg_0001(path=TABLE, records="data", method="POST"), "code": "JG-0121"},
        {**jg_0001(path=LEGACY, records="aaData", **legacy_route), "code": "JG-0122"},
        {**jg_0001(path=LEGACY, records="aaData", method="POST"), "code": "JG-0123"}]
    apply_state(shop.services, {"catalogue": entries, "grants": [
        {"resource": e["code"], "consumer": "czt", "purpose": "费用核算",
         "items": ["plate_number", "brand", "driver_name", "driver_phone"],
         "until": "2027-12-31"} for e in entries]})


async def post(shop: Shop, path: str, body: Any, who: str = "czt") -> httpx.Response:
    return await shop.http.post(f"http://127.0.0.1:{shop.port}/s/vehicles{path}",
                                headers={"Authorization": f"Bearer {shop.tokens[who]}"},
                                json=body)


async def refused_post(shop: Shop, path: str, body: Any, parameter: str) -> dict[str, Any]:
    before = len(shop.upstream.seen)
    r = await post(shop, path, body)
    assert r.status_code == 400, (body, r.text)
    assert (r.json()["type"], r.json()["parameter"]) == (
        "urn:govgate:error:query_refused", parameter), r.text
    assert len(shop.upstream.seen) == before and SECRET not in r.text
    return r.json()


async def test_spring_datas_nested_property_paths(shop: Shop) -> None:
    """Failed on the base: ``sort=driver.idNumber,desc`` and ``?driver.idNumber=`` (and
    a JSON body's ``{"driver": {"idNumber": ...}}``) reached the upstream for czt."""
    catalogued(shop)
    more_routes(shop)
    # the oracle is real: JPA reads driver.idNumber as the driver's ID number
    own = (await get(shop, "SD", f"driver.idNumber={SECRET}", who="jgswj")).json()
    assert own["totalElements"] == 1 and own["content"][0]["driver_id_number"] == SECRET
    own = (await get(shop, "SD", "sort=driver.idNumber,desc", who="jgswj")).json()
    assert own["content"][0]["driver_id_number"] == "450104198807070033"
    assert (await post(shop, SPRING, {"driver": {"idNumber": SECRET}}, who="jgswj")
            ).json()["totalElements"] == 1
    for query, parameter in [
            ("page=0&size=20&sort=driver.idNumber,desc", "sort"),
            ("sort=brand&sort=driver.idNumber", "sort"),
            ("sort=Driver.IdNumber%2Casc", "sort"),
            ("sort=driver.id_number", "sort"),
            (f"driver.idNumber={SECRET}", "driver.idNumber"),
            (f"driver.id.number={SECRET[:6]}", "driver.id.number"),
            (f"driver%2EidNumber={SECRET}", "driver%2EidNumber"),
            (f"filter[driver][idNumber]={SECRET}", "filter[driver][idNumber]"),
            ("sort=driver.name,asc", "sort")]:  # the masked driver_name
        await refused(shop, "SD", query, parameter)
    await refused_post(shop, SPRING, {"driver": {"idNumber": SECRET}}, "driver.idNumber")
    await refused_post(shop, SPRING, {"filter": {"driver": {"id_number": SECRET}}},
                       "filter.driver.id_number")
    # paths through granted columns, and the other readings of a dot, still pass
    answer = await listed(shop, "SD", "sort=brand,desc&sort=plate_number")
    assert plates(answer["content"]) == ["桂A·G1024", "桂A·G4096", "桂A·G2048"]
    r = await post(shop, SPRING, {"vehicle": {"brand": "红旗"}})
    assert r.status_code == 200 and r.json()["totalElements"] == 2, r.text


async def test_a_json_array_bodys_searches(shop: Shop) -> None:
    """Failed on the base: ``[{"fuzzy": ...}]`` (a batch of searches) reached the
    upstream for czt; ``{"fuzzy": ...}`` was refused."""
    catalogued(shop)
    more_routes(shop)
    for body in ([{"fuzzy": SECRET}], [{"q": SECRET}], [[{"likeValue": SECRET}]],
                 [{"content": SECRET}]):
        own = await post(shop, SPRING, body, who="jgswj")
        assert own.json()["totalElements"] == 1, (body, own.text)
    await refused_post(shop, SPRING, [{"fuzzy": SECRET}], "[0].fuzzy")
    await refused_post(shop, SPRING, [{"q": SECRET}], "[0].q")
    await refused_post(shop, SPRING, [{"brand": "红旗"}, {"content": SECRET}], "[1].content")
    await refused_post(shop, SPRING, [[{"likeValue": SECRET}]], "[0][0].likeValue")
    # a filter by a granted column, and an empty search, pass
    r = await post(shop, SPRING, [{"brand": "红旗", "fuzzy": ""}])
    assert r.status_code == 200 and r.json()["totalElements"] == 2, r.text
    # under another key the word is a field's (as before)
    r = await post(shop, SPRING, {"vehicle": [{"content": "红旗"}]})
    assert r.status_code == 200, r.text


def dt_json(columns: list[str | None], **kwargs: Any) -> dict[str, Any]:
    """What ``JSON.stringify(d)`` sends of DataTables 2's parameters (``ajax.data``;
    ``ajax.submitAs: 'json'``): the same object :func:`datatables` writes as a query."""
    out = nested(datatables(columns, **kwargs))
    out.pop("_")
    for key in ("columns", "order"):
        out[key] = [out[key][k] for k in sorted(out[key], key=int)]
    for c in out["columns"]:
        c["data"] = c["data"] or None
        c["searchable"] = c["orderable"] = True
        c["search"]["regex"] = False
    for o in out["order"]:
        o["column"] = int(o["column"])
    out["draw"], out["start"], out["length"] = (int(out[k]) for k in ("draw", "start",
                                                                      "length"))
    out["search"]["regex"] = False
    return out


async def test_datatables_sent_as_json(shop: Shop) -> None:
    """Failed on the base: a column's own filter by a named column was refused as a
    free-text search, the masked name's column refused whole; an ordering by a column
    the request names by no word reached the upstream (ordered by its own column 0)."""
    catalogued(shop)
    more_routes(shop)
    table = ["plate_number", "brand"]
    r = await post(shop, TABLE, dt_json(table, column_search={1: "红旗"}, order=[(1, "desc")]))
    assert r.status_code == 200, r.text
    assert plates(r.json()["data"]) == ["桂A·G1024", "桂A·G4096"]
    assert (r.json()["recordsFiltered"], r.json()["draw"]) == (2, 1)
    shown = ["plate_number", "brand", "driver_name"]
    r = await post(shop, TABLE, dt_json(shown))
    assert r.status_code == 200, r.text
    assert [x["driver_name"] for x in r.json()["data"]] == ["李**", "王*", "张*"]
    # the oracles are real: the server's own column 0 is the ID number
    own = await post(shop, TABLE, dt_json([None, "plate_number"], column_search={
        0: SECRET}), who="jgswj")
    assert own.json()["recordsFiltered"] == 1
    own = await post(shop, TABLE, dt_json([None, "plate_number"], order=[(0, "desc")]),
                     who="jgswj")
    assert own.json()["data"][0]["driver_id_number"] == "450104198807070033"
    for body, parameter in [
            (dt_json([None, "plate_number"], order=[(0, "desc")]), "order[0].column"),
            (dt_json(["plate_number"], order=[(3, "asc")]), "order[0].column"),
            (dt_json(["0", "plate_number"], column_search={0: SECRET[:6]}, order=[(1, "asc")]),
             "columns[0].search.value"),
            (dt_json(table, search=SECRET), "search.value"),
            (dt_json(["plate_number", "driver_id_number"]), "columns[1].data"),
            (dt_json(shown, order=[(2, "asc")]), "columns[2].data"),
            (dt_json(shown, column_search={2: "李"}), "columns[2].data"),
            (dt_json(shown, search="李"), "columns[2].data")]:
        await refused_post(shop, TABLE, body, parameter)
    # the order as a string, as a custom ``ajax.data`` may send it: read as PHP reads it
    body = dt_json([None, "plate_number"], order=[(1, "asc")])
    body["order"][0]["column"] = "0.0"
    await refused_post(shop, TABLE, body, "order[0].column")


def legacy(columns: list[str], *, sort: int = 0, search: str = "",
           column_search: dict[int, str] | None = None) -> str:
    """What DataTables 1.9 sends with ``bServerSide: true`` (``_fnAjaxParameters``)."""
    column_search = column_search or {}
    parts = [("sEcho", "1"), ("iColumns", str(len(columns))), ("sColumns", "," * (
        len(columns) - 1)), ("iDisplayStart", "0"), ("iDisplayLength", "10")]
    for i, c in enumerate(columns):
        parts.append((f"mDataProp_{i}", c))
    parts += [("sSearch", search), ("bRegex", "false")]
    for i in range(len(columns)):
        parts += [(f"sSearch_{i}", column_search.get(i, "")), (f"bRegex_{i}", "false"),
                  (f"bSearchable_{i}", "true")]
    parts += [("iSortCol_0", str(sort)), ("sSortDir_0", "asc"), ("iSortingCols", "1")]
    parts += [(f"bSortable_{i}", "true") for i in range(len(columns))]
    return "&".join(f"{k}={v}" for k, v in parts)


async def test_datatables_legacy_parameters(shop: Shop) -> None:
    """Failed on the base: ``sSearch_0=``, ``sSearch=`` and ``iSortCol_0=`` reached the
    upstream for czt, which filtered and ordered by its own column 0 (the ID number), as
    a query and as JSON name/value pairs."""
    catalogued(shop)
    more_routes(shop)
    target = f"/s/vehicles{LEGACY}?"
    for query in (legacy(["plate_number", "brand"], column_search={0: SECRET}),
                  legacy(["plate_number", "brand"], search=SECRET)):
        own = await shop.get(target + query, who="jgswj")
        assert own.json()["iTotalDisplayRecords"] == 1, own.text
    for query, parameter in [
            (legacy(["plate_number", "brand"], column_search={0: SECRET}), "sSearch_0"),
            (legacy(["plate_number", "brand"], search=SECRET), "sSearch"),
            (legacy(["plate_number", "driver_id_number"]), "mDataProp_1")]:
        before = len(shop.upstream.seen)
        r = await shop.get(target + query)
        assert r.status_code == 400 and r.json()["parameter"] == parameter, r.text
        assert len(shop.upstream.seen) == before
    # aoData posted as JSON (a custom fnServerData), or jQuery's serializeArray(): each
    # {"name": ..., "value": ...} is the parameter its name says
    pairs = [{"name": k, "value": v} for k, _, v in (
        p.partition("=") for p in legacy(["plate_number", "brand"], column_search={
            0: SECRET}).split("&"))]
    own = await post(shop, LEGACY, pairs, who="jgswj")
    assert own.json()["iTotalDisplayRecords"] == 1, own.text
    k = next(k for k, p in enumerate(pairs) if p["name"] == "sSearch_0")
    await refused_post(shop, LEGACY, pairs, f"[{k}].value")
    pairs[k]["value"] = ""
    k = next(k for k, p in enumerate(pairs) if p["name"] == "iSortCol_0")
    await refused_post(shop, LEGACY, pairs, f"[{k}]")
    await refused_post(shop, LEGACY, [{"name": "keyword", "value": SECRET}], "[0].value")
    # the ordering: the server's list, not the request's columns, decides what it is
    r = await shop.get(target + legacy(["plate_number", "brand"]))
    assert r.status_code == 400 and r.json()["parameter"] == "iSortCol_0", r.text
    assert "DataTables 1.9" in r.json()["detail"] and "自己的列顺序" in r.json()["detail"]
    r = await shop.http.get(f"http://127.0.0.1:{shop.port}{target}"
                            + legacy(["plate_number"]), headers={
        "Authorization": f"Bearer {shop.tokens['czt']}", "Accept-Language": "en"})
    assert r.json()["detail"].endswith("refused unless the route lists it in query"), r.text
    # a steward who lists the table's parameters says the server's list is what czt sees
    names = [p.partition("=")[0] for p in legacy(["plate_number", "brand"]).split("&")]
    more_routes(shop, query=names)
    r = await shop.get(target + legacy(["plate_number", "brand"], sort=1))
    assert r.status_code == 200, r.text
    assert plates(r.json()["aaData"]) == ["桂A·G1024", "桂A·G2048", "桂A·G4096"]
    assert set(r.json()["aaData"][0]) == {"plate_number", "brand", "driver_name",
                                          "driver_phone"}


async def test_php_and_rack_lists(shop: Shop) -> None:
    """Failed on the base: ``brand[]=a&brand[]=b`` was refused as named twice."""
    catalogued(shop)
    query = "brand[]=%E7%BA%A2%E6%97%97+H5&brand[]=%E6%AF%94%E4%BA%9A%E8%BF%AA+%E6%B1%89"
    for q in (query, query.replace("[]", "%5B%5D")):
        answer = await listed(shop, "SD", q)
        assert plates(answer["content"]) == ["桂A·G1024", "桂A·G2048"]
    # every value is read for items; a list beside the plain name is two parameters
    await refused(shop, "SD", "brand[]=x&brand[]=driver_id_number", "brand[]")
    await refused(shop, "SD", f"plate_number[]=x&driver_id_number[]={SECRET}",
                  "driver_id_number[]")
    await refused(shop, "SD", "brand[]=x&brand=y", "brand")
    await refused(shop, "SD", "brand[]=x&brand[][a]=y", "brand[][a]")


async def test_the_cache_buster_does_not_miss_the_memo(shop: Shop) -> None:
    """Failed on the base: every DataTables request, a new ``_=`` each, was remembered
    anew (three entries for one table's three loads)."""
    catalogued(shop)
    catalogue_names._queries.clear()
    query = datatables(["plate_number", "brand"])
    for stamp in ("1733400000001", "1733400000002", "1733400000003"):
        answer = await listed(shop, "DT", re.sub(r"_=\d+", f"_={stamp}", query))
        assert plates(answer["data"]) == ["桂A·G1024", "桂A·G2048", "桂A·G4096"]
    assert len(catalogue_names._queries) == 1
    # a refusal stays a refusal whatever the stamp; ``_`` with another value is read
    unnamed = datatables([None, "plate_number"])
    for stamp in ("1733400000001", "1733400000002"):
        await refused(shop, "DT", re.sub(r"_=\d+", f"_={stamp}", unnamed),
                      "order%5B0%5D%5Bcolumn%5D")
    await refused(shop, "DT", query.replace("_=", "_=driver_id_number"), "_")
    # where the route lists its parameters without ``_``, ``_`` is refused every time
    apply_state(shop.services, {"catalogue": [{**jg_0001(
        path=ROUTES["DT"][0], records="data", query=["draw", "columns", "order", "start",
                                                     "length", "search"]),
        "code": "JG-0100"}]})
    for stamp in ("1733400000001", "1733400000004"):
        await refused(shop, "DT", re.sub(r"_=\d+", f"_={stamp}", query), "_")


async def test_chinese_systems_search_boxes(shop: Shop) -> None:
    """Failed on the base: ``condition=``, ``gjz=``, ``searchVal=`` reached the
    upstream for czt. 若依's ``searchValue`` was refused already; ``text=`` and
    ``value=`` stay fields (the steward lists a search under such a name)."""
    catalogued(shop)
    for name in ("condition", "conditionValue", "searchVal", "gjz", "mhcx", "cxtj",
                 "searchValue", "%E6%9F%A5%E8%AF%A2%E6%9D%A1%E4%BB%B6"):
        own = await get(shop, "SD", f"{name}={SECRET}", who="jgswj")
        assert own.json()["totalElements"] == 1, (name, own.text)
        problem = await refused(shop, "SD", f"page=0&size=20&{name}={SECRET}", name)
        assert "全文检索" in problem["detail"], problem
    for query in ("params%5BbeginTime%5D=2026-01-01", "condition%5Bbrand%5D=%E7%BA%A2%E6%97%97",
                  "text=%E7%BA%A2%E6%97%97", "value=%E7%BA%A2%E6%97%97", "condition="):
        r = await get(shop, "SD", query)
        assert r.status_code == 200, (query, r.text)


async def test_a_request_of_too_many_words_is_refused_not_read(shop: Shop) -> None:
    """Failed on the base (200 after reading every word on the event loop: a value of a
    million dotted parts held it some 20 s): past ``MAX_WORDS`` words to read, a body or
    a query is refused whole; a value of the same length naming no item's key is
    passed over at C speed, and the provider is not read."""
    from catalogue.item_names import MAX_WORDS

    catalogued(shop)
    more_routes(shop)
    # the ID number's key in its own, naming no item
    many = ".".join(["ab"] * (MAX_WORDS + 10)) + ".xdriveridnumberx"
    problem = await refused_post(shop, SPRING, {"vehicle": {"remark": many}}, "(body)")
    assert str(MAX_WORDS) in problem["detail"]
    r = await shop.http.get(f"http://127.0.0.1:{shop.port}/s/vehicles{SPRING}",
                            params={"remark": many[:6000]},
                            headers={"Authorization": f"Bearer {shop.tokens['czt']}"})
    assert r.status_code == 200, r.text  # 2,000 words: read, no item named
    r = await post(shop, SPRING, {"vehicle": {"remark": many.replace("driver", "rider")}})
    assert r.status_code == 200, r.text  # no item's key in it: never read word by word
    r = await post(shop, SPRING, {"vehicle": {"remark": many}}, who="jgswj")
    assert r.status_code == 200, r.text
