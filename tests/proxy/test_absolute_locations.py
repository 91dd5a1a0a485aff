"""An upstream's absolute-path ``Location`` (``/api/vehicles/``: Express's trailing-slash
redirect, many login redirects) is its own path: the client resolved it against the
gateway's origin, outside ``/s/{system}/`` (the attack of 2026-12-05, fourth session).
It is rewritten onto the system (``gateway.proxy.redirect``) for every proxied answer,
as nginx's ``proxy_redirect / /s/{system}/`` would; a shaped answer then keeps it only
as a redirect to the request's own path (``gateway.proxy.shaped_location``). Through the
gateway on a real socket to an upstream on a real socket."""

from __future__ import annotations

import pytest

from gateway.proxy.redirect import rewrite_refresh, rewrite_url
from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.catalogue.test_route_query import SECRET, VEHICLES, Shop
from tests.catalogue.test_route_query import shop as shop  # the fixture
from tests.proxy.test_shaped_second_pass import LaxUpstream, send

UP = "http://127.0.0.1:9101"
BASE = "http://10.0.0.5:8080/legacy/app"


@pytest.fixture
def upstream() -> LaxUpstream:
    return LaxUpstream()


@pytest.mark.parametrize(("value", "upstream", "expected"), [
    ("/api/vehicles/", UP, "/s/v/api/vehicles/"),
    ("/api/vehicles?page=2#top", UP, "/s/v/api/vehicles?page=2#top"),
    ("/", UP, "/s/v/"),
    (" /a", UP, "/s/v/a"),
    ("/legacy/app/r?q", BASE, "/s/v/r?q"),
    ("/legacy/app", BASE, "/s/v/"),
    # not the upstream's, or already on the gateway: unchanged
    ("/legacy/apple", BASE, "/legacy/apple"),
    ("/other", BASE, "/other"),
    ("/s/v/api/vehicles/", UP, "/s/v/api/vehicles/"),
    ("/s/v", UP, "/s/v"),
    ("/\\evil.example/a", UP, "/\\evil.example/a"),  # a browser's //evil.example
    ("//evil.example/a", UP, "//evil.example/a"),
    ("vehicles/", UP, "vehicles/"),
    ("../x", UP, "../x"),
])
def test_an_absolute_path_is_the_upstreams(value: str, upstream: str, expected: str) -> None:
    assert rewrite_url(value, "v", upstream) == expected
    assert rewrite_refresh(f"0; url={value}", "v", upstream) == f"0; url={expected}"


@pytest.mark.parametrize("who", ["jgswj", "czt"])
async def test_an_absolute_path_location_stays_on_the_system(shop: Shop, who: str) -> None:
    """Express's trailing-slash redirect names the upstream's own path: the client
    resolved it against the gateway's origin, outside ``/s/vehicles/``."""
    assert isinstance(shop.upstream, LaxUpstream)
    shop.upstream.status = "301 Moved Permanently"
    shop.upstream.headers = [("Location", "/api/vehicles/")]
    r = await send(shop, "GET", VEHICLES, who=who)
    assert r.status_code == 301 and r.headers["location"] == f"{VEHICLES}/", r.headers
    rec = shop.record(r)
    assert "location" not in rec["extra"].get("headers_dropped", [])
    # a path holding data: the provider gets it on the gateway, a shaped answer drops it
    shop.upstream.headers = [("Location", f"/api/vehicles/?driver_id_number={SECRET}"),
                             ("Content-Location", "/api/vehicles/1001")]
    r = await send(shop, "GET", VEHICLES, who=who)
    if who == "jgswj":
        assert r.headers["location"] == f"{VEHICLES}/?driver_id_number={SECRET}"
        assert r.headers["content-location"] == f"{VEHICLES}/1001"
    else:
        assert "location" not in r.headers and "content-location" not in r.headers
        assert SECRET not in str(r.headers)
