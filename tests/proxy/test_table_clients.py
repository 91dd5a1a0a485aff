"""Real consumer table clients on shaped routes, with their default settings: jQuery
DataTables' server-side processing, 若依 (RuoYi) with Element UI, MyBatis-Plus' page and
Spring Data's ``Pageable``. Each request is built as the library sends it (jQuery's
``$.param`` of DataTables' parameters, RuoYi's ``tansParams``, axios' brackets) and goes
through the gateway on a real socket to an upstream on a real socket that reads it as
that framework's server does: DataTables' ``ssp.class.php`` (a column named by
``columns[i][data]``, its own column list where the request names none), RuoYi's
``orderByColumn``/``isAsc``/``params[beginTime]``, MyBatis-Plus' ``orders[0].column``,
Spring's ``sort=col,dir``. czt is granted the vehicles without the driver's ID number
(cut), the driver's name masked; it pages, sorts and filters by what it may see, and
is refused whenever a parameter names or points at an item it may not see. The
provider (jgswj) is unshaped and shows each refusal closes a real oracle."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

import httpx
import pytest

from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import SECRET, Shop, Upstream, jg_0001
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.proxy.test_shaped_second_pass import snake
from tests.wiring import apply_state

ROWS = [
    {"plate_number": "桂A·G1024", "brand": "红旗 H5", "driver_name": "李建国",
     "driver_id_number": SECRET, "driver_phone": "13907710021", "mileage_km": 5000,
     "registered_on": "2026-01-05"},
    {"plate_number": "桂A·G2048", "brand": "比亚迪 汉", "driver_name": "王芳",
     "driver_id_number": "450103199001010022", "driver_phone": "13907710022",
     "mileage_km": 3000, "registered_on": "2026-03-01"},
    {"plate_number": "桂A·G4096", "brand": "红旗 E-QM5", "driver_name": "张伟",
     "driver_id_number": "450104198807070033", "driver_phone": "13907710023",
     "mileage_km": 9000, "registered_on": "2026-06-30"},
]
# the upstream's own column list (ssp.class.php's $columns): where a request names no
# column, DataTables' server orders and filters by this list's position
OWN_COLUMNS = ["driver_id_number", "plate_number", "brand", "driver_name"]
# each client's list, its records' place in the answer
ROUTES = {"DT": ("/api/dt/vehicles", "data"), "RY": ("/api/ry/vehicles", "rows"),
          "MP": ("/api/mp/vehicles", "records"), "SD": ("/api/sd/vehicles", "content")}


def nested(query: str) -> dict[str, Any]:
    """A query string read as PHP, Rack, ``qs`` and Spring's binder read it: ``a[b][c]``
    and ``a[0].b`` nest."""
    out: dict[str, Any] = {}
    for part in (p for p in query.split("&") if p):
        name, _, value = (unquote_plus(x) for x in part.partition("="))
        keys = re.findall(r"^[^\[.]+|\[([^\]]*)\]|\.([^.\[]+)", name)
        path = [name.split("[")[0].split(".")[0]] + [a or b for a, b in keys[1:]]
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return out


def positional(table: dict[str, Any], index: str) -> str:
    """ssp.class.php: the column ``columns[index][data]`` names, or (none, a number)
    the server's own column at that position."""
    m = re.match(r"\s*([+-]?[0-9]+)", index)  # PHP's intval
    index = str(int(m[1])) if m else "0"
    data = table.get("columns", {}).get(index, {}).get("data", "")
    return data if re.search(r"[a-z]", data) else OWN_COLUMNS[int(data or index)]


@dataclass
class Tables(Upstream):
    """Answers each client's list as its server framework reads the request."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            target = head.split(" ", 2)[1]
            self.seen.append(target)
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", head)[1]) if re.search(
                r"(?im)^content-length:", head) else 0
            form = (await reader.readexactly(length)).decode() if length else ""
            path, _, query = target.partition("?")
            client = next(k for k, (p, _) in ROUTES.items() if p == path)
            answer = getattr(self, client.lower())(nested("&".join(
                p for p in (query, form) if p)))
            body = json.dumps(answer, ensure_ascii=False).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
        finally:
            writer.close()

    def dt(self, q: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in ROWS]
        columns = q.get("columns", {})
        for index, column in columns.items():
            if value := column.get("search", {}).get("value"):
                col = positional(q, index)
                rows = [r for r in rows if value in str(r[col])]
        if value := q.get("search", {}).get("value"):
            cols = [positional(q, i) for i, c in columns.items()
                    if c.get("searchable") == "true"]
            rows = [r for r in rows if any(value in str(r[c]) for c in cols)]
        for _, order in sorted(q.get("order", {}).items(), reverse=True):
            col = positional(q, order["column"])
            rows.sort(key=lambda r: str(r[col]), reverse=order.get("dir") == "desc")
        start, length = int(q.get("start", 0)), int(q.get("length", 10))
        return {"draw": int(q["draw"]), "recordsTotal": len(ROWS),
                "recordsFiltered": len(rows), "data": rows[start:start + length]}

    def ry(self, q: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in ROWS]
        for name, value in q.items():
            if isinstance(value, str) and snake(name) in ROWS[0]:
                rows = [r for r in rows if value in str(r[snake(name)])]
        params = q.get("params", {})
        rows = [r for r in rows if params.get("beginTime", "") <= r["registered_on"]
                <= params.get("endTime", "9999")]
        if column := q.get("orderByColumn"):
            rows.sort(key=lambda r: str(r[snake(column)]),
                      reverse=q.get("isAsc") in ("descending", "desc"))
        num, size = int(q.get("pageNum", 1)), int(q.get("pageSize", 10))
        return {"total": len(rows), "rows": rows[(num - 1) * size:num * size], "code": 200,
                "msg": "查询成功"}

    def mp(self, q: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in ROWS]
        for _, order in sorted(q.get("orders", {}).items(), reverse=True):
            rows.sort(key=lambda r: str(r[snake(order["column"])]),
                      reverse=order.get("asc") == "false")
        current, size = int(q.get("current", 1)), int(q.get("size", 10))
        return {"records": rows[(current - 1) * size:current * size], "total": len(rows),
                "size": size, "current": current, "pages": -(-len(rows) // size)}

    def sd(self, q: dict[str, Any]) -> dict[str, Any]:
        rows = [dict(r) for r in ROWS]
        if sort := q.get("sort"):
            column, _, way = sort.partition(",")
            rows.sort(key=lambda r: str(r[snake(column)]), reverse=way == "desc")
        page, size = int(q.get("page", 0)), int(q.get("size", 20))
        return {"content": rows[page * size:(page + 1) * size], "totalElements": len(rows),
                "totalPages": -(-len(rows) // size), "size": size, "number": page}


@pytest.fixture
def upstream() -> Tables:
    return Tables()


def catalogued(shop: Shop) -> None:
    """The four lists as resources of JG-0001's items, granted to czt as the demo's
    JG-0001 is (the ID number, mileage and type cut, the name masked)."""
    entries, grants = [], []
    for k, (client, (path, records)) in enumerate(ROUTES.items()):
        code = f"JG-01{k:02d}"
        entries.append({**jg_0001(path=path, records=records), "code": code,
                        "name": f"公务用车（{client}）"})
        grants.append({"resource": code, "consumer": "czt", "purpose": "费用核算",
                       "items": ["plate_number", "brand", "driver_name", "driver_phone"],
                       "until": "2027-12-31"})
    apply_state(shop.services, {"catalogue": entries, "grants": grants})


def encode(value: Any) -> str:
    """JavaScript's ``encodeURIComponent``."""
    return quote(str(value).lower() if isinstance(value, bool) else str(value),
                 safe="-_.!~*'()")


def jquery_param(data: dict[str, Any]) -> str:
    """jQuery's ``$.param`` (not traditional): objects and arrays of objects nest as
    ``a[b]``/``a[0][b]``, a value of null as empty, every name and value passed through
    ``encodeURIComponent``; ``$.ajax`` then writes ``%20`` as ``+``."""
    out: list[str] = []

    def build(prefix: str, value: Any) -> None:
        if isinstance(value, list):
            for i, v in enumerate(value):
                build(f"{prefix}[{i if isinstance(v, dict | list) else ''}]", v)
        elif isinstance(value, dict):
            for k, v in value.items():
                build(f"{prefix}[{k}]", v)
        else:
            out.append(f"{encode(prefix)}={encode('' if value is None else value)}")

    for key, value in data.items():
        build(key, value)
    return "&".join(out).replace("%20", "+")


def datatables(columns: list[str | None], *, order: list[tuple[int, str]] | None = None,
               search: str = "", column_search: dict[int, str] | None = None,
               start: int = 0, length: int = 10, draw: int = 1) -> str:
    """The query string DataTables 2 sends with ``serverSide: true`` and its defaults
    (``_fnAjaxParameters``; order ``[[0, 'asc']]``; ``cache: false``, so jQuery adds
    ``_=``), for a table whose columns' ``data`` are ``columns`` (None: ``data:
    null``)."""
    column_search = column_search or {}
    return jquery_param({
        "draw": draw,
        "columns": [{"data": c, "name": "", "searchable": True, "orderable": True,
                     "search": {"value": column_search.get(i, ""), "regex": False}}
                    for i, c in enumerate(columns)],
        "order": [{"column": c, "dir": d, "name": ""} for c, d in (order or [(0, "asc")])],
        "start": start, "length": length,
        "search": {"value": search, "regex": False}}) + f"&_={int(time.time() * 1000)}"


def ruoyi(params: dict[str, Any]) -> str:
    """RuoYi-Vue's ``tansParams`` (``utils/ruoyi.js``): empty values left out, an object
    as ``name[key]``, both percent-encoded."""
    out = []
    for name, value in params.items():
        if value is None or value == "":
            continue
        if isinstance(value, dict):
            out += [f"{encode(f'{name}[{k}]')}={encode(v)}" for k, v in value.items()
                    if v not in (None, "")]
        else:
            out.append(f"{encode(name)}={encode(value)}")
    return "&".join(out)


async def get(shop: Shop, client: str, query: str, who: str = "czt") -> httpx.Response:
    return await shop.get(f"/s/vehicles{ROUTES[client][0]}?{query}", who=who)


async def listed(shop: Shop, client: str, query: str) -> dict[str, Any]:
    r = await get(shop, client, query)
    assert r.status_code == 200, (query, r.text)
    return r.json()


async def refused(shop: Shop, client: str, query: str, parameter: str,
                  accept_language: str | None = None) -> dict[str, Any]:
    """Refused (400 ``query_refused`` naming ``parameter``), never sent upstream."""
    before = len(shop.upstream.seen)
    headers = {"Authorization": f"Bearer {shop.tokens['czt']}"}
    if accept_language is not None:
        headers["Accept-Language"] = accept_language
    r = await shop.http.get(f"http://127.0.0.1:{shop.port}/s/vehicles{ROUTES[client][0]}"
                            f"?{query}", headers=headers)
    assert r.status_code == 400, (query, r.text)
    problem = r.json()
    assert problem["type"] == "urn:govgate:error:query_refused", problem
    assert problem["parameter"] == parameter, problem
    assert len(shop.upstream.seen) == before and SECRET not in r.text
    rec = shop.record(r)
    assert (rec["status"], rec["extra"]["query_refused"]) == (400, parameter)
    return problem


def plates(answer: list[dict[str, Any]]) -> list[str]:
    return [r["plate_number"] for r in answer]


async def test_datatables_pages_sorts_and_filters_by_what_czt_may_see(shop: Shop) -> None:
    catalogued(shop)
    table = ["plate_number", "brand"]
    first = await listed(shop, "DT", datatables(table, length=2))
    assert plates(first["data"]) == ["桂A·G1024", "桂A·G2048"]
    record = first["data"][0]
    assert set(record) == {"plate_number", "brand", "driver_name", "driver_phone"}
    assert (record["brand"], record["driver_name"]) == ("红旗 H5", "李**")
    # the counts DataTables pages by come back beside the records
    assert (first["draw"], first["recordsTotal"], first["recordsFiltered"]) == (1, 3, 3)
    page2 = await listed(shop, "DT", datatables(table, start=2, length=2, draw=2))
    assert plates(page2["data"]) == ["桂A·G4096"] and page2["draw"] == 2
    ordered = await listed(shop, "DT", datatables(table, order=[(1, "desc"), (0, "asc")]))
    assert plates(ordered["data"]) == ["桂A·G1024", "桂A·G4096", "桂A·G2048"]  # 红 > 比
    # a column's own filter by a granted column
    only = await listed(shop, "DT", datatables(table, column_search={1: "红旗"}))
    assert plates(only["data"]) == ["桂A·G1024", "桂A·G4096"]
    assert only["recordsFiltered"] == 2
    # POSTed as a form (``type: 'POST'``): the same parameters in the body
    apply_state(shop.services, {"catalogue": [
        {**jg_0001(path=ROUTES["DT"][0], records="data", method="POST"), "code": "JG-0110"}],
        "grants": [{"resource": "JG-0110", "consumer": "czt", "purpose": "费用核算",
                    "items": ["plate_number", "brand"], "until": "2027-12-31"}]})
    r = await shop.http.post(
        f"http://127.0.0.1:{shop.port}/s/vehicles{ROUTES['DT'][0]}",
        headers={"Authorization": f"Bearer {shop.tokens['czt']}",
                 "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
        content=datatables(table, order=[(0, "desc")]).encode())
    assert r.status_code == 200, r.text
    assert plates(r.json()["data"]) == ["桂A·G4096", "桂A·G2048", "桂A·G1024"]


async def test_datatables_is_refused_where_it_names_or_points_at_a_withheld_item(
        shop: Shop) -> None:
    catalogued(shop)
    # the oracles are real: the provider orders by, and filters by, the ID number
    own = (await get(shop, "DT", datatables(["plate_number", "driver_id_number"],
                                            column_search={1: SECRET}), who="jgswj")).json()
    assert own["recordsFiltered"] == 1
    own = (await get(shop, "DT", datatables([None, "plate_number"], column_search={
        0: SECRET}), who="jgswj")).json()
    assert own["recordsFiltered"] == 1  # column 0 with no data: the server's own column 0
    # a table with a column for a cut item: refused, in any column
    for columns, parameter in [
            (["plate_number", "driver_id_number"], "columns%5B1%5D%5Bdata%5D"),
            (["driverIdNumber", "plate_number"], "columns%5B0%5D%5Bdata%5D"),
            (["plate_number", "mileage_km"], "columns%5B1%5D%5Bdata%5D"),
            (["plate_number", "driver_name,driver_id_number"], "columns%5B1%5D%5Bdata%5D")]:
        problem = await refused(shop, "DT", datatables(columns), parameter)
        assert problem["detail"].startswith("查询参数 ") and "信息项 '" in problem["detail"]
    # a column's filter where the column is named by no word: the server's own column
    for columns in ([None, "plate_number"], ["0", "plate_number"]):
        await refused(shop, "DT", datatables(columns, column_search={0: SECRET[:6]}),
                      "columns%5B0%5D%5Bsearch%5D%5Bvalue%5D")
    # an ordering by a column the request does not name: the server's own column 0
    await refused(shop, "DT", datatables([None, "plate_number"]), "order%5B0%5D%5Bcolumn%5D")
    await refused(shop, "DT", datatables(["plate_number"], order=[(4, "asc")]),
                  "order%5B0%5D%5Bcolumn%5D")
    # as PHP's intval reads the position: 5.0 is 5, "abc" and "-1" fall to column 0
    for value in ("5.0", "abc", "-1", "+5"):
        query = datatables([None, "plate_number"], order=[(1, "asc")]).replace(
            "order%5B0%5D%5Bcolumn%5D=1", f"order%5B0%5D%5Bcolumn%5D={quote(value)}")
        problem = await refused(shop, "DT", query, "order%5B0%5D%5Bcolumn%5D")
        assert value not in problem["detail"].replace("JG-0100", "")  # no value shown
    query = datatables([None, "plate_number"], order=[(1, "asc")]).replace(
        "order%5B0%5D%5Bcolumn%5D=1", "order%5B0%5D%5Bcolumn%5D=1.0")
    assert plates((await listed(shop, "DT", query))["data"])[0] == "桂A·G1024"
    # the global search box searches columns the catalogue cannot see (unless listed)
    await refused(shop, "DT", datatables(["plate_number", "brand"], search=SECRET),
                  "search%5Bvalue%5D")
    # a column written twice, in two spellings an upstream reads as one
    await refused(shop, "DT", datatables(["plate_number"]) + "&columns%5B00%5D%5Bdata%5D=x",
                  "columns%5B00%5D%5Bdata%5D")
    # the masked name may stand as a column (shown masked) but nothing may order or
    # filter by it: the provider's answers show ordering by it bisects the full name
    shown = ["plate_number", "brand", "driver_name"]
    answer = await listed(shop, "DT", datatables(shown))
    assert [r["driver_name"] for r in answer["data"]] == ["李**", "王*", "张*"]
    own = (await get(shop, "DT", datatables(shown, order=[(2, "asc")]), who="jgswj")).json()
    assert [r["driver_name"] for r in own["data"]] == ["张伟", "李建国", "王芳"]
    for query in (datatables(shown, order=[(2, "asc")]),
                  datatables(shown, order=[(0, "asc"), (2, "desc")]),
                  datatables(shown, column_search={2: "李"}),
                  datatables(shown, search="李")):
        problem = await refused(shop, "DT", query, "columns%5B2%5D%5Bdata%5D")
        assert "'driver_name'" in problem["detail"]
    # a table whose data: null column is not orderable and ordered by another passes
    answer = await listed(shop, "DT", datatables([None, "plate_number"], order=[(1, "asc")]))
    assert plates(answer["data"]) == ["桂A·G1024", "桂A·G2048", "桂A·G4096"]


async def test_ruoyi_mybatis_plus_and_spring_data_page_sort_and_filter(shop: Shop) -> None:
    catalogued(shop)
    query = ruoyi({"pageNum": 1, "pageSize": 2, "plateNumber": "", "brand": "红旗",
                   "orderByColumn": "plateNumber", "isAsc": "descending",
                   "params": {"beginTime": "2026-01-01", "endTime": "2026-12-31"}})
    assert "params%5BbeginTime%5D=2026-01-01&params%5BendTime%5D=2026-12-31" in query
    answer = await listed(shop, "RY", query)
    assert plates(answer["rows"]) == ["桂A·G4096", "桂A·G1024"]
    assert (answer["total"], answer["code"]) == (2, 200)
    assert set(answer["rows"][0]) <= {"plate_number", "brand", "driver_name", "driver_phone"}
    answer = await listed(shop, "RY", ruoyi({"pageNum": 1, "pageSize": 10, "params": {
        "beginTime": "2026-02-01", "endTime": "2026-06-01"}}))
    assert plates(answer["rows"]) == ["桂A·G2048"]
    # MyBatis-Plus' Page, as Spring binds it (and as axios writes the brackets)
    for query in ("current=1&size=2&orders[0].column=brand&orders[0].asc=false",
                  "current=1&size=2&orders%5B0%5D.column=brand&orders%5B0%5D.asc=false"
                  "&orders%5B1%5D.column=plate_number&orders%5B1%5D.asc=true"):
        answer = await listed(shop, "MP", query)
        assert plates(answer["records"]) == ["桂A·G1024", "桂A·G4096"]
        assert (answer["total"], answer["pages"], answer["current"]) == (3, 2, 1)
    # Spring Data's Pageable
    answer = await listed(shop, "SD", "page=0&size=2&sort=plate_number,desc")
    assert plates(answer["content"]) == ["桂A·G4096", "桂A·G2048"]
    assert (answer["totalElements"], answer["totalPages"]) == (3, 2)
    answer = await listed(shop, "SD", "page=1&size=2&sort=plateNumber%2Casc")
    assert plates(answer["content"]) == ["桂A·G4096"]


async def test_ruoyi_mybatis_plus_and_spring_data_are_refused_by_a_withheld_item(
        shop: Shop) -> None:
    catalogued(shop)
    own = (await get(shop, "RY", ruoyi({"orderByColumn": "driverIdNumber", "isAsc": "desc"}),
                     who="jgswj")).json()
    assert own["rows"][0]["driver_id_number"] == "450104198807070033"
    for client, query, parameter in [
            ("RY", ruoyi({"pageNum": 1, "orderByColumn": "driverIdNumber",
                          "isAsc": "descending"}), "orderByColumn"),
            ("RY", ruoyi({"driverIdNumber": SECRET[:6]}), "driverIdNumber"),
            ("RY", ruoyi({"params": {"beginTime": "2026-01-01", "driverName": "李"}}),
             "params%5BdriverName%5D"),
            ("MP", "current=1&size=2&orders[0].column=driver_id_number&orders[0].asc=true",
             "orders[0].column"),
            ("MP", "current=1&orders[0].column=brand&orders[1].column=mileage_km",
             "orders[1].column"),
            ("MP", "current=1&orders[0].column=brand&orders[0][column]=x", "orders[0][column]"),
            ("SD", "page=0&size=2&sort=driver_id_number,desc", "sort"),
            ("SD", "page=0&sort=driverName%2Casc", "sort")]:
        await refused(shop, client, query, parameter)


async def test_the_refusal_speaks_the_callers_language(shop: Shop) -> None:
    """Chinese by default and for ``zh``; English when the caller prefers it."""
    catalogued(shop)
    query = datatables(["plate_number", "driver_id_number"])
    parameter = "columns%5B1%5D%5Bdata%5D"
    for accept in (None, "zh-CN,zh;q=0.9,en;q=0.8", "fr-FR, zh;q=0.5", "*"):
        problem = await refused(shop, "DT", query, parameter, accept)
        assert problem["detail"].startswith("查询参数 "), (accept, problem)
        assert "'driver_id_number'" in problem["detail"] and repr(parameter) in problem[
            "detail"] and "JG-0100" in problem["detail"]
    for accept in ("en", "en-US,en;q=0.9,zh-CN;q=0.8", "zh;q=0.3, en-GB;q=0.7"):
        problem = await refused(shop, "DT", query, parameter, accept)
        assert problem["detail"] == (
            f"query parameter {parameter!r} is not allowed on JG-0100: its value names "
            "item 'driver_id_number', which this caller is not given in the clear: a "
            "request may not select, filter or sort by it"), (accept, problem)
    problem = await refused(shop, "DT", datatables(["plate_number"], search="x"),
                            "search%5Bvalue%5D", "zh")
    assert "全文检索" in problem["detail"]
    # forward-auth answers the same refusal in the same language
    for accept, start in ((None, "查询参数 "), ("en", "query parameter ")):
        headers = {"Authorization": f"Bearer {shop.tokens['czt']}",
                   "X-Original-URI": f"/s/vehicles{ROUTES['DT'][0]}?{query}",
                   "X-Original-Method": "GET"}
        if accept is not None:
            headers["Accept-Language"] = accept
        r = await shop.http.get(f"http://127.0.0.1:{shop.port}/auth/verify", headers=headers)
        assert r.status_code == 403 and r.json()["type"].endswith("query_refused"), r.text
        assert r.json()["detail"].startswith(start), r.text
    # the audit record keeps the English reason
    r = await get(shop, "DT", query)
    assert "its value names item 'driver_id_number'" in shop.record(r)["reason"]


async def test_datatables_own_words_are_not_items(shop: Shop) -> None:
    """A resource with an item called ``name`` (or ``column``) cut from czt: DataTables
    sends ``columns[i][name]`` and ``order[j][name]`` with every request; those are the
    protocol's words, not the item, and the table passes. The item as a column's data
    is refused."""
    catalogued(shop)
    extra = [{"name": "name", "title": "使用人", "level": 2},
             {"name": "column", "title": "栏位", "level": 1}]
    apply_state(shop.services, {"catalogue": [
        {**jg_0001(path=ROUTES["DT"][0], records="data"), "code": "JG-0100",
         "items": [*jg_0001()["items"], *extra]}]})
    answer = await listed(shop, "DT", datatables(["plate_number", "brand"],
                                                 order=[(1, "desc")]))
    assert plates(answer["data"]) == ["桂A·G1024", "桂A·G4096", "桂A·G2048"]
    await refused(shop, "DT", datatables(["plate_number", "name"]), "columns%5B1%5D%5Bdata%5D")
    await refused(shop, "DT", datatables(["plate_number"]) + "&name=x", "name")
    await refused(shop, "DT", datatables(["plate_number"]) + "&params%5Bname%5D=x",
                  "params%5Bname%5D")
