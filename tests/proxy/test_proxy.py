"""The proxy against a real upstream, with hostile requests."""

from __future__ import annotations

import hashlib

from gateway.root import Gateway
from policies import make_line
from tests.proxy.conftest import World


async def test_owner_department_passes_with_assertion_and_request_id(world: World) -> None:
    r = await world.request("GET", "/s/echo/api/items?page=2&q=%E4%B8%AD",
                            token=world.token(roles=["staff", "data_steward"]))
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["raw_path"] == "/api/items" and seen["query"] == "page=2&q=%E4%B8%AD"
    got = dict((k.lower(), v) for k, v in seen["headers"])
    claims = world.services.keys.verify_jwt("assertion", got["x-govgate-assertion"])
    assert claims["aud"] == "echo" and claims["department"] == "jgswj"
    assert claims["username"] == "zhang.san" and claims["roles"] == ["data_steward", "staff"]
    assert claims["client_id"] == "office-web"
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert claims["request_id"] == got["x-request-id"] == r.headers["x-request-id"]
    assert got["x-forwarded-for"] == "127.0.0.1" and got["x-forwarded-proto"] == "http"
    assert "authorization" not in got
    assert r.headers["x-upstream"] == "yes"
    assert "set-cookie" not in r.headers  # the upstream may not set the gateway's cookie
    rec = world.audit.records[-1]
    assert rec.event_type == "proxy_request" and rec.outcome == "allow" and rec.status == 200
    assert rec.reason and rec.reason.startswith("allow by default rule")
    assert rec.request_id == r.headers["x-request-id"]
    assert rec.resp_hash == hashlib.sha256(r.body).hexdigest()


SPOOFED = [
    ("X-Forwarded-User", "admin"), ("X-Forwarded-Email", "boss@gov"),
    ("X-Forwarded-Preferred-Username", "admin"), ("X-Forwarded-Groups", "admins"),
    ("X-Auth-Request-User", "admin"), ("X-Auth-Request-Email", "boss@gov"),
    ("X-User", "admin"), ("X-User-Id", "1"), ("X-Userinfo", "e30"), ("X-Remote-User", "admin"),
    ("Remote-User", "admin"), ("X-Govgate-Assertion", "forged.jwt.here"),
    ("X-Govgate-User", "admin"), ("X-Govgate-Department", "czt"), ("X_Forwarded_User", "admin"),
    ("x-forwarded-user", "admin2"), ("X-Forwarded-For", "10.9.9.9"), ("Forwarded", "for=1.2.3.4"),
    ("X-Real-IP", "10.9.9.9"), ("X-Forwarded-Host", "evil.example"), ("X-Request-ID", "mine"),
    ("X-Corp-Identity", "admin"), ("Connection", "X-Hop-Secret"), ("X-Hop-Secret", "1"),
    ("Keep-Alive", "timeout=5"), ("Proxy-Authorization", "Basic YTpi"),
    ("Cookie", "gg_session=stolen; theme=dark; govgate_x=1"),
]


async def test_spoofed_identity_headers_never_reach_the_upstream(world: World) -> None:
    from gateway.proxy.endpoint import ProxyConfig

    proxy_cfg = world.built.proxy.config  # with an operator-configured header:
    async with world.rebuilt(proxy_config=ProxyConfig(
            **{**proxy_cfg.__dict__, "extra_strip_headers": ("X-Corp-Identity",)})):
        r = await world.request("GET", "/s/echo/api/x", token=world.token(), headers=SPOOFED)
        port = world.gateway.port
    assert r.status == 200, r.body
    got = r.json()["headers"]
    names = [k.lower() for k, _ in got]
    values = dict((k.lower(), v) for k, v in got)
    for name, _ in SPOOFED:
        n = name.lower()
        if n in ("x-govgate-assertion", "x-forwarded-for", "x-forwarded-host", "x-request-id",
                 "cookie"):
            assert names.count(n) == 1, n  # ours only
        else:
            assert n not in names and n.replace("_", "-") not in names, name
    assert values["x-forwarded-for"] == "127.0.0.1"
    assert values["x-forwarded-host"] == f"127.0.0.1:{port}"
    assert values["x-request-id"] == r.headers["x-request-id"] != "mine"
    assert values["cookie"] == "theme=dark"
    claims = world.services.keys.verify_jwt("assertion", values["x-govgate-assertion"])
    assert claims["username"] == "zhang.san"
    assert not any("admin" in v for v in values.values() if v)


async def test_no_credential_401_with_www_authenticate_and_audited(world: World) -> None:
    r = await world.request("GET", "/s/echo/api/x")
    assert r.status == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 401 and body["request_id"] == r.headers["x-request-id"]
    assert world.echo.seen == []
    assert world.audit.records[-1].outcome == "deny" and world.audit.records[-1].status == 401


async def test_bad_tokens_are_refused(world: World) -> None:
    import base64
    import json

    now = int(world.services.clock().timestamp())
    bad = {
        "expired": world.token(iat=now - 7200, nbf=now - 7200, exp=now - 3600),
        "other audience": world.token(aud="https://other.example"),
        "other issuer": world.token(iss="https://evil.example"),
        "not yet valid": world.token(nbf=now + 3600, iat=now + 3600, exp=now + 7200),
        "id token typ": world.token(_typ="JWT"),
    }
    good = world.token()
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["department"] = "czt"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    bad["tampered"] = f"{head}.{forged}.{sig}"
    none_head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').rstrip(b"=").decode()
    bad["alg none"] = f"{none_head}.{payload}."
    for why, token in bad.items():
        r = await world.request("GET", "/s/echo/api/x", token=token)
        assert r.status == 401, why
        assert "detail" in r.json() and "expired" not in r.body.decode()  # opaque outward
    assert world.echo.seen == []
    reasons = [rec.reason or "" for rec in world.audit.records]
    assert any("expired" in x for x in reasons) and any("audience" in x for x in reasons)


TRICKS = [
    "/s/echo/api/..%2Fadmin", "/s/echo/api/%2e%2e/admin", "/s/echo/api/%2E%2E/admin",
    "/s/echo/api/..%252Fadmin", "/s/echo/api/%252e%252e/admin", "/s/echo/api/..\\admin",
    "/s/echo/api/..%5Cadmin", "/s/echo/api/..;/admin", "/s/echo/api/../admin",
    "/s/echo/api/./../admin", "/s/echo//admin", "/s/echo/api//..//admin", "/s/Echo/admin",
    "/s/ECHO/admin", "/s/%65cho/admin", "/s/echo/api/%00/../admin", "/s/echo/api/a%0d%0aX:%20y",
    "/s/echo/api/%zz", "/s/echo/api/%c0%ae%c0%ae/admin", "/s/echo/api/%",
]


async def test_traversal_tricks_never_reach_a_path_policy_did_not_allow(world: World) -> None:
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "GET"))
    steward = world.token(sub="li.si", department="czt", roles=["data_steward"])
    assert (await world.request("GET", "/s/echo/api/items", token=steward)).status == 200
    assert (await world.request("GET", "/s/echo/admin", token=steward)).status == 403
    for trick in TRICKS:
        r = await world.request("GET", trick, token=steward)
        assert r.status in (400, 404), (trick, r.status)
        assert r.headers.get("content-type") == "application/problem+json", trick
    assert world.echo.paths() == ["/api/items"]
    denied = [rec for rec in world.audit.records if rec.status == 403]
    assert denied and denied[0].reason.startswith("deny by default rule")


async def test_explicit_deny_wins_for_the_owner_department(world: World) -> None:
    world.built.policies.add(
        make_line("dept:jgswj", "jgswj", "/s/echo/secret*", "*", "deny"))
    r = await world.request("GET", "/s/echo/secret/1", token=world.token())
    assert r.status == 403 and r.json()["detail"] == "access denied"
    assert world.audit.records[-1].reason.startswith("deny by policy line")
    assert (await world.request("GET", "/s/echo/open", token=world.token())).status == 200


async def test_unknown_system_404(world: World) -> None:
    r = await world.request("GET", "/s/nope/x", token=world.token())
    assert r.status == 404


async def test_post_body_streams_and_is_hashed(world: World) -> None:
    body = b"{" + b"a" * 40000 + b"}"
    r = await world.request("POST", "/s/echo/api/upload", token=world.token(), body=body,
                            headers=[("Content-Type", "application/json")])
    assert r.status == 200
    assert r.json()["body_len"] == len(body)
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    assert world.audit.records[-1].req_hash == hashlib.sha256(body).hexdigest()
    chunks = [b"x" * 1000] * 20
    r = await world.request("PUT", "/s/echo/api/upload", token=world.token(), chunks=chunks)
    assert r.status == 200 and r.json()["body_len"] == 20000


async def test_oversized_bodies_are_refused_without_being_buffered(world: World) -> None:
    r = await world.request("POST", "/s/echo/api/upload", token=world.token(),
                            headers=[("Content-Length", str(10 * 1024 * 1024))])
    assert r.status == 413  # declared: refused before a byte is read
    # chunked, no length: refused once 64 KiB have streamed through
    r = await world.request("POST", "/s/echo/api/upload", token=world.token(),
                            chunks=[b"y" * 16384] * 64)
    assert r.status == 413
    assert all(s["body_len"] <= 64 * 1024 for s in world.echo.seen)


async def test_header_block_too_large_431(world: World) -> None:
    r = await world.request("GET", "/s/echo/api/x", token=world.token(),
                            headers=[(f"X-Pad-{i}", "v" * 1000) for i in range(40)])
    assert r.status == 431


async def test_upstream_down_502_and_slow_504(world: World) -> None:
    r = await world.request("GET", "/s/down/x", token=world.token())
    assert r.status == 502 and r.json()["type"] == "urn:govgate:error:bad_gateway"
    r = await world.request("GET", "/s/echo/slow", token=world.token())
    assert r.status == 504
    assert "read_timeout" in str(world.audit.records[-1].extra.get("upstream_error"))


async def test_streamed_response_passes_through(world: World) -> None:
    r = await world.request("GET", "/s/echo/big", token=world.token())
    assert r.status == 200 and len(r.body) == 32 * 65536
    assert world.audit.records[-1].extra.get("resp_streamed") is True


async def test_rate_limit_429_with_retry_after(world: World) -> None:
    from gateway.proxy.endpoint import ProxyConfig

    async with world.rebuilt(proxy_config=ProxyConfig(rate=0.5, burst=2)):
        token = world.token()
        statuses = [(await world.request("GET", "/s/echo/x", token=token)).status
                    for _ in range(3)]
        assert statuses == [200, 200, 429]
        r = await world.request("GET", "/s/echo/x", token=token)
        assert r.status == 429 and int(r.headers["retry-after"]) >= 1
        other = world.token(client_id="other-client")
        assert (await world.request("GET", "/s/echo/x", token=other)).status == 200


async def test_audit_failure_means_503_and_no_upstream_answer(world: World) -> None:
    world.audit.fail = True
    r = await world.request("GET", "/s/echo/api/x", token=world.token())
    assert r.status == 503 and r.json()["type"] == "urn:govgate:error:audit_unavailable"
    assert b"raw_path" not in r.body
    r = await world.request("GET", "/s/echo/api/x")  # even a 401 needs its record
    assert r.status == 503


async def test_decide_and_shape_seams(world: World) -> None:
    import json

    from gateway.proxy.endpoint import ProxyRequest, UpstreamResponse
    from policies import Decision

    async def catalogue(req: ProxyRequest, decision: Decision) -> Decision:
        if req.target.path.startswith("/api/closed"):
            return Decision(False, "catalogue", "deny by catalogue: share type none")
        return decision

    async def cut(req: ProxyRequest, decision: Decision, resp: UpstreamResponse
                  ) -> UpstreamResponse:
        data = json.loads(resp.body)
        return UpstreamResponse(resp.status, resp.headers,
                                json.dumps({"method": data["method"]}).encode())

    async with world.rebuilt(deciders=(catalogue,), shapers=(cut,), catalogue_steps=False):
        r = await world.request("GET", "/s/echo/api/closed", token=world.token())
        assert r.status == 403
        assert world.audit.records[-1].reason == "deny by catalogue: share type none"
        r = await world.request("GET", "/s/echo/api/open", token=world.token())
        assert r.status == 200 and r.json() == {"method": "GET"}


async def test_metrics(world: World) -> None:
    await world.request("GET", "/s/echo/api/x", token=world.token())
    await world.request("GET", "/s/echo/api/x")
    r = await world.request("GET", "/metrics")
    text = r.body.decode()
    assert r.status == 200
    assert 'govgate_proxy_requests_total{decision="allow",status="200",system="echo"} 1.0' in text
    assert 'status="401"' in text and "govgate_audit_queue_depth" in text
    assert "govgate_policy_decision_seconds_bucket" in text


async def test_upstream_base_path_and_kept_alive_connections(world: World) -> None:
    world.built.state_applier().apply({"systems": [
        {"code": "based", "name": "带前缀的系统", "department": "jgswj",
         "upstream": f"http://127.0.0.1:{world.upstream.port}/legacy/app/"}]})
    world.built.proxy.systems.invalidate()
    token = world.token()
    for n in range(3):
        r = await world.request("GET", f"/s/based/api/%E8%BD%A6/{n}?x=1", token=token)
        assert r.status == 200, r.body
        seen = r.json()
        assert seen["raw_path"] == f"/legacy/app/api/%E8%BD%A6/{n}" and seen["query"] == "x=1"
        host = dict((k.lower(), v) for k, v in seen["headers"])["host"]
        assert host == f"127.0.0.1:{world.upstream.port}"
    # the three requests went over one pooled upstream connection
    ports = {s["client_port"] for s in world.echo.seen[-3:]}
    assert len(ports) == 1


async def test_trusted_proxy_names_the_real_client_and_others_cannot(world: World) -> None:
    import dataclasses

    from gateway.app import create_app
    from tests.proxy.conftest import Served, raw_request

    s = world.services
    original = s.settings
    hdrs = [("Authorization", f"Bearer {world.token()}"),
            ("X-Forwarded-For", "198.51.100.9, 203.0.113.7"), ("X-Forwarded-Proto", "https")]
    # the test's peer is 127.0.0.1: trusted here, so the right-most untrusted
    # address of X-Forwarded-For is the client
    s.settings = dataclasses.replace(original, trusted_proxies=("127.0.0.0/8",))
    try:
        async with Served(create_app(s)) as behind_lb:
            r = await raw_request(behind_lb.port, "GET", "/s/echo/api/lb", hdrs, None, None)
    finally:
        s.settings = original
    assert r.status == 200, r.body
    got = dict((k.lower(), v) for k, v in r.json()["headers"])
    assert got["x-forwarded-for"] == "203.0.113.7" and got["x-forwarded-proto"] == "https"
    assert world.audit.records[-1].source_ip == "203.0.113.7"
    # the same headers from an untrusted peer change nothing
    r = await world.request("GET", "/s/echo/api/direct", headers=hdrs[1:], token=world.token())
    got = dict((k.lower(), v) for k, v in r.json()["headers"])
    assert got["x-forwarded-for"] == "127.0.0.1" and got["x-forwarded-proto"] == "http"
    assert world.audit.records[-1].source_ip == "127.0.0.1"


def test_proxy_config_comes_from_the_settings(world: World) -> None:
    import dataclasses

    from gateway.proxy.endpoint import ProxyConfig
    from gateway.proxy.headers import HeaderPolicy

    settings = dataclasses.replace(
        world.services.settings, proxy_rate=3.0, proxy_burst=4.0, max_headers=20,
        max_header_bytes=2048, proxy_strip_headers=("X-Corp-User",))
    config = ProxyConfig.from_settings(settings)
    assert (config.rate, config.burst, config.max_headers, config.max_header_bytes) == (
        3.0, 4.0, 20, 2048)
    kept, _ = HeaderPolicy(config.extra_strip_headers).request_headers(
        [(b"x-corp-user", b"admin"), (b"X-CORP-USER", b"admin"), (b"accept", b"*/*")])
    assert kept == [(b"accept", b"*/*")]


async def test_two_authorization_headers_the_first_one_counts(world: World) -> None:
    good = world.token()
    assert (await world.request("GET", "/s/echo/api/a", token=good)).status == 200  # cached
    r = await world.request("GET", "/s/echo/api/a", headers=[
        ("Authorization", "Bearer not-a-token"), ("Authorization", f"Bearer {good}")])
    assert r.status == 401
    r = await world.request("GET", "/s/echo/api/a", headers=[
        ("Authorization", f"Bearer {good}"), ("Authorization", "Bearer not-a-token")])
    assert r.status == 200


async def test_connections_per_upstream_are_capped_and_a_burst_waits(world: World) -> None:
    import asyncio
    import dataclasses

    current = world.built.proxy
    async with world.rebuilt(proxy_config=dataclasses.replace(
            current.config, max_connections=1, connect_timeout=0.5, read_timeout=2.0)) as built:
        capped = built.proxy
        token = world.token()
        slow_task = asyncio.create_task(world.request("GET", "/s/echo/slow", token=token))
        for _ in range(1000):  # until the slow request holds the only slot
            if capped.in_flight == 1:
                break
            await asyncio.sleep(0.01)
        assert capped.in_flight == 1
        queued = await world.request("GET", "/s/echo/api/queued", token=token)
        slow = await slow_task
        # the second found the only slot taken by the slow one for longer than the
        # connect timeout: 504, never a second upstream connection
        assert queued.status == 504 and slow.status == 504
        errors = [str(r.extra.get("upstream_error")) for r in world.audit.records[-2:]]
        assert any("pool_timeout" in e for e in errors), errors
        assert any("read_timeout" in e for e in errors), errors
        # a free slot again: the next request goes through
        assert (await world.request("GET", "/s/echo/api/after", token=token)).status == 200


def test_request_ids_are_unique_hex_and_ordered_by_time() -> None:
    import time

    from gateway.proxy.endpoint import new_request_id

    first = [new_request_id() for _ in range(1000)]
    time.sleep(0.002)
    later = new_request_id()
    assert len(set(first)) == 1000
    assert all(len(r) == 32 and set(r) <= set("0123456789abcdef") for r in first)
    assert max(r[:12] for r in first) < later[:12]


async def test_the_proxy_decides_on_the_users_current_roles(world: World) -> None:
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "GET"))
    token = world.token(sub="li.si", department="czt", roles=["staff", "data_steward"])
    assert (await world.request("GET", "/s/echo/api/x", token=token)).status == 200
    world.built.state_applier().apply({"users": [{
        "username": "li.si", "name": "李四", "department": "czt", "roles": ["staff"]}]})
    r = await world.request("GET", "/s/echo/api/x", token=token)  # the same, cached token
    assert r.status == 403
    assert world.audit.records[-1].reason is not None
    world.services.org.disable_user("li.si")
    assert (await world.request("GET", "/s/echo/api/x", token=token)).status == 401
    assert world.audit.records[-1].reason == "user disabled or gone"


async def test_refused_targets_are_audited_as_sent(world: World) -> None:
    before = len(world.echo.seen)
    for target in ("/s/echo/api/..%2Fadmin?q=%27or%201=1", "/s/echo/a%00b", "/s/Echo/x",
                   "/s/echo/%2e%2e/" + "a" * 1200):
        r = await world.request("GET", target, token=world.token())
        assert r.status == 400, target
        rec = world.audit.records[-1]
        assert rec.status == 400 and rec.request_id == r.headers["x-request-id"]
        # the attack string itself, bounded
        assert rec.extra["path"] == (target if len(target) <= 1000 else target[:1000] + "…")
    assert len(world.echo.seen) == before


async def test_a_body_that_stops_arriving_is_cut_off_and_frees_the_upstream(
        world: World) -> None:

    from gateway.proxy.endpoint import ProxyConfig

    async with world.rebuilt(proxy_config=ProxyConfig(
            max_body_bytes=64 * 1024, body_timeout=0.5, rate=1000, burst=1000)) as built:
        await _slow_body_cut_off(world, built)


async def _slow_body_cut_off(world: World, built: Gateway) -> None:
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", world.gateway.port)
    writer.write((f"POST /s/echo/api/slow-body HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {world.token()}\r\nContent-Length: 100\r\n\r\n"
                  "0123456789").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head[:200]
    rec = world.audit.records[-1]
    assert rec.status == 408 and rec.extra["path"] == "/s/echo/api/slow-body"
    assert "/api/slow-body" not in world.echo.paths()  # the upstream never got it whole
    assert built.proxy.in_flight == 0
    assert (await world.request("GET", "/s/echo/api/x", token=world.token())).status == 200


async def test_http_basic_is_told_where_a_token_comes_from(world: World) -> None:
    # an old system that knows only HTTP Basic (curl -u id:secret, a cron job) sends its
    # client credentials to /s/: refused, in the caller's language, with the token
    # endpoint named; the secret is never checked here and never recorded
    import base64

    basic = "Basic " + base64.b64encode(b"energy-system:the-secret-0123456789").decode()
    token_endpoint = f"{world.services.settings.issuer}/oauth2/token"
    for lang, words in (("zh-CN", "此处不接受 HTTP Basic 认证"),
                        ("en", "HTTP Basic is not accepted here")):
        r = await world.request("GET", "/s/echo/api/x", headers=[
            ("Authorization", basic), ("Accept-Language", lang)])
        assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
        detail = r.json()["detail"]
        assert words in detail and token_endpoint in detail, detail
    assert world.echo.seen == []
    record = world.audit.records[-1]
    assert record.status == 401
    assert record.reason == "not a bearer token: the Authorization scheme is Basic"
    assert "the-secret" not in repr(record)
    # a static API key in Authorization: the reason is kept whole, not read as a secret
    r = await world.request("GET", "/s/echo/api/x", headers=[
        ("Authorization", "ApiKey 0123456789abcdef")])
    assert r.status == 401 and world.audit.records[-1].reason == "not a bearer token"
    # every other 401 of the proxy in the caller's language too (it was English under
    # a Chinese title)
    r = await world.request("GET", "/s/echo/api/x", headers=[("Accept-Language", "zh-CN")])
    assert r.status == 401 and r.json()["detail"] == "凭据无效或缺失", r.body
    # and a token without the proxy scope (a client registered "openid profile"): 403
    # in the caller's language too
    r = await world.request("GET", "/s/echo/api/x", token=world.token(scope="openid profile"))
    assert r.status == 403 and r.json()["detail"] == "需要带有授权范围 proxy:echo 的令牌", r.body
