"""A shaped GET carries no body: frameworks that merge a form body into the request's
parameters on any method (Rack, Express's body parsers) would take a projection from it
that the query check (``catalogue.query``) never saw."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.catalogue.test_route_query import ROWS, SECRET, VEHICLES, Shop
from tests.catalogue.test_route_query import shop as shop  # the fixtures
from tests.catalogue.test_route_query import upstream as upstream

FORM = b"select=brand:driver_id_number"
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


async def chunks() -> AsyncIterator[bytes]:
    yield FORM


async def test_a_shaped_get_with_a_body_is_refused_before_the_upstream(
        shop: Shop) -> None:
    # the upstream really merges the body: the provider's own GET gets the ID number
    own = await shop.http.request(
        "GET", f"http://127.0.0.1:{shop.port}{VEHICLES}", content=FORM,
        headers={"Authorization": f"Bearer {shop.tokens['jgswj']}", **FORM_TYPE})
    assert own.json()["items"][0] == {"brand": SECRET}
    seen = len(shop.upstream.seen)
    for framing in ("length", "chunked"):
        body = FORM if framing == "length" else chunks()  # an iterator: chunked
        r = await shop.http.request(
            "GET", f"http://127.0.0.1:{shop.port}{VEHICLES}", content=body,
            headers={"Authorization": f"Bearer {shop.tokens['czt']}", **FORM_TYPE})
        assert SECRET not in r.text
        assert r.status_code == 400, (framing, r.text)
        assert r.json()["type"] == "urn:govgate:error:query_refused"
        assert len(shop.upstream.seen) == seen
        rec = shop.record(r)
        assert (rec["outcome"], rec["status"], rec["resource"]) == ("error", 400, "JG-0001")
    # without a body, a consumer's GET is answered and cut
    assert (await shop.get(VEHICLES)).json()["items"][0]["brand"] == ROWS[0]["brand"]
