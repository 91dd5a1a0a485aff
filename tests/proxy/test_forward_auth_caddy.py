"""Forward-auth behind Caddy (``forward_auth``): a real Caddy running exactly the site
block of docs/caddy-forward-auth.Caddyfile in front of a real upstream that records
what it receives, asking a real gateway (attack of 2026-12-05, fifth session).

Caddy 2.6-2.9 set a ``copy_headers`` field the answer lacks to the placeholder's own
text, 2.10+ leave the client's value: the example drops every client copy first and
builds the system's ``Cookie`` from ``X-Govgate-Cookie`` after the check."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.demo import DEMO_STATE
from tests.dpop_proofs import Holder
from tests.proxy.conftest import World, free_socket, front_proxy, raw_request
from tests.proxy.test_cross_site import session_cookie
from tests.proxy.test_forward_auth_cookies import GATEWAY_COOKIES

CADDY = shutil.which("caddy")

GLOBAL = "{\n\tadmin off\n}\n"


def caddyfile(port: int, gateway: int, upstream: int) -> str:
    """docs/caddy-forward-auth.Caddyfile's site block with the test's ports."""
    example = (Path(__file__).parents[2] / "docs" / "caddy-forward-auth.Caddyfile").read_text()
    site = example.split("# --- begin site block ---", 1)[1].split("# --- end site block", 1)[0]
    assert "http://:80 {" in site and "127.0.0.1:9101" in site
    site = (site.replace("http://:80 {", f"http://127.0.0.1:{port} {{")
            .replace("127.0.0.1:8080", f"127.0.0.1:{gateway}")
            .replace("127.0.0.1:9101", f"127.0.0.1:{upstream}")
            .replace("X-Govgate-System vehicles", "X-Govgate-System echo"))
    return GLOBAL + site


@pytest.fixture
async def caddy(world: World, tmp_path: Path) -> AsyncIterator[int]:
    if CADDY is None:
        pytest.skip("caddy is not installed (apt-get install caddy)")
    assert world.gateway is not None and world.upstream is not None
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    conf = tmp_path / "Caddyfile"
    conf.write_text(caddyfile(port, world.gateway.port, world.upstream.port))
    # its own home: no autosave or certificate storage under the user's
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    async with front_proxy([CADDY, "run", "--config", str(conf), "--adapter", "caddyfile"],
                           port, env=env, tries=500):
        yield port


def _got(seen: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in seen["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


async def test_real_caddy_forward_auth_in_front_of_a_real_upstream(
        world: World, caddy: int) -> None:
    token = world.token()
    # refused: nothing reaches the system, the client gets govgate's answer
    anonymous = await raw_request(caddy, "GET", "/api/x", [])
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert world.echo.seen == []
    # allowed, with every identity header a client could forge sent along
    forged = [("X-Govgate-User", "admin"), ("X-Govgate-Roles", "sysadmin"),
              ("X-Govgate-Department", "czt"), ("X-Govgate-Assertion", "forged"),
              ("X-Govgate-Acting-User", "li.si"), ("X-Govgate-Break-Glass", "1"),
              ("X-Govgate-Cookie", "admin=1"), ("X-Govgate-System", "down"),
              ("X-Request-ID", "forged-id"), ("X-Forwarded-User", "admin"),
              ("X-Auth-Request-User", "admin"), ("Remote-User", "admin"),
              ("X-Original-URI", "/admin"), ("X-Original-URL", "/admin"),
              ("Forwarded", "host=evil.example")]
    r = await raw_request(caddy, "GET", "/api/items?a=1",
                          [("Authorization", f"Bearer {token}"), *forged])
    assert r.status == 200, r.body
    seen = world.echo.seen[-1]
    got = _got(seen)
    assert seen["raw_path"] == "/api/items" and seen["query"] == "a=1"
    [assertion] = got["x-govgate-assertion"]
    claims = world.services.keys.verify_jwt("assertion", assertion)
    assert claims["aud"] == "echo" and claims["username"] == "zhang.san"
    assert got["x-govgate-user"] == ["zhang.san"]
    assert got["x-govgate-department"] == ["jgswj"] and got["x-govgate-roles"] == ["staff"]
    record = world.audit.records[-1]
    assert record.event_type == "forward_auth" and record.outcome == "allow"
    assert got["x-request-id"] == [record.request_id] == [claims["request_id"]]
    for name in ("x-govgate-acting-user", "x-govgate-break-glass", "x-govgate-cookie",
                 "x-govgate-system", "x-forwarded-user", "x-auth-request-user",
                 "remote-user", "x-original-uri", "x-original-url", "forwarded",
                 "authorization", "cookie"):
        assert name not in got, name
    assert "{http." not in str(seen["headers"])  # no placeholder's own text
    # a policy's refusal: 403 with govgate's problem, the system not called
    before = len(world.echo.seen)
    li = world.token(sub="li.si", department="czt", roles=["data_steward"])
    refused = await raw_request(caddy, "GET", "/api/items", [("Authorization", f"Bearer {li}")])
    assert refused.status == 403 and b"access_denied" in refused.body
    assert "x-govgate-user" not in refused.headers
    for trick in ("/api/..%2Fadmin", "/api/%2e%2e/admin", "/api//x"):
        r = await raw_request(caddy, "GET", trick, [("Authorization", f"Bearer {token}")])
        assert r.status == 403, trick
    assert len(world.echo.seen) == before

    # a browser navigating (Caddy hands govgate's answer on as it is): not signed in,
    # the portal's sign-in (as oauth2-proxy answers); refused, the refusal page; the
    # system still not called, and a program above still got the problem JSON
    browser = [("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
               ("Sec-Fetch-Mode", "navigate"), ("Accept-Language", "zh-CN,zh;q=0.9")]
    r = await raw_request(caddy, "GET", "/api/x", browser)
    issuer = world.services.settings.issuer.rstrip("/")
    # Caddy on the gateway's host name at another port: the sign-in comes back there
    back = "/portal/return?" + urlencode({"to": f"http://127.0.0.1:{caddy}/api/x"})
    assert r.status == 302, r.headers
    assert r.headers["location"] == issuer + "/portal/login?" + urlencode({"next": back})
    assert r.headers["cache-control"] == "no-store" and r.headers["x-refusal-code"] == \
        "unauthorized"
    r = await raw_request(caddy, "GET", "/api/items",
                          [*browser, ("Authorization", f"Bearer {li}")])
    page = r.body.decode("utf-8")
    assert r.status == 403 and r.headers["content-type"].startswith("text/html"), r.body
    assert "无权访问" in page and "访问策略不允许您以当前身份打开该地址" in page
    assert world.audit.records[-1].request_id in page
    assert r.headers["x-request-id"] == world.audit.records[-1].request_id
    assert "x-govgate-user" not in r.headers and "zhang.san" not in page
    assert len(world.echo.seen) == before

    # a DPoP-bound token (RFC 9449) through Caddy: the proof names the URL the client
    # called (Caddy's X-Forwarded-Host keeps the port); a stale one is refused with the
    # DPoP challenge, a program's answer even with a browser's Accept
    holder = Holder()
    bound = world.token(cnf={"jkt": holder.jkt})
    url = f"http://127.0.0.1:{caddy}/api/items"
    r = await raw_request(caddy, "GET", "/api/items?a=1", [
        ("Authorization", f"DPoP {bound}"), ("DPoP", holder.proof("GET", url, token=bound))])
    assert r.status == 200, r.body
    r = await raw_request(caddy, "GET", "/api/items", [
        *browser, ("Authorization", f"DPoP {bound}"),
        ("DPoP", holder.proof("GET", url + "/other", token=bound))])
    assert r.status == 401 and r.headers["www-authenticate"].startswith("DPoP"), r.headers


async def test_gateway_cookies_stay_and_shaped_routes_are_refused_behind_caddy(
        world: World, caddy: int) -> None:
    session = session_cookie(world)
    cookie = "; ".join(["app_pref=dark", session, *GATEWAY_COOKIES, "lang=zh"])
    r = await raw_request(caddy, "GET", "/api/items", [("Cookie", cookie)])
    assert r.status == 200  # signed in by the portal session, as forward-auth allows
    got = _got(world.echo.seen[-1])
    assert got["x-govgate-user"] == ["zhang.san"]
    assert got["cookie"] == ["app_pref=dark; lang=zh"]
    assert session.split("=", 1)[1] not in str(world.echo.seen[-1]["headers"])
    # only the gateway's cookies: no Cookie at all (a copy_headers rename would have
    # passed the browser's, session included, on Caddy 2.10+)
    for only in (session, "; ".join([session, *GATEWAY_COOKIES])):
        r = await raw_request(caddy, "GET", "/api/items",
                              [("Cookie", only), ("X-Govgate-Cookie", "admin=1")])
        assert r.status == 200
        got = _got(world.echo.seen[-1])
        assert "cookie" not in got and "x-govgate-cookie" not in got
    # a catalogue route whose answer is cut for the caller: forward-auth cannot cut it
    doc: dict[str, Any] = __import__("yaml").safe_load(Path(DEMO_STATE).read_text("utf-8"))
    entry = next(e for e in doc["catalogue"] if e["code"] == "JG-0001")
    grant = next(g for g in doc["grants"] if g["resource"] == "JG-0001")
    world.built.state_applier().apply({"catalogue": [{**entry, "system": "echo"}],
                                       "grants": [grant]})
    before = len(world.echo.seen)
    li = world.token(sub="li.si", department="czt", roles=["staff"])
    shaped = await raw_request(caddy, "GET", "/api/vehicles",
                               [("Authorization", f"Bearer {li}")])
    assert shaped.status == 403 and b"shaping_required" in shaped.body
    assert len(world.echo.seen) == before
    record = world.audit.records[-1]
    assert record.event_type == "forward_auth" and record.resource == "JG-0001"
