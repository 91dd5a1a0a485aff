"""A request naming an encrypted item granted to a caller that gets it withheld (no
usable key) is refused whatever the upstream answers: not only a 2xx body's records
but a HEAD's counts and a 404 for "no such record" tell the item's value (review of
2026-12-05)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import ROWS, VEHICLES, Shop
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.catalogue.test_route_query_post import GRANT, search
from tests.proxy.test_shaped_second_pass import Lax, LaxUpstream, send
from tests.tokens import access_token
from tests.wiring import apply_state


class FindingUpstream(LaxUpstream):
    """Answers 404 when the filter finds nothing, and counts the rows in a header."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            method, target = head.split(" ")[:2]
            self.seen.append(target)
            lax = Lax()
            lax.query(target.partition("?")[2])
            rows = lax.rows()
            out = json.dumps({"items": rows, "total": len(rows)}).encode()
            status = "200 OK" if rows else "404 Not Found"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"X-Total-Count: {len(rows)}\r\nContent-Length: {len(out)}\r\n"
                         "Connection: close\r\n\r\n".encode()
                         + (b"" if method == "HEAD" else out))
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
def upstream() -> FindingUpstream:
    return FindingUpstream()


async def test_a_withheld_item_named_is_refused_on_a_head_and_on_a_404(shop: Shop) -> None:
    apply_state(shop.services, {"catalogue": [search()], "grants": [GRANT]})
    shop.tokens["portal"] = access_token(shop.services, sub=None, department="czt",
                                         roles=("staff",), client_id="czt-portal")
    phone, wrong = ROWS[0]["driver_phone"], "13900000000"
    # the oracle is real: a client with a key tells the two guesses apart
    assert (await send(shop, "GET", f"{VEHICLES}?driver_phone=eq.{wrong}")).status_code == 404
    for guess in (phone, wrong):
        for method in ("GET", "HEAD"):
            r = await send(shop, method, f"{VEHICLES}?driver_phone=eq.{guess}", who="portal")
            assert r.status_code == 502, (method, guess, r.status_code, r.headers)
            assert "x-total-count" not in r.headers
            rec = shop.record(r)
            assert (rec["outcome"], rec["items"]) == ("error", [])
            assert rec["extra"]["names_item"] == "driver_phone"
    # not naming it: the portal's HEAD and a 404 pass as before
    r = await send(shop, "HEAD", VEHICLES, who="portal")
    assert r.status_code == 200 and r.headers["x-total-count"] == "2"
    r = await send(shop, "GET", f"{VEHICLES}?plate_number=eq.none", who="portal")
    assert r.status_code == 404
