"""``/auth/verify`` directly, and behind a real nginx using ``auth_request``."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.admin.systems import set_release
from policies import make_line
from tests.proxy.conftest import World, free_socket, front_proxy, raw_request
from tests.wiring import apply_state

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def verify_headers(uri: str, method: str = "GET", system: str | None = None
                   ) -> list[tuple[str, str]]:
    out = [("X-Original-URI", uri), ("X-Original-Method", method)]
    if system:
        out.append(("X-Govgate-System", system))
    return out


async def test_verify_allows_with_identity_headers(world: World) -> None:
    r = await world.request("GET", "/auth/verify", token=world.token(),
                            headers=verify_headers("/s/echo/api/x?y=1"))
    assert r.status == 200
    claims = world.services.keys.verify_jwt("assertion", r.headers["x-govgate-assertion"])
    assert claims["aud"] == "echo" and claims["request_id"] == r.headers["x-request-id"]
    assert r.headers["x-govgate-user"] == "zhang.san"
    assert r.headers["x-govgate-department"] == "jgswj"
    # the display name and region only where the system's release list names them
    assert "x-govgate-name" not in r.headers and "x-govgate-region" not in r.headers
    rec = world.audit.records[-1]
    assert rec.event_type == "forward_auth" and rec.outcome == "allow"
    assert rec.reason.startswith("allow by default rule")
    # HEAD answers the same; other methods are not part of the contract
    r = await world.request("HEAD", "/auth/verify", token=world.token(),
                            headers=verify_headers("/s/echo/api/x?y=1"))
    assert r.status == 200 and r.headers["x-govgate-user"] == "zhang.san"
    r = await world.request("POST", "/auth/verify", token=world.token(),
                            headers=verify_headers("/s/echo/api/x?y=1"))
    assert r.status == 405


async def test_verify_401_403_and_fail_closed(world: World) -> None:
    r = await world.request("GET", "/auth/verify", headers=verify_headers("/s/echo/x"))
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    r = await world.request("GET", "/auth/verify", token=other,
                            headers=verify_headers("/api/x", system="echo"))
    assert r.status == 403 and "x-govgate-assertion" not in r.headers
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "GET"))
    r = await world.request("GET", "/auth/verify", token=other,
                            headers=verify_headers("/api/x", system="echo"))
    assert r.status == 200
    for uri in ("/api/..%2Fadmin", "/api/%2e%2e/admin", "/api//x", "/API/../admin"):
        r = await world.request("GET", "/auth/verify", token=other,
                                headers=verify_headers(uri, system="echo"))
        assert r.status == 403, uri
    r = await world.request("GET", "/auth/verify", token=other,
                            headers=verify_headers("/api/x", "POST", system="echo"))
    assert r.status == 403
    world.audit.fail = True
    r = await world.request("GET", "/auth/verify", token=world.token(),
                            headers=verify_headers("/s/echo/x"))
    assert r.status == 503


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{body}
}}
"""


def nginx_conf(tmp: Path, port: int, gateway: int, upstream: int) -> str:
    """docs/nginx-forward-auth.conf with the test's ports and paths."""
    example = (Path(__file__).parents[2] / "docs" / "nginx-forward-auth.conf").read_text()
    server = example.split("# --- begin http block ---", 1)[1].split("# --- end http block", 1)[0]
    server = (server.replace("127.0.0.1:8080", f"127.0.0.1:{gateway}")
              .replace("127.0.0.1:9101", f"127.0.0.1:{upstream}")
              .replace("listen 80;", f"listen 127.0.0.1:{port};")
              .replace("X-Govgate-System vehicles", "X-Govgate-System echo"))
    return NGINX_CONF.format(tmp=tmp, body=server)


@pytest.fixture
async def nginx(world: World, tmp_path: Path) -> AsyncIterator[int]:
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(tmp_path, port, world.gateway.port, world.upstream.port))
    async with front_proxy([NGINX, "-p", str(tmp_path), "-c", str(conf)], port):
        yield port


async def test_real_nginx_auth_request_in_front_of_a_real_upstream(
    world: World, nginx: int
) -> None:
    async def get(target: str, token: str | None = None,
                  headers: list[tuple[str, str]] | None = None) -> int:
        hdrs = list(headers or [])
        if token:
            hdrs.append(("Authorization", f"Bearer {token}"))
        r = await raw_request(nginx, "GET", target, hdrs)
        get.last = r  # type: ignore[attr-defined]
        return r.status

    assert await get("/api/x") == 401
    assert world.echo.seen == []
    spoof = [("X-Forwarded-User", "admin"), ("X-Govgate-Assertion", "forged"),
             ("X-Auth-Request-User", "admin"), ("X-Remote-User", "admin"),
             ("Remote-User", "admin"), ("X-Govgate-System", "other"),
             ("X-Original-URL", "/admin"), ("X-Rewrite-URL", "/admin"),
             ("X-Forwarded-Server", "evil.example"), ("X-Forwarded-Port", "4443"),
             ("X-Forwarded-Prefix", "/evil"), ("X-Original-Host", "evil.example"),
             ("X-Host", "evil.example"), ("Forwarded", "host=evil.example"),
             ("X-Govgate-Name", "UTF-8''%E7%AE%A1%E7%90%86%E5%91%98")]
    assert await get("/api/items?a=1", world.token(), spoof) == 200
    seen = world.echo.seen[-1]
    got = {k.lower(): v for k, v in seen["headers"]}
    names = [k.lower() for k, _ in seen["headers"]]
    assert seen["raw_path"] == "/api/items" and seen["query"] == "a=1"
    claims = world.services.keys.verify_jwt("assertion", got["x-govgate-assertion"])
    assert claims["aud"] == "echo" and claims["username"] == "zhang.san"
    for name in ("x-forwarded-user", "x-auth-request-user", "x-remote-user", "remote-user",
                 "authorization", "x-govgate-system", "x-original-url", "x-rewrite-url",
                 "x-forwarded-server", "x-forwarded-port", "x-forwarded-prefix",
                 "x-original-host", "x-host", "forwarded", "x-govgate-name"):
        assert name not in names, name
    assert names.count("x-govgate-assertion") == 1
    # released for this system: govgate's name (RFC 8187 for 张三) and region reach it
    # through nginx in place of the client's copy; another system's list is its own
    apply_state(world.services, {"users": [{"username": "zhang.san", "name": "张三",
                                            "department": "jgswj", "roles": ["staff"]}]})
    world.services.live_users.invalidate()
    set_release(world.built, "echo", {"forward_auth": ["name", "region"]})
    world.built.proxy.systems.invalidate()
    assert await get("/api/items", world.token(), spoof) == 200
    headers = world.echo.seen[-1]["headers"]
    assert [v for k, v in headers if k.lower() == "x-govgate-name"] == [
        "UTF-8''%E5%BC%A0%E4%B8%89"]
    assert [v for k, v in headers if k.lower() == "x-govgate-region"] == ["gx"]
    set_release(world.built, "echo", {"forward_auth": ["region"]})
    world.built.proxy.systems.invalidate()
    assert await get("/api/items", world.token(), spoof) == 200
    names = [k.lower() for k, _ in world.echo.seen[-1]["headers"]]
    assert "x-govgate-name" not in names and "x-govgate-region" in names
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    assert await get("/api/items", other) == 403
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "GET"))
    assert await get("/api/items", other) == 200
    before = len(world.echo.seen)
    for trick in ("/api/..%2Fadmin", "/api/%2e%2e/admin", "/api/%252e%252e/admin"):
        assert await get(trick, other) == 403, trick
    assert len(world.echo.seen) == before
    world.audit.fail = True
    assert await get("/api/items", world.token()) == 500  # no audit, no access
    assert len(world.echo.seen) == before


async def test_verify_applies_the_cross_site_rule_of_the_proxy(world: World) -> None:
    from tests.proxy.test_cross_site import session_cookie

    cookie = session_cookie(world)
    front = [("Cookie", cookie), ("X-Forwarded-Host", "front.example")]
    hostile = await world.request("GET", "/auth/verify", headers=[
        *front, *verify_headers("/s/echo/orders", "POST"),
        ("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")])
    assert hostile.status == 403 and b"access_denied" in hostile.body
    rec = world.audit.records[-1]
    assert rec.event_type == "forward_auth" and rec.actor_user == "zhang.san"
    assert "session cookie" in (rec.reason or "")
    # the front proxy's own page (Origin = the host the browser addressed) passes
    own = await world.request("GET", "/auth/verify", headers=[
        *front, *verify_headers("/s/echo/orders", "POST"), ("Origin", "http://front.example")])
    assert own.status == 200 and own.headers["x-govgate-user"] == "zhang.san"
    # a safe method is never cross-site
    safe = await world.request("GET", "/auth/verify", headers=[
        *front, *verify_headers("/s/echo/orders"), ("Sec-Fetch-Site", "cross-site")])
    assert safe.status == 200


async def test_verify_and_the_proxy_share_one_rate_limit(world: World) -> None:
    from gateway.proxy.endpoint import ProxyConfig

    async with world.rebuilt(proxy_config=ProxyConfig(rate=0.001, burst=2)):
        token = world.token()
        first = await world.request("GET", "/auth/verify", token=token,
                                    headers=verify_headers("/s/echo/a"))
        second = await world.request("GET", "/s/echo/a", token=token)
        assert first.status == 200 and second.status == 200
        limited = await world.request("GET", "/auth/verify", token=token,
                                      headers=verify_headers("/s/echo/a"))
        assert limited.status == 403  # nginx knows no 429: any other status becomes a 500
        assert limited.json()["type"] == "urn:govgate:error:rate_limited"
        rec = world.audit.records[-1]
        assert rec.event_type == "forward_auth" and rec.outcome == "deny"
        assert rec.extra["refused_as"] == 429 and rec.reason == "rate limit exceeded; retry later"
        assert (await world.request("GET", "/s/echo/a", token=token)).status == 429


async def test_a_client_cannot_choose_the_system_beside_a_proxy_uri(world: World) -> None:
    """Front proxies pass the client's headers to the check: an X-Govgate-System beside a
    /s/{system}/ URI would have another system's rules decide (attack of 2026-12-04)."""
    r = await world.request("GET", "/auth/verify", token=world.token(), headers=[
        *verify_headers("/s/echo/api/x"), ("X-Govgate-System", "down")])
    assert r.status == 403 and "x-govgate-assertion" not in r.headers
    rec = world.audit.records[-1]
    assert rec.event_type == "forward_auth" and rec.extra["refused_as"] == 400
    assert "X-Govgate-System beside" in (rec.reason or "")
    # a system served at the front proxy's root still names itself this way
    r = await world.request("GET", "/auth/verify", token=world.token(), headers=[
        *verify_headers("/api/x"), ("X-Govgate-System", "echo")])
    assert r.status == 200


async def test_real_nginx_passes_raw_utf8_and_govgate_decides_on_what_it_means(
    world: World, nginx: int
) -> None:
    """nginx hands ``$request_uri`` over byte for byte: a raw UTF-8 path is the path
    its percent-encoding names (one policy line decides both), bytes that are not
    UTF-8 are refused, and nginx never gets anything from the check but 200/401/403."""
    token = world.token()
    world.built.policies.add(make_line("role:staff", "jgswj", "/s/echo/档案/*", "GET",
                                       effect="deny"))

    def raw(text: str) -> str:  # the UTF-8 bytes on the wire (raw_request sends latin-1)
        return text.encode("utf-8").decode("latin-1")

    auth = [("Authorization", f"Bearer {token}")]
    for target in (raw("/档案/1"), "/%E6%A1%A3%E6%A1%88/1", raw("/档") + "%E6%A1%88/1"):
        r = await raw_request(nginx, "GET", target, auth)
        assert r.status == 403, target
        record = world.audit.records[-1]
        assert record.event_type == "forward_auth" and record.extra["line_id"] is not None
        assert record.extra["upstream_path"] == "/%E6%A1%A3%E6%A1%88/1"
    r = await raw_request(nginx, "GET", "/a\xff", auth)
    assert r.status == 403
    assert world.audit.records[-1].reason == "path is not UTF-8"
    assert world.echo.seen == []
    # allowed: the check answers 200 for the path it means, bound to the raw bytes
    await raw_request(nginx, "GET", raw("/资产/1"), auth)
    record = world.audit.records[-1]
    assert record.outcome == "allow" and record.extra["path"] == "/资产/1"
    # nginx passes a raw UTF-8 Host on as $host: no origin the cross-site rule may own
    seen = len(world.echo.seen)
    r = await raw_request(nginx, "GET", "/api/x", [*auth, ("Host", raw("档案.example"))])
    assert r.status == 403 and len(world.echo.seen) == seen
    assert world.audit.records[-1].reason == "the forwarded host is not ASCII"
