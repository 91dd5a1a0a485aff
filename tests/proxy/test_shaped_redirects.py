"""A shaped route's redirect (shaped routes for real consumers, 2026-12-05): the
trailing-slash redirect of Django's ``APPEND_SLASH``, Spring's and Starlette's
(``/api/vehicles`` → ``/api/vehicles/``) keeps its ``Location`` when it names the
request's own path up to a trailing slash, with no query and no fragment; any other
``Location`` still carries what the upstream put in it and is dropped
(``extra.headers_dropped``). The demo's JG-0001 granted to czt (shaped), through the
gateway on a real socket to an upstream on a real socket answering 301/302/307/308."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from gateway.proxy.catalogue import shaped_headers
from gateway.proxy.shaped_location import own_location
from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import ROWS, SECRET, VEHICLES, Shop, Upstream
from tests.catalogue.test_route_query import shop as shop  # the fixture


@dataclass
class Slashing(Upstream):
    """Answers the records on a path ending in ``/``; any other path is answered
    ``status`` (a 2xx with the records) with ``location``, ``{self}`` standing for the
    upstream's own origin and ``{path}`` for the path asked."""

    status: str = "301 Moved Permanently"
    location: str = "{self}{path}/"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            target = head.split(" ", 2)[1]
            self.seen.append(target)
            host = next(ln.split(":", 1)[1].strip() for ln in head.split("\r\n")
                        if ln.lower().startswith("host:"))
            path = target.partition("?")[0]
            status, fields, body = "200 OK", "", json.dumps(
                {"items": ROWS, "total": len(ROWS)}, ensure_ascii=False).encode()
            if not path.endswith("/"):
                to = self.location.replace("{self}", f"http://{host}").replace(
                    "{path}", path)
                status, fields = self.status, f"Location: {to}\r\n"
                body = body if status.startswith("2") else b""
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{fields}"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                         .encode("latin-1") + body)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
def upstream() -> Slashing:
    return Slashing()


async def test_a_trailing_slash_redirect_keeps_its_location(shop: Shop) -> None:
    assert isinstance(shop.upstream, Slashing)
    for status in ("301 Moved Permanently", "302 Found", "307 Temporary Redirect",
                   "308 Permanent Redirect"):
        shop.upstream.status = status
        for location in ("{self}{path}/",  # Django, Starlette: absolute, the upstream's
                         "{path}/",  # Express: an absolute path, the upstream's own
                         "vehicles/"):  # relative to the path asked
            shop.upstream.location = location
            r = await shop.get(VEHICLES)
            assert r.status_code == int(status[:3]), (status, location, r.text)
            assert r.headers.get("location") in (f"{VEHICLES}/", "vehicles/"), (
                status, location, r.headers)
            assert "location" not in shop.record(r)["extra"].get("headers_dropped", [])
    # a consumer following it gets the shaped records, as from the route itself
    r = await shop.http.get(f"http://127.0.0.1:{shop.port}{VEHICLES}", follow_redirects=True,
                            headers={"Authorization": f"Bearer {shop.tokens['czt']}"})
    assert r.status_code == 200 and str(r.url).endswith(f"{VEHICLES}/"), r
    assert r.json()["total"] == 2 and "driver_id_number" not in r.json()["items"][0]
    assert shop.record(r)["extra"]["shape"] is True


OTHERS = [
    f"{{self}}{{path}}/?driver_id_number={SECRET}",  # a query: data
    f"{{self}}{{path}}/#{SECRET}",  # a fragment
    "{self}{path}/?",
    f"{{self}}{{path}}/{SECRET}",  # another path of the system
    f"{{self}}{{path}};jsessionid={SECRET}",  # Tomcat's session in the path
    f"{{path}}/?driver_id_number={SECRET}",  # an absolute path with a query
    f"http://{SECRET}.example{{path}}/",  # another origin
    "//evil.example/api/vehicles/", "\\\\evil.example/api/vehicles/",
    f"../{SECRET}/", "/s/vehicles/api/vehicles/../../x/",
    f"/s/vehicles/api/{SECRET}/../vehicles/",  # resolves to the path, carries the value
    "/s/vehicles/api/vehicles/ ", "/s/offices/api/vehicles/",
    "javascript:alert(1)//vehicles/"]


async def test_any_other_location_is_dropped(shop: Shop) -> None:
    assert isinstance(shop.upstream, Slashing)
    for location in OTHERS:
        shop.upstream.location = location
        r = await shop.get(VEHICLES)
        assert r.status_code == 301, r.text
        assert "location" not in r.headers, (location, r.headers)
        rec = shop.record(r)
        assert rec["extra"]["headers_dropped"] == ["location"], location
        assert SECRET not in json.dumps(rec["extra"]) and SECRET not in str(r.headers)


async def test_only_a_redirect_keeps_its_location(shop: Shop) -> None:
    """A 201's ``Location`` names the record made (its key): dropped as before."""
    assert isinstance(shop.upstream, Slashing)
    shop.upstream.status = "201 Created"
    r = await shop.get(VEHICLES)
    assert r.status_code == 201 and "location" not in r.headers
    assert shop.record(r)["extra"]["headers_dropped"] == ["location"]


async def test_the_provider_gets_the_location_as_sent(shop: Shop) -> None:
    assert isinstance(shop.upstream, Slashing)
    shop.upstream.location = f"{{self}}{{path}}/?driver_id_number={SECRET}"
    r = await shop.get(VEHICLES, who="jgswj")
    assert r.headers["location"] == f"{VEHICLES}/?driver_id_number={SECRET}"



def test_two_locations_are_both_dropped() -> None:
    """Which of two a client follows is the client's choice: neither passes."""
    dropped: list[str] = []
    out = shaped_headers([(b"Location", b"vehicles/"), (b"location", b"vehicles/")],
                         body=False, dropped=dropped, location=lambda v: True)
    assert b"location" not in {k.lower() for k, _ in out}
    assert dropped == ["location", "location"]
    assert own_location(b"vehicles/", "vehicles", "/api/vehicles")
    assert own_location(b"/s/vehicles/api/vehicles", "vehicles", "/api/vehicles/")
    assert not own_location(b"../vehicles", "vehicles", "/api/vehicles/")  # no dot segment
    assert own_location(b"/s/vehicles/", "vehicles", "/")
    assert not own_location("/s/vehicles/api/vehicles/é".encode(), "vehicles",
                            "/api/vehicles")
