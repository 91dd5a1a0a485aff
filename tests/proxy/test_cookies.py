"""Cookies across one origin shared by every system: an upstream's Set-Cookie is
confined to its own ``/s/{system}/``, and the gateway's cookies never reach an upstream.

A real gateway in front of a real upstream that plants cookies, read with raw headers
and with a cookie jar that sends cookies back by path as a browser does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.proxy.conftest import Served, World

# what the upstream sets → what the browser gets (None: dropped)
PLANTED: list[tuple[str, str | None]] = [
    ("sid=1; Path=/; HttpOnly", "sid=1; HttpOnly; Path=/s/cookies/"),
    ("theme=dark", "theme=dark; Path=/s/cookies/"),
    ("cart=2; Path=/shop; Secure; SameSite=Lax",
     "cart=2; Secure; SameSite=Lax; Path=/s/cookies/shop"),
    ("wide=3; Domain=127.0.0.1; Path=/", "wide=3; Path=/s/cookies/"),
    ("parent=3; domain=.gov.example", "parent=3; Path=/s/cookies/"),
    # a browser honours the last Path and Domain: every one goes
    ("sneaky=4; Path=/s/cookies/; path=/; DOMAIN=.gov.example; Domain=127.0.0.1",
     "sneaky=4; Path=/s/cookies/"),
    ("rel=5; Path=relative", "rel=5; Path=/s/cookies/"),
    ("empty=5; Path=", "empty=5; Path=/s/cookies/"),
    ("exp=7; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Max-Age=60",
     "exp=7; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Max-Age=60; Path=/s/cookies/"),
    # aiming at another system's path stays inside its own
    ("other=8; Path=/s/echo/", "other=8; Path=/s/cookies/s/echo/"),
    # a __Host- cookie must have Path=/: it cannot be confined
    ("__Host-id=6; Path=/; Secure", None),
    ("__host-id=6; Path=/; Secure", None),
    ("=__Host-x=1; Path=/; Secure", None),
    # the gateway's own names, as before (commit 412c978)
    ("gg_session=x; Path=/s/cookies/", None),
    ("=gg_csrf=y", None),
    ("govgate=z; Path=/", None),
    ("__Secure-gg_session=x; Secure; Path=/", None),
]
# an upstream address with a path (http://host/legacy/app): its paths map below it
LEGACY: list[tuple[str, str | None]] = [
    ("a=1; Path=/legacy/app", "a=1; Path=/s/legacy/"),
    ("b=2; Path=/legacy/app/reports", "b=2; Path=/s/legacy/reports"),
    ("c=3; Path=/", "c=3; Path=/s/legacy/"),
    ("d=4; Path=/legacy/application", "d=4; Path=/s/legacy/"),
    ("e=5; Path=/other", "e=5; Path=/s/legacy/"),
    ("f=6", "f=6; Path=/s/legacy/"),
]


def planting_app() -> Starlette:
    async def plant(request: Request) -> Response:
        planted = LEGACY if request.url.path.startswith("/legacy/app") else PLANTED
        response = JSONResponse({"cookie": request.headers.get("cookie")})
        for value, _ in planted:
            response.raw_headers.append((b"set-cookie", value.encode()))
        return response

    return Starlette(routes=[Route("/{p:path}", plant)])


@pytest.fixture
async def planted(world: World) -> AsyncIterator[World]:
    async with Served(planting_app()) as upstream:
        world.built.state_applier().apply({"systems": [
            {"code": "cookies", "name": "种饼干", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}"},
            {"code": "legacy", "name": "老系统", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}/legacy/app/"}]})
        world.built.proxy.systems.invalidate()
        yield world


async def test_set_cookie_is_confined_to_the_system(planted: World) -> None:
    base = f"http://127.0.0.1:{planted.gateway.port}"
    auth = {"Authorization": f"Bearer {planted.token()}"}
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{base}/s/cookies/page", headers=auth)
        assert r.status_code == 200, r.text
        assert r.headers.get_list("set-cookie") == [out for _, out in PLANTED if out]
        r = await http.get(f"{base}/s/legacy/page", headers=auth)
        assert r.status_code == 200, r.text
        assert r.headers.get_list("set-cookie") == [out for _, out in LEGACY if out]
    for _, out in PLANTED + LEGACY:
        if out is not None:  # one Path, last, under the system; no Domain
            assert "domain" not in out.lower() and out.lower().count("path=") == 1
            assert re.search(r"; Path=/s/(cookies|legacy)/[^;]*$", out), out


async def test_a_browser_sends_a_systems_cookies_to_that_system_only(planted: World) -> None:
    """With a cookie jar that matches paths as RFC 6265 says: what the cookies system
    set comes back to /s/cookies/..., never to /s/echo/... or /s/legacy/..."""
    base = f"http://127.0.0.1:{planted.gateway.port}"
    auth = {"Authorization": f"Bearer {planted.token()}"}
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(f"{base}/s/cookies/page", headers=auth)).status_code == 200
        r = await browser.get(f"{base}/s/echo/x", headers=auth)
        assert r.status_code == 200, r.text
        sent = dict((k.lower(), v) for k, v in r.json()["headers"])
        assert "cookie" not in sent, sent.get("cookie")
        r = await browser.get(f"{base}/s/legacy/x", headers=auth)
        assert r.json()["cookie"] is None
        r = await browser.get(f"{base}/s/cookies/shop/basket", headers=auth)
        got = sorted(r.json()["cookie"].split("; "))
        # cart is Secure (not sent over http); other's path is /s/cookies/s/echo/
        assert got == ["empty=5", "exp=7", "parent=3", "rel=5", "sid=1", "sneaky=4",
                       "theme=dark", "wide=3"]


async def test_the_gateways_cookies_never_reach_an_upstream(world: World) -> None:
    """A browser sends every cookie of the gateway's origin to /s/{system}/...: the
    session, CSRF, language and enrolment cookies stay at the gateway (the session
    one still signs the user in), whatever their case or __Host-/__Secure- prefix."""
    from gateway.idp.oauth2.provider import SESSION_COOKIE

    world.services.org.add_user("zhang.san", "张三", "jgswj", ["staff"], "Very-long-pass-123",
                                must_change=False)
    session, _ = world.built.provider.store.create_session(
        "zhang.san", "active", amr="pwd", absolute_seconds=3600)
    r = await world.request("GET", "/s/echo/x", headers=[("Cookie", "; ".join([
        f"{SESSION_COOKIE}={session}", "gg_csrf=c", "gg_lang=zh", "gg_enrol=e",
        "GG_Session=z", "__Host-gg_session=h", "__Secure-govgate_x=s", "govgate=g",
        "theme=dark"])), ("Cookie", "gg_csrf=again; app=1")])
    assert r.status == 200, r.body
    cookies = [v for k, v in r.json()["headers"] if k.lower() == "cookie"]
    assert cookies == ["theme=dark", "app=1"]
    claims = world.services.keys.verify_jwt("assertion", dict(
        (k.lower(), v) for k, v in r.json()["headers"])["x-govgate-assertion"])
    assert claims["via"] == "session"
