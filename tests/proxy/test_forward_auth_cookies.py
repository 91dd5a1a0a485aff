"""The gateway's own cookies behind nginx's ``auth_request`` (review of 2026-12-05,
fourth session): the portal session that signed the request in at ``/auth/verify``
must not go on to the system, as ``/s/{system}/`` never lets it (``proxy/headers.py``
``strip_gateway_cookies``). A real nginx running docs/nginx-forward-auth.conf in front
of a real upstream that records what it receives."""

from __future__ import annotations

from tests.proxy.conftest import World, raw_request
from tests.proxy.test_cross_site import session_cookie
from tests.proxy.test_forward_auth import nginx as nginx  # the fixture
from tests.proxy.test_forward_auth import verify_headers

# what a browser signed in at the gateway holds besides the system's own cookie: the
# session (plain on http, ``__Host-`` on https), the CSRF token, the acting choice, the
# notice's acknowledgement
GATEWAY_COOKIES = ["gg_csrf=c5rf", "__Host-gg_session=other", "__Host-gg_csrf=c5rf",
                   "gg_act=choice", "gg_security_seen=seen"]


def _cookies(seen: dict[str, object]) -> list[str]:
    return [v for k, v in seen["headers"] if k.lower() == "cookie"]  # type: ignore[attr-defined]


async def test_the_session_cookie_does_not_reach_the_system_behind_nginx(
        world: World, nginx: int) -> None:
    session = session_cookie(world)  # gg_session=...: the portal session of zhang.san
    cookie = "; ".join(["app_pref=dark", session, *GATEWAY_COOKIES, "lang=zh"])
    r = await raw_request(nginx, "GET", "/api/items", [("Cookie", cookie)])
    assert r.status == 200  # signed in by the cookie, as forward-auth allows
    seen = world.echo.seen[-1]
    got = {k.lower(): v for k, v in seen["headers"]}
    assert world.services.keys.verify_jwt("assertion", got["x-govgate-assertion"])[
        "username"] == "zhang.san"
    # the system's own cookies go on; the gateway's session (which would sign its holder
    # in at the portal, /oauth2/authorize and the API) and its other cookies do not
    assert _cookies(seen) == ["app_pref=dark; lang=zh"]
    assert session.split("=", 1)[1] not in str(seen["headers"])
    # only the gateway's cookies: none at all reaches the system
    r = await raw_request(nginx, "GET", "/api/items", [("Cookie", session)])
    assert r.status == 200 and _cookies(world.echo.seen[-1]) == []
    # a bearer token and the system's cookie: the cookie goes on as before
    r = await raw_request(nginx, "GET", "/api/items", [
        ("Authorization", f"Bearer {world.token()}"), ("Cookie", "app_pref=dark")])
    assert r.status == 200 and _cookies(world.echo.seen[-1]) == ["app_pref=dark"]
    # a client's own X-Govgate-Cookie does not choose what the system gets
    r = await raw_request(nginx, "GET", "/api/items", [
        ("Cookie", session), ("X-Govgate-Cookie", "admin=1")])
    assert r.status == 200 and _cookies(world.echo.seen[-1]) == []
    assert "admin=1" not in str(world.echo.seen[-1]["headers"])


async def test_verify_names_the_cookies_the_system_may_have(world: World) -> None:
    """``/auth/verify`` itself: ``X-Govgate-Cookie`` is the request's cookies without
    the gateway's, for the front proxy to pass on (all Cookie fields, as HTTP/2 splits
    them); empty when nothing is left."""
    session = session_cookie(world)
    r = await world.request("GET", "/auth/verify", headers=[
        ("Cookie", f"a=1; {session}"), ("Cookie", "__Host-gg_csrf=x; b=2"),
        *verify_headers("/s/echo/api/x")])
    assert r.status == 200 and r.headers["x-govgate-cookie"] == "a=1; b=2"
    r = await world.request("GET", "/auth/verify", headers=[
        ("Cookie", session), *verify_headers("/s/echo/api/x")])
    # there but empty: a front proxy copying it never meets it missing (Caddy 2.6
    # copied the placeholder's own text into the system's Cookie)
    assert r.status == 200 and r.headers["x-govgate-cookie"] == ""
    # refused: nothing but the refusal
    r = await world.request("GET", "/auth/verify", headers=[
        ("Cookie", "a=1"), *verify_headers("/s/echo/api/x")])
    assert r.status == 401 and "x-govgate-cookie" not in r.headers


async def test_a_large_cookie_still_passes(world: World, nginx: int) -> None:
    """The answer repeats the cookies beside the assertion: a browser's 5 KB of the
    system's cookies still fit nginx's buffer for it (docs/nginx-forward-auth.conf
    ``proxy_buffer_size``; with the default page nginx answers 500)."""
    big = "; ".join(f"pref{i}={'x' * 90}" for i in range(50))
    r = await raw_request(nginx, "GET", "/api/items",
                          [("Cookie", f"{big}; {session_cookie(world)}")])
    assert r.status == 200 and _cookies(world.echo.seen[-1]) == [big]


async def test_the_answer_carries_cookie_itself_when_asked_for_traefik(world: World) -> None:
    """Traefik's ``authResponseHeaders`` deletes each listed field from the request and
    sets the answer's (pkg/middlewares/auth/forward.go): it cannot rename
    ``X-Govgate-Cookie``. Asked as ``/auth/verify?cookie=1``, the 200 carries the kept
    cookies as ``Cookie`` itself; absent when nothing is left, so Traefik sends none."""
    session = session_cookie(world)
    r = await world.request("GET", "/auth/verify?cookie=1", headers=[
        ("Cookie", f"a=1; {session}; gg_csrf=x"), ("Cookie", "b=2"),
        *verify_headers("/s/echo/api/x")])
    assert r.status == 200 and r.headers["cookie"] == "a=1; b=2"
    assert r.headers["x-govgate-cookie"] == "a=1; b=2"
    # only the gateway's cookies: no Cookie field (Traefik then deletes the request's)
    r = await world.request("GET", "/auth/verify?cookie=1", headers=[
        ("Cookie", f"{session}; gg_csrf=x"), *verify_headers("/s/echo/api/x")])
    assert r.status == 200 and "cookie" not in r.headers
    # not asked: no Cookie field (nginx and Caddy read X-Govgate-Cookie)
    r = await world.request("GET", "/auth/verify?cookie=0", headers=[
        ("Cookie", f"a=1; {session}"), *verify_headers("/s/echo/api/x")])
    assert r.status == 200 and "cookie" not in r.headers
    # refused: Traefik hands the answer's fields to the client; no cookie among them
    for headers in ([("Cookie", "a=1")], [("Cookie", "a=1"), ("Authorization", "Bearer x")]):
        r = await world.request("GET", "/auth/verify?cookie=1",
                                headers=[*headers, *verify_headers("/s/echo/api/x")])
        assert r.status == 401 and "cookie" not in r.headers
        assert "x-govgate-cookie" not in r.headers
