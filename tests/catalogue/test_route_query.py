"""A governed route names the query parameters a consumer may send (``route.query``,
``catalogue.query``): the demo's JG-0001 (granted to czt without the driver's ID
number) served by an upstream on a real socket that renames columns on request as
PostgREST does (``?select=brand:driver_id_number`` answers the ID number as
``brand``), through the gateway on a real socket. Without the check the cut item
leaks under a granted name; with it the request is refused (400 problem+json naming
the parameter) and audited, and the upstream never sees it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import httpx
import pytest
import yaml

from audit import AuditLog
from catalogue.query import names_problems, refusal
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.demo import DEMO_STATE
from gateway.proxy.endpoint import ProxyConfig
from gateway.services import Services
from gateway.web.http_server import HeadLimits
from tests.catalogue.conftest import audit_rows
from tests.proxy.conftest import Served, free_socket
from tests.tokens import access_token
from tests.wiring import apply_state, parts

SECRET = "450102198305120031"  # driver_id_number: granted to nobody but the provider
ROWS = [
    {"plate_number": "桂A·G1024", "brand": "红旗 H5", "driver_name": "李建国",
     "driver_id_number": SECRET, "driver_phone": "13907710021"},
    {"plate_number": "桂A·G2048", "brand": "比亚迪 汉", "driver_name": "王芳",
     "driver_id_number": "450103199001010022", "driver_phone": "13907710022"},
]
VEHICLES = "/s/vehicles/api/vehicles"


def postgrest(query: str) -> list[dict[str, Any]]:
    """The rows as PostgREST answers ``query``, read as a lax framework reads a query
    string (``&`` and ``;`` separate, names decoded, letter case and ``[]`` ignored):
    ``select=alias:column,...`` projects and renames, ``column=eq.value`` filters,
    ``limit=n`` cuts."""
    rows = [dict(r) for r in ROWS]
    for part in query.replace(";", "&").split("&"):
        name, _, value = part.partition("=")
        name, value = unquote_plus(name).lower().removesuffix("[]").lstrip("$"), \
            unquote_plus(value)
        if name == "select":
            cols = [c.partition(":") for c in value.split(",")]
            rows = [{alias: r.get(col or alias) for alias, _, col in cols}
                    for r in rows]
        elif name == "limit":
            rows = rows[:int(value)]
        elif value.startswith("eq."):
            rows = [r for r in rows if r.get(name) == value[3:]]
    return rows


@dataclass
class Upstream:
    """A raw HTTP/1.1 server answering ``/api/vehicles`` as :func:`postgrest` does,
    in the demo's envelope (``{"items": [...], "total": n}``); it keeps every
    request target it read. A form body's parameters count after the query string's,
    on any method, as Rack and Express's body parsers read them."""

    seen: list[str] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode("latin-1")
            self.seen.append(target)
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            form = (await reader.readexactly(length)).decode("latin-1") if length else ""
            rows = postgrest("&".join(p for p in (target.partition("?")[2], form) if p))
            body = json.dumps(self.answer(rows), ensure_ascii=False).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
            await writer.drain()
        finally:
            writer.close()

    def answer(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"items": rows, "total": len(rows)}


@dataclass
class Shop:
    services: Services
    upstream: Upstream
    port: int
    http: httpx.AsyncClient
    tokens: dict[str, str]

    async def get(self, target: str, *, who: str = "czt") -> httpx.Response:
        return await self.http.get(f"http://127.0.0.1:{self.port}{target}",
                                   headers={"Authorization": f"Bearer {self.tokens[who]}"})

    async def verify(self, target: str, *, who: str = "czt") -> httpx.Response:
        return await self.http.get(f"http://127.0.0.1:{self.port}/auth/verify", headers={
            "Authorization": f"Bearer {self.tokens[who]}", "X-Original-URI": target,
            "X-Original-Method": "GET"})

    def record(self, r: httpx.Response, event: str = "proxy_request") -> dict[str, Any]:
        found = [rec for rec in audit_rows(self.services, event)
                 if rec["request_id"] == r.headers["x-request-id"]]
        assert len(found) == 1
        return found[0]

    async def refused(self, target: str, parameter: str, *, who: str = "czt"
                      ) -> dict[str, Any]:
        """``target`` refused (400 naming ``parameter``), audited, never sent upstream."""
        before = len(self.upstream.seen)
        r = await self.get(target, who=who)
        assert r.status_code == 400, (target, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["type"] == "urn:govgate:error:query_refused", target
        assert problem["parameter"] == parameter and repr(parameter) in problem["detail"]
        assert SECRET not in r.text
        assert len(self.upstream.seen) == before, target
        rec = self.record(r)
        assert (rec["outcome"], rec["status"], rec["resource"]) == ("error", 400, "JG-0001")
        assert rec["extra"]["query_refused"] == parameter and rec["items"] == []
        assert rec["reason"].startswith(f"JG-0001: query parameter {parameter!r} refused")
        return problem


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


# the shop's proxy; a test module importing the shop may set its own SHOP_PROXY
SHOP_PROXY = ProxyConfig(rate=1000, burst=1000, read_timeout=2, connect_timeout=2)


@pytest.fixture
async def shop(services: Services, clock: FrozenClock, upstream: Upstream,
               request: pytest.FixtureRequest) -> AsyncIterator[Shop]:
    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="query-test",
                   clock=lambda: clock().timestamp())
    services.audit = log
    sock = free_socket()
    server = await asyncio.start_server(upstream.handle, sock=sock)
    apply_state(services, {"systems": [
        {"code": "vehicles", "name": "公务用车", "department": "jgswj",
         "upstream": f"http://127.0.0.1:{sock.getsockname()[1]}"}],
        "clients": [{"client_id": "czt-exchange", "name": "czt-exchange", "department": "czt",
                     "grant_types": ["client_credentials"], "scope": "proxy",
                     "secret": "query-test-secret-0123456789abcdef", "token_exchange": True}]})
    built = parts(services, proxy_config=getattr(request.module, "SHOP_PROXY", SHOP_PROXY))
    tokens = {
        "czt": access_token(services, sub=None, department="czt", roles=("staff",),
                            client_id="finance-system"),  # granted, shaped
        "jgswj": access_token(services, sub=None, department="jgswj", roles=("staff",),
                              client_id="office-web"),  # the provider: unshaped
        # a czt user through czt's client (token exchange, RFC 8693): both sides decide
        "delegated": access_token(services, sub="zhao.min", department="czt",
                                  client_id="czt-exchange", scope="proxy:vehicles",
                                  aud=f"{services.settings.issuer}/s/vehicles",
                                  act={"sub": "client:czt-exchange"}),
    }
    async with Served(create_app(built), limits=HeadLimits.from_settings(services.settings)
                      ) as gw, httpx.AsyncClient(timeout=10) as http:
        yield Shop(services, upstream, gw.port, http, tokens)
    await built.proxy.aclose()
    server.close()
    await log.close()
    services.audit = sync_log


def jg_0001(**route: Any) -> dict[str, Any]:
    """The demo's JG-0001 entry, its route given ``route``'s keys."""
    doc = yaml.safe_load(Path(DEMO_STATE).read_text(encoding="utf-8"))
    entry = next(e for e in doc["catalogue"] if e["code"] == "JG-0001")
    entry["route"] = {**entry["route"], **route}
    return entry


async def test_without_a_list_projection_parameters_are_refused_in_every_spelling(
        shop: Shop) -> None:
    # the upstream really renames: the provider (its own data, unshaped) gets the ID
    # number under "brand"; this is what a consumer's cut would release as "brand"
    own = await shop.get(f"{VEHICLES}?select=brand:driver_id_number", who="jgswj")
    assert own.status_code == 200 and own.json()["items"][0] == {"brand": SECRET}
    # a consumer: refused before the upstream is called, whatever the spelling
    await shop.refused(f"{VEHICLES}?select=brand:driver_id_number", "select")
    for target, parameter in [
            ("?%73elect=brand:driver_id_number", "%73elect"),
            ("?SELECT=brand:driver_id_number", "SELECT"),
            ("?select[]=brand:driver_id_number", "select[]"),
            ("?plate_number=eq.x;select=brand:driver_id_number", "select"),
            ("?%24select=brand:driver_id_number", "%24select"),
            ("?fields=brand", "fields"), ("?callback=f", "callback"),
            ("?%2573elect=brand:driver_id_number", "%2573elect"),  # double encoding
            ("?limit=1&LIMIT=2", "LIMIT")]:  # one parameter twice
        await shop.refused(VEHICLES + target, parameter)
    # a delegated call is shaped for both sides: checked the same way
    await shop.refused(f"{VEHICLES}?select=brand:driver_id_number", "select", who="delegated")
    refused = audit_rows(shop.services, "proxy_request")[-1]
    assert refused["extra"]["act"] == {"sub": "client:czt-exchange"}
    assert (await shop.get(VEHICLES, who="delegated")).status_code == 200
    # other parameters still reach the upstream; the answer is cut as granted
    r = await shop.get(f"{VEHICLES}?plate_number=eq.%E6%A1%82A%C2%B7G2048")
    assert r.status_code == 200, r.text
    (row,) = r.json()["items"]
    assert row["plate_number"] == "桂A·G2048" and "driver_id_number" not in row
    assert shop.upstream.seen[-1].endswith("?plate_number=eq.%E6%A1%82A%C2%B7G2048")


async def test_a_route_that_lists_its_parameters_takes_only_those(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [jg_0001(query=["plate_number", "limit"])]})
    r = await shop.get(f"{VEHICLES}?Plate_Number=eq.%E6%A1%82A%C2%B7G1024&limit=1")
    assert r.status_code == 200, r.text
    assert [row["brand"] for row in r.json()["items"]] == ["红旗 H5"]
    problem = await shop.refused(f"{VEHICLES}?limit=1&order=brand.desc", "order")
    assert problem["allowed"] == ["plate_number", "limit"]
    await shop.refused(f"{VEHICLES}?select=brand:driver_id_number", "select")
    await shop.refused(f"{VEHICLES}?limit=1&limit=2", "limit")
    # an empty list: no parameter at all
    apply_state(shop.services, {"catalogue": [jg_0001(query=[])]})
    await shop.refused(f"{VEHICLES}?limit=1", "limit")
    assert (await shop.get(VEHICLES)).status_code == 200


async def test_forward_auth_still_refuses_the_shaped_route_with_a_query(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [jg_0001(query=["plate_number"])]})
    for target in (f"{VEHICLES}?plate_number=eq.x", f"{VEHICLES}?select=brand:driver_id_number"):
        r = await shop.verify(target)
        assert r.status_code == 403, (target, r.text)
        assert "x-govgate-assertion" not in r.headers
        rec = shop.record(r, "forward_auth")
        assert (rec["outcome"], rec["status"], rec["resource"]) == ("deny", 403, "JG-0001")
    listed = await shop.verify(f"{VEHICLES}?plate_number=eq.x")
    assert listed.json()["type"] == "urn:govgate:error:shaping_required"
    refused = await shop.verify(f"{VEHICLES}?select=brand:driver_id_number")
    assert refused.json()["type"] == "urn:govgate:error:query_refused"
    assert shop.record(refused, "forward_auth")["extra"]["refused_as"] == 400
    assert not shop.upstream.seen


def test_names_are_checked() -> None:
    assert names_problems(None) == [] and names_problems(["plate", "$top", "a.b-c"]) == []
    assert names_problems("plate") == ["query must be a list of parameter names"]
    assert names_problems(["plate", "PLATE"]) == [
        "query[1]: parameter 'PLATE' listed twice (first at query[0])"]
    bad = names_problems(["a b", "", "-x", 7, "x" * 65, "a&b"])
    assert [p.split(":")[0] for p in bad] == [f"query[{k}]" for k in range(6)]
    assert names_problems([f"p{k}" for k in range(51)])[0] == (
        "query names more than 50 parameters")


def test_names_are_read_as_the_laxest_upstream_reads_them() -> None:
    for sent in ("SELECT", "%53elect", "+select+", "ｓｅｌｅｃｔ", "select[0]", "select%00x",
                 "$Select", "%24apply", "expand", "fields[vehicles]", "jsonp"):
        found = refusal(f"x=1&{sent}=y", None)
        assert found is not None and found.parameter == sent, sent
    assert refusal("plate=1&q=select&&=x", None) is None
    assert refusal("Plate=1", ["plate"]) is None
    assert refusal("plate=1&plate%5B%5D=2", ["plate"]) is not None
