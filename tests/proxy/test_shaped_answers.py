"""A governed route's answer (the demo catalogue's JG-0001, ``GET /api/vehicles``,
granted to czt in part: plate, brand, the driver's name masked, the phone encrypted)
from a lax upstream on a real socket that answers whatever bytes the test names,
through the gateway on a real socket, read by httpx: every encoding, framing, odd
JSON and HTTP semantic is either shaped as the grant says or refused (502
``shaping_refused``, audited with the reason), never passed raw; conditional and
range requests never reach the upstream; the shaped answer is never kept by a
shared cache (a real nginx ``proxy_cache`` in front)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import os
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit import AuditLog
from catalogue import ShapeError
from catalogue.model import Item
from catalogue.shaping import decode_content, shape
from gateway.app import create_app
from gateway.clock import FrozenClock
from gateway.proxy.endpoint import ProxyConfig
from gateway.services import Services
from gateway.web.http_server import HeadLimits
from tests.catalogue.conftest import audit_rows, clock, services  # noqa: F401 (fixtures)
from tests.proxy.conftest import Served, exchange, free_socket, front_proxy, status_of
from tests.proxy.test_forward_auth import NGINX
from tests.tokens import access_token
from tests.wiring import apply_state, parts

SECRET = "450102198305120031"  # driver_id_number: granted to nobody but the provider
ROWS = [{"plate_number": "桂A·G1024", "brand": "红旗 H5", "driver_name": "李建国",
         "driver_id_number": SECRET, "driver_phone": "13907710021"}]
BODY = json.dumps({"items": ROWS, "total": 1}, ensure_ascii=False).encode()
GRANTED = {"plate_number", "brand", "driver_name", "driver_phone"}
Case = Callable[[bytes], bytes]


def answer(status: str, headers: list[tuple[str, str]], body: bytes, *,
           length: bool = True) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers)]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + body


def json_answer(body: bytes, *more: tuple[str, str], ctype: str = "application/json") -> Case:
    return lambda head: answer("200 OK", [("Content-Type", ctype), *more], body)


def etag_of(body: bytes) -> str:
    """An ETag as Express makes it by default: a hash of the body."""
    return '"' + hashlib.sha1(body).hexdigest() + '"'  # noqa: S324 - as Express does


def honest(head: bytes) -> bytes:
    """An upstream that honours what the client asks for, as most frameworks do:
    ``If-None-Match`` (304), ``Range`` (206), ``Accept-Encoding: gzip``."""
    fields = {k.strip().lower(): v.strip() for k, _, v in (
        line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:] if line)}
    validators = [("ETag", etag_of(BODY)), ("Accept-Ranges", "bytes")]
    if fields.get("if-none-match") == etag_of(BODY):
        return answer("304 Not Modified", validators, b"", length=False)
    if fields.get("range") == "bytes=0-40":
        return answer("206 Partial Content", [*validators, ("Content-Type", "application/json"),
                                              ("Content-Range", f"bytes 0-40/{len(BODY)}")],
                      BODY[:41])
    if "gzip" in fields.get("accept-encoding", ""):
        return answer("200 OK", [*validators, ("Content-Type", "application/json"),
                                 ("Content-Encoding", "gzip")], gzip.compress(BODY))
    return answer("200 OK", [*validators, ("Content-Type", "application/json")], BODY)


def deep(n: int) -> bytes:
    return b'{"items":[{"brand":' + b"[" * n + b"]" * n + b"}]}"


CASES: dict[str, Case] = {
    "honest": honest,
    # encodings the gateway reads (it asks for identity; a lax upstream compresses anyway)
    "gzip": json_answer(gzip.compress(BODY), ("Content-Encoding", "gzip")),
    "deflate": json_answer(zlib.compress(BODY), ("Content-Encoding", "deflate")),
    "stacked": json_answer(gzip.compress(zlib.compress(BODY)),
                           ("Content-Encoding", "deflate"), ("Content-Encoding", "gzip")),
    "gb18030": json_answer(BODY.decode().encode("gb18030"),
                           ctype="application/json; charset=GB18030"),
    "gbk": json_answer(BODY.decode().encode("gbk"), ctype='application/json;charset="gbk"'),
    "bom": json_answer(b"\xef\xbb\xbf" + BODY),
    "untyped": lambda head: answer("200 OK", [], BODY),
    "vnd": json_answer(BODY, ctype="application/vnd.x+json"),
    "type-twice": json_answer(BODY, ("Content-Type", "application/json")),
    # refused: each with the reason its audit record gives
    "x-odd": json_answer(BODY, ("Content-Encoding", "x-odd")),
    "br": json_answer(BODY, ("Content-Encoding", "br")),
    "gzip-cut": json_answer(gzip.compress(BODY)[:-9], ("Content-Encoding", "gzip")),
    "utf-16": json_answer(BODY.decode().encode("utf-16"),
                          ctype="application/json; charset=utf-16"),
    "text": json_answer(BODY, ctype="text/plain"),
    "two-types": json_answer(BODY, ("Content-Type", "text/html")),
    "ndjson": json_answer(BODY + b"\n" + BODY, ctype="application/x-ndjson"),
    "json-seq": json_answer(b"\x1e" + BODY + b"\n", ctype="application/json-seq"),
    "nd-as-json": json_answer(BODY + b"\n" + BODY),
    "nan": json_answer(b'{"items":[{"brand":NaN}]}'),
    "infinity": json_answer(b'{"items":[{"brand":-Infinity}]}'),
    "overflow": json_answer(b'{"items":[{"brand":1e999}]}'),
    "bigint": json_answer(b'{"items":[{"brand":' + b"9" * 5000 + b"}]}"),
    "deep": json_answer(deep(100_000)),
    "surrogate": json_answer(b'{"items":[{"brand":"\\ud800"}]}'),
    # a granted string item holding an object (other items inside), and a masked one
    "nested": json_answer(json.dumps({"items": [{
        "plate_number": "桂A·G1024", "brand": {"driver_id_number": SECRET}}]}).encode()),
    "nested-masked": json_answer(json.dumps({"items": [{
        "plate_number": "桂A·G1024", "driver_name": ["李建国", SECRET]}]}).encode()),
    "lax-206": lambda head: answer("206 Partial Content", [
        ("Content-Type", "application/json"), ("Content-Range", "bytes 10-30/99")],
        b'{"brand":"' + SECRET.encode() + b'"}'),
    "truncated": lambda head: answer("200 OK", [("Content-Type", "application/json"),
                                                ("Content-Length", str(len(BODY) + 9))],
                                     BODY, length=False),
    "longer": lambda head: answer("200 OK", [("Content-Type", "application/json"),
                                             ("Content-Length", str(len(BODY) - 3))],
                                  BODY, length=False),
    # held before: shaped as granted whatever the parser makes of the duplicates
    "dup-keys": json_answer(b'{"items":[{"brand":"' + SECRET.encode() + b'","brand":"x",'
                            b'"Driver_ID_Number":"' + SECRET.encode() + b'"}]}'),
    # a head describing the raw body, and an upstream that lets caches keep it
    "validators": json_answer(BODY, ("ETag", etag_of(BODY)), ("Content-MD5", "bWQ1"),
                              ("Content-Digest", "sha-256=:cmF3Og==:"),
                              ("Repr-Digest", "sha-256=:cmF3Og==:"),
                              ("X-Amz-Checksum-Sha256", "cmF3"),
                              ("Last-Modified", "Mon, 02 Mar 2026 00:00:00 GMT"),
                              ("Cache-Control", "public, max-age=600"),
                              ("Expires", "Thu, 31 Dec 2037 23:55:55 GMT"),
                              ("Accept-Ranges", "bytes"), ("X-Upstream", "kept")),
    # what a front nginx obeys from the answers it passes: a cache lifetime above
    # Cache-Control, and an internal redirect
    "front-control": json_answer(BODY, ("Cache-Control", "public, s-maxage=600"),
                                 ("CDN-Cache-Control", "max-age=600"),
                                 ("X-Accel-Expires", "600"),
                                 ("X-Accel-Redirect", "/internal/secret"),
                                 ("X-Sendfile", "/etc/passwd")),
    # private with field names (RFC 9111 5.2.2.7): a shared cache may keep the answer
    # without those fields
    "private-fields": json_answer(BODY, ("Cache-Control", 'private="Set-Cookie", max-age=600'),
                                  ("Set-Cookie", "s=1")),
    # an item's value in a header field named after it, as a detail route might send
    "item-headers": json_answer(BODY, ("X-Driver-ID-Number", SECRET),
                                ("Driver_Phone", "13907710021"), ("X-Total-Count", "1")),
    "trailers": lambda head: (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: X-Driver, Content-Type\r\nConnection: close\r\n\r\n"
        + b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\nX-Driver: " + SECRET.encode()
        + b"\r\nContent-Type: text/html\r\nSet-Cookie: t=1\r\n\r\n"),
    # an item's copy beside the records, as a detail route's envelope might carry it
    "envelope": json_answer(json.dumps({
        "items": ROWS, "total": 1, "driver_name": "李建国", "Driver-ID-Number": SECRET,
        "driverPhone": "13907710021", "ＤＲＩＶＥＲ_ＩＤ_ＮＵＭＢＥＲ": SECRET,
        "meta": {"driver_id_number": SECRET}}, ensure_ascii=False).encode()),
    # numbers past a double's precision, as a registry or a ledger writes them
    "numbers": json_answer(b'{"items":[{"plate_number":12345678901234567890,'
                           b'"brand":0.1000000000000000055511151231257827},'
                           b'{"plate_number":-9007199254740993,"brand":1E2},'
                           b'{"plate_number":1e-400,"brand":123456789.123456789012},'
                           b'{"plate_number":0.10,"brand":-0.0}],"total":4}'),
    "204": lambda head: answer("204 No Content", [("Content-Type", "application/json")],
                               b"", length=False),
    "304": lambda head: answer("304 Not Modified", [("ETag", etag_of(BODY))], b"",
                               length=False),
    "404-echo": lambda head: answer("404 Not Found", [("Content-Type", "application/json")],
                                    BODY),
    "500-echo": lambda head: answer("500 Oops", [("Content-Type", "application/json")],
                                    b'{"error":"' + SECRET.encode() + b'"}'),
}
REFUSED = {
    "x-odd": "content coding 'x-odd' cannot be read",
    "br": "content coding 'br' cannot be read",
    "gzip-cut": "not one whole gzip stream",
    "utf-16": "charset 'utf-16' cannot be read",
    "text": "text/plain, not JSON",
    "two-types": "not JSON",
    "ndjson": "application/x-ndjson, not JSON",
    "json-seq": "application/json-seq, not JSON",
    "nd-as-json": "not valid JSON",
    "nan": "not valid JSON",
    "infinity": "not valid JSON",
    "overflow": "not valid JSON",
    "bigint": "not valid JSON",
    "deep": "nested too deeply",
    "surrogate": "lone surrogate",
    "nested": "item brand is a string in the catalogue; record #0 holds a JSON object",
    "nested-masked": "item driver_name is a string in the catalogue; record #0 holds a JSON array",
    "lax-206": "partial answer (206)",
    "longer": "not valid JSON",
}


@dataclass
class OddUpstream:
    """A raw HTTP/1.1 server: the ``?case=`` of each request names the bytes it answers
    (then it closes); it keeps every request head it read."""

    seen: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.seen.append(head)
            case = head.split(b" ", 2)[1].decode().partition("case=")[2]
            writer.write(CASES[case](head))
            await writer.drain()
        finally:
            writer.close()

    def last(self) -> dict[str, str]:
        lines = self.seen[-1].decode("latin-1").split("\r\n")[1:]
        return {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines
                                                               if ln)}


@dataclass
class Shop:
    services: Services
    upstream: OddUpstream
    port: int
    http: httpx.AsyncClient
    tokens: dict[str, str]

    async def get(self, case: str, method: str = "GET", *, who: str = "czt",
                  port: int | None = None, **headers: str) -> httpx.Response:
        return await self.http.request(
            method, f"http://127.0.0.1:{port or self.port}/s/vehicles/api/vehicles?case={case}",
            headers={"Authorization": f"Bearer {self.tokens[who]}", **headers})

    def record(self, r: httpx.Response) -> dict[str, Any]:
        found = [rec for rec in audit_rows(self.services, "proxy_request")
                 if rec["request_id"] == r.headers["x-request-id"]]
        assert len(found) == 1
        return found[0]


@pytest.fixture
async def shop(services: Services, clock: FrozenClock) -> AsyncIterator[Shop]:  # noqa: F811
    sync_log = services.audit
    log = AuditLog(services.engine, keys=services.keys, writer_id="shape-test",
                   clock=lambda: clock().timestamp())
    services.audit = log
    odd = OddUpstream()
    sock = free_socket()
    server = await asyncio.start_server(odd.handle, sock=sock)
    apply_state(services, {"systems": [
        {"code": "vehicles", "name": "公务用车", "department": "jgswj",
         "upstream": f"http://127.0.0.1:{sock.getsockname()[1]}"}]})
    built = parts(services, proxy_config=ProxyConfig(rate=1000, burst=1000, read_timeout=2,
                                                     connect_timeout=2))
    tokens = {
        "czt": access_token(services, sub=None, department="czt", roles=("staff",),
                            client_id="finance-system"),  # has an encryption key
        "czt-portal": access_token(services, sub=None, department="czt", roles=("staff",),
                                   client_id="czt-portal"),  # has none: the phone withheld
        "nn": access_token(services, sub=None, department="nn-jgsw", roles=("staff",),
                           client_id="nn-client"),  # no grant at all
        "jgswj": access_token(services, sub=None, department="jgswj", roles=("staff",),
                              client_id="office-web"),  # the provider: unshaped
    }
    async with Served(create_app(built), limits=HeadLimits.from_settings(services.settings)
                      ) as gw, httpx.AsyncClient(timeout=10) as http:
        yield Shop(services, odd, gw.port, http, tokens)
    await built.proxy.aclose()
    server.close()
    await log.close()
    services.audit = sync_log


def assert_shaped(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.content)
    record = r.json()["items"][0]
    assert set(record) == GRANTED
    assert record["driver_name"] == "李**" and record["driver_phone"].count(".") == 4
    assert SECRET not in r.text and "13907710021" not in r.text


async def test_conditional_range_and_encoding_requests_never_reach_the_upstream(
        shop: Shop) -> None:
    """The upstream's ETag hashes its whole body (as Express's does): were the caller's
    ``If-None-Match`` forwarded, a 304 would confirm a guess at the cut items (here the
    true body: 304 instead of the shaped 200). Range and Accept-Encoding likewise: the
    upstream answers the whole body, unencoded, and the caller gets it shaped."""
    asks = [{"If-None-Match": etag_of(BODY)}, {"If-Match": '"x"'},
            {"If-Modified-Since": "Mon, 02 Mar 2026 00:00:00 GMT"},
            {"If-Unmodified-Since": "Mon, 02 Mar 2020 00:00:00 GMT"},
            {"Range": "bytes=0-40"}, {"Range": "bytes=0-40", "If-Range": etag_of(BODY)},
            {"Accept-Encoding": "gzip"}]
    for ask in asks:
        r = await shop.get("honest", **ask)
        assert_shaped(r)
        for name in ("if-none-match", "if-match", "if-modified-since", "if-unmodified-since",
                     "range", "if-range"):
            assert name not in shop.upstream.last(), (ask, name)
        assert shop.upstream.last()["accept-encoding"] == "identity", ask
        assert shop.record(r)["items"] == sorted(GRANTED, key=list(ROWS[0]).index)


async def test_encodings_charsets_and_framings_are_shaped_or_refused_with_a_reason(
        shop: Shop) -> None:
    # numbers leave as the upstream wrote them: re-serialising made each number with a
    # fraction or exponent its nearest double's text (0.1000000000000000055511151231257827
    # became 0.1, 1E2 100.0, 123456789.123456789012 lost six digits); integers past 2^53
    # were exact already; one beyond a double is still refused (the overflow case)
    r = await shop.get("numbers")
    assert r.status_code == 200, r.text
    assert r.content == (b'{"items":[{"plate_number":12345678901234567890,'
                         b'"brand":0.1000000000000000055511151231257827},'
                         b'{"plate_number":-9007199254740993,"brand":1E2},'
                         b'{"plate_number":1e-400,"brand":123456789.123456789012},'
                         b'{"plate_number":0.10,"brand":-0.0}],"total":4}')
    assert shop.record(r)["extra"]["records"] == 4
    for case in ("gzip", "deflate", "stacked", "gb18030", "gbk", "bom", "untyped", "vnd",
                 "type-twice", "dup-keys"):
        r = await shop.get(case)
        if case == "dup-keys":  # the last "brand" is the one parsed, shaped and released
            assert r.status_code == 200 and r.json() == {"items": [{"brand": "x"}]}, case
            continue
        assert_shaped(r)
        assert r.json()["items"][0]["plate_number"] == "桂A·G1024", case
    for case, why in REFUSED.items():
        r = await shop.get(case)
        assert r.status_code == 502, (case, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:govgate:error:shaping_refused", case
        assert SECRET not in r.text and "李建国" not in r.text
        record = shop.record(r)
        assert (record["outcome"], record["status"], record["items"]) == ("error", 502, [])
        assert why in record["extra"]["refused"], (case, record["extra"])
    r = await shop.get("truncated")  # the upstream closed short of its Content-Length
    assert r.status_code == 502 and r.json()["type"] == "urn:govgate:error:bad_gateway"
    assert "closed the connection mid-response" in shop.record(r)["extra"]["upstream_error"]


async def test_the_head_of_a_shaped_answer_describes_it_and_no_cache_keeps_it(
        shop: Shop) -> None:
    """No validator or checksum of the raw body, no upstream cache directive: the
    answer is the caller's own. HEAD gives the same head (its audit record releases
    nothing), asked upstream as the GET; a trailer never becomes a header field."""
    raw = ("etag", "content-md5", "content-digest", "repr-digest", "x-amz-checksum-sha256",
           "last-modified", "expires", "accept-ranges")
    for method in ("GET", "HEAD"):
        r = await shop.get("validators", method)
        assert r.status_code == 200
        for name in raw:
            assert name not in r.headers, (method, name)
        assert r.headers["cache-control"] == "private, no-store"
        # a field of the upstream's own passes only as a count (catalogue.pagination)
        assert "x-upstream" not in r.headers and r.headers["content-type"] == (
            "application/json")
        assert shop.record(r)["extra"]["headers_dropped"] == ["x-upstream"]
        if method == "HEAD":
            assert r.content == b"" and shop.record(r)["items"] == []
        else:
            assert_shaped(r)
            shaped_length = r.headers["content-length"]
    assert r.headers["content-length"] == shaped_length  # the HEAD's: the GET's, shaped
    # a HEAD answered 200 with no length where the GET was 502 (a body the proxy cannot
    # shape): the upstream is asked the GET, the HEAD gets the GET's status and head,
    # the shaped length (never the raw body's), no body
    for case in ("honest", "bigint", "text"):
        get, head = await shop.get(case), await shop.get(case, "HEAD")
        assert shop.upstream.seen[-1].startswith(b"GET "), case
        assert head.status_code == get.status_code, (case, get.status_code, head.status_code)
        assert head.content == b"" and int(head.headers["content-length"]) == len(
            get.content) != len(BODY), case
        assert head.headers["content-type"] == get.headers["content-type"], case
    assert get.status_code == 502
    assert shop.record(head)["extra"]["refused"] == shop.record(get)["extra"]["refused"]
    r = await shop.get("trailers")
    assert_shaped(r)
    assert "x-driver" not in r.headers and "set-cookie" not in r.headers
    assert SECRET not in str(r.headers)


async def test_a_private_naming_fields_still_keeps_the_answer_from_shared_caches(
        shop: Shop) -> None:
    own = await shop.get("private-fields", who="jgswj")  # the provider's, unshaped
    assert own.status_code == 200 and SECRET in own.text
    directives = [d.strip() for d in own.headers["cache-control"].split(",")]
    assert "private" in directives and "max-age=600" in directives, directives


async def test_a_header_field_named_after_an_item_is_dropped_from_a_shaped_answer(
        shop: Shop) -> None:
    for method in ("GET", "HEAD"):
        r = await shop.get("item-headers", method)
        assert r.status_code == 200
        assert SECRET not in str(r.headers) and "13907710021" not in str(r.headers), method
        assert r.headers["x-total-count"] == "1"
        assert shop.record(r)["extra"]["outside_headers"] == ["x-driver-id-number",
                                                              "driver_phone"]
    own = await shop.get("item-headers", who="jgswj")  # the provider's, unshaped
    assert own.headers["x-driver-id-number"] == SECRET


async def test_bodiless_and_error_statuses_of_a_shaped_route(shop: Shop) -> None:
    r = await shop.get("204")  # was refused as a body that is not JSON
    assert (r.status_code, r.content) == (204, b"")
    assert "content-length" not in r.headers and "content-type" not in r.headers
    assert shop.record(r)["outcome"] == "allow" and shop.record(r)["items"] == []
    r = await shop.get("304")  # a lax upstream answering 304 unasked
    assert (r.status_code, r.content) == (304, b"")
    assert "etag" not in r.headers and "content-length" not in r.headers
    for case, status in (("404-echo", 404), ("500-echo", 500)):
        r = await shop.get(case)  # an error body echoing records loses it
        assert (r.status_code, r.json()) == (status, {"upstream_status": status})
        assert shop.record(r)["items"] == []


async def test_items_beside_the_records_and_tunnels_past_shaping(shop: Shop) -> None:
    """An envelope value under an item's name (any spelling) would pass uncut, unmasked,
    unencrypted: dropped, and the audit record names it. An ``Upgrade`` (WebSocket,
    h2c) opens no tunnel past shaping; other methods on the route are refused."""
    r = await shop.get("envelope")
    assert_shaped(r)
    assert set(r.json()) == {"items", "total"}
    assert "李建国" not in r.text
    assert sorted(shop.record(r)["extra"]["outside_records"]) == sorted(
        ["driver_name", "Driver-ID-Number", "driverPhone", "ＤＲＩＶＥＲ_ＩＤ_ＮＵＭＢＥＲ"])
    token = shop.tokens["czt"]
    for upgrade in ("Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    "Sec-WebSocket-Version: 13\r\n",
                    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"):
        out = await exchange(shop.port, (
            "GET /s/vehicles/api/vehicles?case=honest HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {token}\r\nConnection: Upgrade\r\n{upgrade}"
            "Connection: close\r\n\r\n").encode(), wait=5)
        assert status_of(out) == 200 and b"driver_phone" in out and SECRET.encode() not in out
        assert "upgrade" not in shop.upstream.last()
    for method in ("OPTIONS", "TRACE", "PROPFIND", "POST"):
        r = await shop.get("honest", method)
        assert r.status_code == 403, method
        assert shop.record(r)["outcome"] == "deny"


def test_a_decoded_body_is_bounded() -> None:
    bomb = gzip.compress(b" " * 100_000)
    assert decode_content(bomb, "gzip", 100_000) == b" " * 100_000
    with pytest.raises(ShapeError, match="decodes to over 99999 bytes"):
        decode_content(bomb, "gzip", 99_999)
    with pytest.raises(ShapeError, match="not one whole gzip stream"):  # two members
        decode_content(bomb + bomb, "gzip", 10**6)
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    assert decode_content(raw.compress(BODY) + raw.flush(), "deflate", 10**6) == BODY


def test_nesting_at_the_parsers_limit_is_a_shape_error_whatever_step_meets_it() -> None:
    """Around the parser's depth limit, whichever step meets it (parsing, or encoding
    the released value): a ShapeError with its reason (audited), never a bare
    RecursionError (refused without one)."""
    items = [Item("o", "o", type="array")]
    reasons = set()
    for depth in range(900, 1100, 2):
        body = b'{"items":[{"o":' + b"[" * depth + b"]" * depth + b"}]}"
        try:
            shape(body, records="items", items=items, allowed=["o"])
        except ShapeError as exc:
            reasons.add(exc.description)
    assert reasons == {"response body is nested too deeply"}


NGINX_CACHE = """{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache keys_zone=shared:1m;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{gateway};
            proxy_cache shared;
        }}
    }}
}}
"""


@contextlib.asynccontextmanager
async def caching_nginx(tmp: Path, gateway: int) -> AsyncIterator[int]:
    """nginx with a shared cache (``proxy_cache``, its default key: the URI) in front of
    the gateway, as an operator might put one to spare the upstreams."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    conf = tmp / "nginx.conf"
    # as root, nginx's workers would run as nobody, who cannot write the test's cache
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CACHE.format(user=user, tmp=tmp, port=port, gateway=gateway))
    assert NGINX is not None
    async with front_proxy([NGINX, "-p", str(tmp), "-c", str(conf)], port, tries=250,
                           log=tmp / "error.log"):
        yield port


async def test_a_shared_cache_in_front_never_serves_one_callers_shaped_answer_to_another(
        shop: Shop, tmp_path: Path) -> None:
    """The upstream says ``Cache-Control: public, max-age=600``: were that passed on,
    nginx would keep czt's shaped answer (czt's items, a JWE to czt's key) and hand it
    to a department with no grant without asking the gateway."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    async with caching_nginx(tmp_path, shop.port) as port:
        first = await shop.get("validators", port=port)
        assert_shaped(first)
        again = await shop.get("validators", who="nn", port=port)
        assert again.status_code == 403, again.text
        assert SECRET not in again.text and "桂A·G1024" not in again.text
        assert shop.record(again)["outcome"] == "deny"  # the gateway decided, and audited
        portal = await shop.get("validators", who="czt-portal", port=port)
        assert portal.status_code == 200
        assert set(portal.json()["items"][0]) == GRANTED - {"driver_phone"}
        # the provider's own, unshaped answer is as much the caller's alone: an upstream
        # asking shared caches to keep it, in every way nginx listens to, is not obeyed
        for case in ("validators", "front-control"):
            own = await shop.get(case, who="jgswj", port=port)
            assert own.status_code == 200 and SECRET in own.text
            other = await shop.get(case, who="czt", port=port)
            assert_shaped(other)  # from the gateway, not the provider's from the cache
            assert "public" not in own.headers["cache-control"]
            assert "private" in own.headers["cache-control"]
            for name in ("cdn-cache-control", "x-accel-expires", "x-accel-redirect",
                         "x-sendfile"):
                assert name not in own.headers, name
