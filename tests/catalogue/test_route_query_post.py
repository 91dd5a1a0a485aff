"""A shaped POST's body is checked as its query is (``catalogue.query.body_refusal``):
an upstream on a real socket that merges a form body's parameters into the request's
(as Rack does) and a JSON object's top-level keys (as Rails does), renaming on request
as PostgREST does, behind the gateway on a real socket. ``POST .../search`` with
``select=brand:driver_id_number`` in its body would put the cut ID number under the
granted ``brand``; the gateway reads a shaped request's body whole (up to its limit),
refuses it (400 ``query_refused``, audited) before the upstream sees a byte, and
forwards a passing one as read, with its length. The provider's own POST streams
through unchecked, as before."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from catalogue.query import body_refusal
from gateway.proxy.endpoint import ProxyConfig
from tests.catalogue.test_route_query import ROWS, SECRET, Shop, Upstream, jg_0001, postgrest
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.wiring import apply_state

LIMIT = 128 * 1024
SHOP_PROXY = ProxyConfig(rate=1000, burst=1000, read_timeout=2, connect_timeout=2,
                         max_body_bytes=LIMIT)  # read by the shop fixture
SEARCH = "/s/vehicles/api/vehicles/search"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
RENAME = "brand:driver_id_number"
GRANT = {"resource": "JG-0009", "consumer": "czt", "purpose": "费用核算",
         "items": ["plate_number", "brand", "driver_name", "driver_phone"],
         "until": "2027-12-31"}


def search(**route: Any) -> dict[str, Any]:
    """A POST search over the demo's vehicles, granted to czt as JG-0001 is."""
    return {**jg_0001(method="POST", path="/api/vehicles/search", **route),
            "code": "JG-0009", "name": "公务用车查询"}


def merged(content_type: str, body: bytes) -> str:
    """A body's parameters as the upstream's framework reads them: Rack a form's,
    Rails a JSON object's top-level keys (the last of two equal keys)."""
    media = content_type.split(";")[0].strip().lower()
    if media == FORM:
        return body.decode()
    if media.endswith("json") and body:
        doc = json.loads(body)
        if isinstance(doc, dict):
            return urlencode(doc)
    return ""


@dataclass
class MergingUpstream(Upstream):
    """The shop's upstream, reading a body of either framing and keeping what came
    (method, ``length`` or ``chunked``, the bytes)."""

    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            head = {k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            self.seen.append(target)  # before its body: a request cut short counts
            if head.get("transfer-encoding") == "chunked":
                framing, body = "chunked", b""
                while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    body += (await reader.readexactly(size + 2))[:-2]
                await reader.readuntil(b"\r\n")
            else:
                framing = "length"
                body = await reader.readexactly(int(head.get("content-length", "0")))
            self.bodies.append((method, framing, body))
            query = "&".join(p for p in (target.partition("?")[2],
                                         merged(head.get("content-type", ""), body)) if p)
            answer = json.dumps(self.answer(postgrest(query)), ensure_ascii=False).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(answer)
                         + answer)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
def upstream() -> MergingUpstream:
    return MergingUpstream()


def came(shop: Shop) -> tuple[str, str, bytes]:
    """What the upstream read last: method, framing, body."""
    assert isinstance(shop.upstream, MergingUpstream)
    return shop.upstream.bodies[-1]


async def pieces(body: bytes) -> AsyncIterator[bytes]:
    for k in range(0, len(body), 4096):
        yield body[k:k + 4096]


async def post(shop: Shop, body: bytes, content_type: str | None, *, who: str = "czt",
               chunked: bool = False, query: str = "") -> httpx.Response:
    """``body`` POSTed to the search, with a length or chunked (an iterator)."""
    headers = {"Authorization": f"Bearer {shop.tokens[who]}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await shop.http.post(
        f"http://127.0.0.1:{shop.port}{SEARCH}{query}", headers=headers,
        content=pieces(body) if chunked else body)


async def refused(shop: Shop, body: bytes, content_type: str | None, parameter: str, *,
                  chunked: bool = False, query: str = "", who: str = "czt") -> dict[str, Any]:
    """The consumer's POST refused (400 naming ``parameter``), audited, never sent."""
    before = len(shop.upstream.seen)
    r = await post(shop, body, content_type, chunked=chunked, query=query, who=who)
    assert r.status_code == 400, (body, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:govgate:error:query_refused"
    assert problem["parameter"] == parameter, (body, problem)
    assert SECRET not in r.text
    assert len(shop.upstream.seen) == before, body
    rec = shop.record(r)
    assert (rec["outcome"], rec["status"], rec["resource"]) == ("error", 400, "JG-0009")
    assert rec["extra"]["query_refused"] == parameter and rec["items"] == []
    assert rec["reason"].startswith(f"JG-0009: query parameter {parameter!r} refused")
    assert rec["req_hash"] == hashlib.sha256(body).hexdigest()
    return problem


async def test_a_shaped_posts_body_is_checked_as_its_query_is(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [search()], "grants": [GRANT]})
    form, as_json = f"select={RENAME}".encode(), json.dumps({"select": RENAME}).encode()
    # the upstream really merges both bodies: the provider's own POST (unshaped) gets
    # the ID number as "brand", its JSON body streamed through unchecked (still
    # chunked); a form POST is read whole on every route (a ``_method`` field would
    # change its method, gateway.proxy.admission.method_in_form), then sent with its length
    for content_type, body, framing in ((FORM, form, "length"), (JSON, as_json, "chunked")):
        own = await post(shop, body, content_type, who="jgswj", chunked=True)
        assert own.status_code == 200 and own.json()["items"][0] == {"brand": SECRET}
        assert came(shop) == ("POST", framing, body)
    # a consumer's: refused, whatever the spelling, the type or the framing
    for chunked in (False, True):
        await refused(shop, form, FORM, "select", chunked=chunked)
        await refused(shop, as_json, JSON, "select", chunked=chunked)
    for body, content_type, parameter in [
            (b"plate_number=eq.x&%73elect=" + RENAME.encode(), f"{FORM}; charset=UTF-8",
             "%73elect"),
            (b'{"Fields": "brand"}', "application/vnd.api+json", "Fields"),
            (b'{"limit": 1, "limit": 2}', JSON, "limit"),  # one key twice
            (json.dumps({"pad": "x" * 70_000, "select": RENAME}).encode(), JSON, "select"),
            (b'{"select": ', JSON, "(body)"),  # not JSON
            (b'\xff{"limit": 1}', JSON, "(body)"),  # not UTF-8
            (b"--x\r\nContent-Disposition: form-data; name=select\r\n\r\n" + RENAME.encode()
             + b"\r\n--x--\r\n", "multipart/form-data; boundary=x", "(body)"),
            (form, "text/plain", "(body)"), (form, None, "(body)"),
            (form, f"{FORM}; charset=utf-16", "(body)")]:
        await refused(shop, body, content_type, parameter)
    # a delegated call is shaped for both sides: checked the same way
    await refused(shop, form, FORM, "select", who="delegated")
    # a name in both the query and the body is named twice
    await refused(shop, b'{"limit": 2}', JSON, "limit", query="?limit=1")
    # a legitimate filter passes, is sent as read with its length, and is cut
    body = json.dumps({"plate_number": "eq.桂A·G2048"}, ensure_ascii=False).encode()
    r = await post(shop, body, f"{JSON}; charset=utf-8", chunked=True)
    assert r.status_code == 200, r.text
    (row,) = r.json()["items"]
    assert (row["plate_number"], row["brand"]) == ("桂A·G2048", ROWS[1]["brand"])
    assert "driver_id_number" not in row and "driver_id_number" not in r.text
    assert came(shop) == ("POST", "length", body)
    rec = shop.record(r)
    assert (rec["outcome"], rec["resource"]) == ("allow", "JG-0009")
    assert rec["req_hash"] == hashlib.sha256(body).hexdigest()
    # a JSON array has no parameter names: passes (the upstream merges nothing)
    r = await post(shop, b'[{"select": "brand"}]', JSON)
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    # a route that lists its parameters: the body's names too
    apply_state(shop.services, {"catalogue": [search(query=["plate_number"])]})
    problem = await refused(shop, b"plate_number=eq.x&limit=1", FORM, "limit")
    assert problem["allowed"] == ["plate_number"]
    r = await post(shop, b"PLATE_NUMBER=eq.%E6%A1%82A%C2%B7G1024", FORM)
    assert [row["brand"] for row in r.json()["items"]] == [ROWS[0]["brand"]]


async def test_the_body_limit_still_answers_413(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [search()], "grants": [GRANT]})
    big = json.dumps({"plate_number": "x" * LIMIT}).encode()
    # declared: refused before anything is decided; chunked: at the limit, as read
    for chunked, resource in ((False, None), (True, "JG-0009")):
        r = await post(shop, big, JSON, chunked=chunked)
        assert r.status_code == 413, (chunked, r.text)
        assert r.json()["type"] == "urn:govgate:error:payload_too_large"
        rec = shop.record(r)
        assert (rec["outcome"], rec["status"], rec["resource"]) == ("error", 413, resource)
    assert not shop.upstream.seen  # the upstream never saw a byte of either


def test_body_names_are_read_as_the_querys() -> None:
    assert body_refusal(b"", None, None, "", None) is None  # no body, nothing to read
    assert body_refusal(b"a=1", FORM, None, "", None) is None
    assert body_refusal(b'"select"', JSON, None, "", None) is None  # a scalar
    for body, content_type, encoding, query, parameter in [
            (b"SELECT[]=x", FORM, None, "", "SELECT[]"),
            (b"a=1;%2573elect=x", FORM, None, "", "%2573elect"),  # double encoding
            (b'{"\\uff53elect": 1}', JSON, None, "", "\uff53elect"),  # full-width
            (b"a=1", FORM, None, "A=2", "a"),  # the query's name, again in the body
            (b"a=1", FORM, "gzip", "", "(body)"),
            (b"a=1", f"{FORM}, {JSON}", None, "", "(body)")]:  # two types
        found = body_refusal(body, content_type, encoding, query, None)
        assert found is not None and found.parameter == parameter, body
    assert body_refusal(b'{"plate": 1}', JSON, None, "", ["Plate"]) is None
    assert body_refusal(b'{"plate": 1, "x": 2}', JSON, None, "", ["plate"]) is not None
