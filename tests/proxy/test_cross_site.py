"""A state-changing request that rides on the portal session cookie must come from the
gateway's own origin: a sibling subdomain's form or text/plain fetch (same-site, so the
SameSite=Lax cookie goes along) stops at the proxy and never reaches the upstream.

The gateway and the upstream in process (nothing here is about the wire); what the
upstream received is checked."""

from __future__ import annotations

import pytest

from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.same_origin import cross_site_reason, origin_of, own_origins
from tests.proxy.conftest import World


@pytest.fixture
def world(quick_world: World) -> World:
    return quick_world


def session_cookie(world: World) -> str:
    world.services.org.add_user("zhang.san", "张三", "jgswj", ["staff"], "Very-long-pass-123",
                                must_change=False)
    session, _ = world.built.provider.store.create_session(
        "zhang.san", "active", amr="pwd", absolute_seconds=3600)
    return f"{SESSION_COOKIE}={session}"


def own_origin(world: World) -> str:
    origin = origin_of(world.services.settings.issuer)
    assert origin is not None
    return origin


HOSTILE: list[list[tuple[str, str]]] = [
    [("Origin", "https://evil.gov.example"), ("Sec-Fetch-Site", "same-site")],
    [("Sec-Fetch-Site", "same-site")],
    [("Sec-Fetch-Site", "cross-site")],
    [("Origin", "https://evil.gov.example")],
    [("Origin", "null")],  # a sandboxed frame or a data: URL
    [("Origin", "http://127.0.0.1.evil.example")],
]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("hostile", HOSTILE)
async def test_cross_site_unsafe_request_with_the_cookie_is_refused(
        world: World, method: str, hostile: list[tuple[str, str]]) -> None:
    cookie = session_cookie(world)
    before = len(world.echo.paths())
    r = await world.request(method, "/s/echo/orders", body=b"amount=1000000",
                            headers=[("Cookie", cookie), ("Content-Type", "text/plain"),
                                     *hostile])
    assert r.status == 403, r.body
    assert r.headers["content-type"] == "application/problem+json"
    assert len(world.echo.paths()) == before  # the upstream saw nothing
    record = world.audit.records[-1]
    assert record.outcome == "deny" and record.actor_user == "zhang.san"
    assert "session cookie" in (record.reason or "")


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_same_origin_requests_with_the_cookie_pass(world: World, method: str) -> None:
    """A form on a page served through /s/ posts from the gateway's origin; a program
    holding the cookie itself sends neither header."""
    cookie = session_cookie(world)
    for extra in ([("Origin", own_origin(world)), ("Sec-Fetch-Site", "same-origin")],
                  [("Origin", own_origin(world).upper())],
                  [("Sec-Fetch-Site", "none")],
                  # under Referrer-Policy: no-referrer Chromium posts its own form so
                  [("Sec-Fetch-Site", "same-origin"), ("Origin", "null")],
                  []):
        r = await world.request(method, "/s/echo/orders", body=b"{}",
                                headers=[("Cookie", cookie), *extra])
        assert r.status == 200, (extra, r.body)
        assert r.json()["raw_path"] == "/orders"


async def test_cross_site_navigation_and_bearer_calls_are_not_affected(world: World) -> None:
    """A link from another site opens a system (GET); a department system calling with
    a bearer token is not a browser riding on a cookie, whatever Origin says."""
    cookie = session_cookie(world)
    r = await world.request("GET", "/s/echo/page", headers=[
        ("Cookie", cookie), ("Origin", "https://evil.gov.example"),
        ("Sec-Fetch-Site", "cross-site")])
    assert r.status == 200, r.body
    r = await world.request("POST", "/s/echo/orders", token=world.token(), body=b"{}",
                            headers=[("Origin", "https://other.gov.example"),
                                     ("Sec-Fetch-Site", "cross-site")])
    assert r.status == 200, r.body


def test_origin_serialisation() -> None:
    assert origin_of("https://GW.example:443/idp/") == "https://gw.example"
    assert origin_of("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert origin_of("http://[::1]:80/") == "http://[::1]"
    assert origin_of("null") is None
    assert origin_of("http://h:99999") is None
    allowed = own_origins("https://gw.example/", "http", "GW.example:8443")
    assert allowed == {"https://gw.example", "http://gw.example:8443"}
    assert cross_site_reason("POST", {"origin": "https://gw.example"}, ()) is not None
    assert cross_site_reason("POST", {"origin": "http://gw.example:8443"}, allowed) is None
    assert cross_site_reason("POST", {"origin": "https://gw.example:8443"}, allowed) is not None
    assert cross_site_reason("GET", {"sec-fetch-site": "cross-site"}, allowed) is None


async def test_the_host_the_browser_addressed_is_its_own_origin(socket_world: World) -> None:
    """A gateway configured as 127.0.0.1 but opened as localhost: its own pages post
    with Origin http://localhost:PORT and Host localhost:PORT, and pass; a page
    elsewhere cannot make the browser send a Host it did not address."""
    world = socket_world
    cookie = session_cookie(world)
    port = world.gateway.port
    r = await world.request("POST", "/s/echo/orders", body=b"{}", headers=[
        ("Host", f"localhost:{port}"), ("Cookie", cookie),
        ("Origin", f"http://localhost:{port}"), ("Sec-Fetch-Site", "same-origin")])
    assert r.status == 200, r.body
    r = await world.request("POST", "/s/echo/orders", body=b"{}", headers=[
        ("Host", f"localhost:{port}"), ("Cookie", cookie),
        ("Origin", f"http://evil.localhost:{port}")])
    assert r.status == 403, r.body
