"""Upstream redirects point at the gateway, never at the upstream; one Date header in
every response."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from gateway.proxy.redirect import rewrite_refresh, rewrite_url
from tests.proxy.conftest import World, exchange, status_of

UP = "http://127.0.0.1:9101"


@pytest.mark.parametrize(("value", "upstream", "expected"), [
    # the system's upstream, in every spelling of its origin
    ("http://127.0.0.1:9101/api/vehicles", UP, "/s/v/api/vehicles"),
    ("HTTP://127.0.0.1:9101/api/vehicles?page=2#top", UP, "/s/v/api/vehicles?page=2#top"),
    ("http://127.0.0.1:9101", UP, "/s/v/"),
    ("http://127.0.0.1:9101?x=1", UP, "/s/v/?x=1"),
    ("http://user@127.0.0.1:9101/a", UP, "/s/v/a"),
    ("//127.0.0.1:9101/a", UP, "/s/v/a"),
    ("http:\\\\127.0.0.1:9101\\a", UP, "/s/v/a"),
    ("http://Vehicles.Internal/a", "http://vehicles.internal:80", "/s/v/a"),
    ("https://vehicles.internal/a", "https://vehicles.internal", "/s/v/a"),
    ("http://[::1]:9101/a", "http://[::1]:9101", "/s/v/a"),
    # under the upstream address's base path
    ("http://10.0.0.5:8080/legacy/app/r?q", "http://10.0.0.5:8080/legacy/app", "/s/v/r?q"),
    ("http://10.0.0.5:8080/legacy/app", "http://10.0.0.5:8080/legacy/app", "/s/v/"),
    # not the upstream: unchanged
    ("http://10.0.0.5:8080/legacy/apple", "http://10.0.0.5:8080/legacy/app",
     "http://10.0.0.5:8080/legacy/apple"),
    ("http://10.0.0.5:8080/other", "http://10.0.0.5:8080/legacy/app",
     "http://10.0.0.5:8080/other"),
    ("https://127.0.0.1:9101/a", UP, "https://127.0.0.1:9101/a"),
    ("http://127.0.0.1:9102/a", UP, "http://127.0.0.1:9102/a"),
    ("http://127.0.0.2:9101/a", UP, "http://127.0.0.2:9101/a"),
    ("https://sso.example/login?next=http://127.0.0.1:9101/a", UP,
     "https://sso.example/login?next=http://127.0.0.1:9101/a"),
    ("http://127.0.0.1:bad/a", UP, "http://127.0.0.1:bad/a"),
    # an absolute path is the upstream's own (shaped routes, third pass): on the gateway
    ("/api/vehicles", UP, "/s/v/api/vehicles"),
    # relative references: unchanged, as nginx leaves them
    ("vehicles/1", UP, "vehicles/1"),
    ("?page=2", UP, "?page=2"),
    ("mailto:a@b", UP, "mailto:a@b"),
])
def test_rewrite_url(value: str, upstream: str, expected: str) -> None:
    assert rewrite_url(value, "v", upstream) == expected


def test_rewrite_refresh() -> None:
    assert rewrite_refresh("0; url=http://127.0.0.1:9101/a", "v", UP) == "0; url=/s/v/a"
    assert rewrite_refresh("5;URL='http://127.0.0.1:9101/a' ", "v", UP) == "5;URL='/s/v/a' "
    assert rewrite_refresh("5; url=https://else.example/", "v", UP) == (
        "5; url=https://else.example/")
    assert rewrite_refresh("30", "v", UP) == "30"


async def test_an_upstream_redirect_to_itself_comes_back_through_the_gateway(
    world: World,
) -> None:
    token = world.token()
    r = await world.request("GET", "/s/echo/x/redirect?to=" + quote("{self}/api/vehicles?p=1"),
                            token=token)
    assert r.status == 307
    assert r.headers["location"] == "/s/echo/api/vehicles?p=1"
    assert r.headers["content-location"] == "/s/echo/api/vehicles?p=1"
    assert r.headers["refresh"] == "0; url=/s/echo/api/vehicles?p=1"
    # elsewhere, or relative: as the upstream said
    for to in ("https://sso.example/login", "next"):
        r = await world.request("GET", "/s/echo/x/redirect?to=" + quote(to), token=token)
        assert r.status == 307 and r.headers["location"] == to


async def test_starlettes_trailing_slash_redirect_under_a_base_path(world: World) -> None:
    """The issue's case: a framework's own redirect, absolute, naming the upstream."""

    world.built.state_applier().apply({"systems": [
        {"code": "vehicles", "name": "公务用车管理平台", "department": "jgswj",
         "upstream": f"http://127.0.0.1:{world.upstream.port}/slashy"}]})
    world.built.proxy.systems.invalidate()
    r = await world.request("GET", "/s/vehicles/api/vehicles/", token=world.token())
    assert r.status == 307
    assert r.headers["location"] == "/s/vehicles/api/vehicles"
    assert str(world.upstream.port) not in str(r.headers)


async def test_one_date_header_in_every_response(world: World) -> None:
    token = world.token()

    def get(target: str, *extra: str) -> bytes:
        return "\r\n".join([f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                            *extra, "", ""]).encode()

    auth = f"Authorization: Bearer {token}"
    cases = {
        "proxied, buffered": get("/s/echo/api/x", auth),
        "proxied, streamed": get("/s/echo/big", auth),
        "proxied redirect": get("/s/echo/x/redirect?to=%2Fa", auth),
        "proxy refusal": get("/s/echo/api/x"),
        "upstream down": get("/s/down/api/x", auth),
        "application route": get("/healthz"),
        "not found": get("/nowhere"),
        "server refusal": get("/healthz", "X-Big: " + "a" * 40_000),
    }
    for name, request in cases.items():
        response = await exchange(world.gateway.port, request)
        head = response.split(b"\r\n\r\n", 1)[0].lower()
        assert status_of(response), name
        assert head.count(b"\r\ndate: ") == 1, (name, head[:400])
