"""A request the gateway could read one way and the front proxy or the upstream
another: the forward-auth request line, method-override headers, ``Connection``
nominating the gateway's own headers, and tokens signed by a key of another use."""

from __future__ import annotations

from policies import make_line
from tests.proxy.conftest import World

METHOD_OVERRIDES = ("X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override")


async def test_forward_auth_refuses_two_different_request_lines(world: World) -> None:
    """Traefik's forwardAuth and Caddy's forward_auth set X-Forwarded-Uri/-Method and pass
    the client's other headers along: a client-added X-Original-URI must not decide."""
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/public/*", "GET"))
    ok = [("X-Forwarded-Uri", "/s/echo/public/x"), ("X-Forwarded-Method", "GET")]
    r = await world.request("GET", "/auth/verify", token=other, headers=ok)
    assert r.status == 200
    # what the front proxy is really forwarding is /s/echo/admin, DELETE
    smuggled = [
        [("X-Forwarded-Uri", "/s/echo/admin"), ("X-Original-URI", "/s/echo/public/x")],
        [("X-Forwarded-Uri", "/s/echo/public/x"), ("X-Forwarded-Method", "DELETE"),
         ("X-Original-Method", "GET")],
        [("X-Original-URI", "/s/echo/public/x"), ("X-Original-URI", "/s/echo/admin")],
        [("X-Forwarded-Uri", "/s/echo/public/x"), ("X-Forwarded-Method", "DELETE"),
         ("X-Forwarded-Method", "GET")],
        [("X-Original-URI", "/public/x"), ("X-Govgate-System", "echo"),
         ("X-Govgate-System", "down")],
    ]
    for headers in smuggled:
        r = await world.request("GET", "/auth/verify", token=other, headers=headers)
        assert r.status == 403, headers
        assert "x-govgate-assertion" not in r.headers
    # a front proxy that does not say the method: not checked as a GET
    r = await world.request("GET", "/auth/verify", token=other,
                            headers=[("X-Original-URI", "/s/echo/public/x")])
    assert r.status == 403
    r = await world.request("GET", "/auth/verify", token=other, headers=[
        ("X-Original-Method", "GET")])
    assert r.status == 403
    # the same value twice (a front proxy that sets both) is not ambiguous
    r = await world.request("GET", "/auth/verify", token=other, headers=[
        *ok, ("X-Original-URI", "/s/echo/public/x"), ("X-Original-Method", "get")])
    assert r.status == 200


async def test_method_override_headers(world: World) -> None:
    """The decision is made on the request's method; an upstream framework that honours
    a method-override header must not run another one."""
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "POST"))
    for name in METHOD_OVERRIDES:
        r = await world.request("POST", "/s/echo/api/x", token=other, body=b"{}",
                                headers=[(name, "DELETE")])
        assert r.status == 200, r.body
        sent = [k.lower() for k, _ in r.json()["headers"]]
        assert name.lower() not in sent, name
        # forward-auth cannot strip it from what nginx forwards: it refuses
        r = await world.request("GET", "/auth/verify", token=other, headers=[
            ("X-Original-URI", "/s/echo/api/x"), ("X-Original-Method", "POST"),
            (name, "DELETE")])
        assert r.status == 403, name
    r = await world.request("GET", "/auth/verify", token=other, headers=[
        ("X-Original-URI", "/s/echo/api/x"), ("X-Original-Method", "POST")])
    assert r.status == 200


async def test_connection_cannot_nominate_the_gateways_headers(world: World) -> None:
    r = await world.request("GET", "/s/echo/api/x", token=world.token(), headers=[
        ("Connection", "X-Govgate-Assertion, X-Request-ID, X-Forwarded-For, Cookie"),
        ("Cookie", "theme=dark")])
    assert r.status == 200, r.body
    got = [(k.lower(), v) for k, v in r.json()["headers"]]
    names = [k for k, _ in got]
    for name in ("x-govgate-assertion", "x-request-id", "x-forwarded-for"):
        assert names.count(name) == 1, name
    assert not any(k == "connection" and "govgate" in v.lower() for k, v in got)
    assertion = dict(got)["x-govgate-assertion"]
    assert world.services.keys.verify_jwt("assertion", assertion)["aud"] == "echo"


async def test_a_token_signed_by_another_keys_use_is_refused(world: World) -> None:
    """An upstream holds assertions (signed by the assertion key): replayed as a bearer
    token, with or without an at+jwt header, it is not an access token."""
    good = world.token()
    claims = world.services.keys.verify_jwt("token", good)
    keys = world.services.keys
    for use in ("assertion", "audit"):
        token = keys.sign_jwt(use, claims, headers={"typ": "at+jwt"})
        r = await world.request("GET", "/s/echo/api/x", token=token)
        assert r.status == 401, use
    r = await world.request("GET", "/s/echo/api/x", token=good)
    assert r.status == 200
    assertion = dict((k.lower(), v) for k, v in r.json()["headers"])["x-govgate-assertion"]
    r = await world.request("GET", "/s/echo/api/x", token=assertion)
    assert r.status == 401
    r = await world.request("GET", "/auth/verify", token=assertion, headers=[
        ("X-Original-URI", "/s/echo/api/x"), ("X-Original-Method", "GET")])
    assert r.status == 401


async def test_an_upstream_cannot_set_the_gateways_cookies(world: World) -> None:
    """A Set-Cookie with an empty name (``=gg_session=x``, or no ``=`` at all) comes back
    from the browser as ``gg_session=x`` (RFC 6265bis 5.4, 5.8.3): an upstream could
    plant a portal session or CSRF cookie beside the real one."""
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from tests.proxy.conftest import Served

    planted = ["=gg_session=attackers; Path=/", "gg_csrf; Path=/", " = GG_CSRF=x",
               "=govgate_x=1", "GG_Session=x", "theme=dark; Path=/"]

    async def plant(request: Request) -> Response:
        response = Response(b"{}", media_type="application/json")
        for value in planted:
            response.raw_headers.append((b"set-cookie", value.encode()))
        return response

    async with Served(Starlette(routes=[Route("/{p:path}", plant)])) as upstream:
        world.built.state_applier().apply({"systems": [
            {"code": "cookies", "name": "种饼干", "department": "jgswj",
             "upstream": f"http://127.0.0.1:{upstream.port}"}]})
        world.built.proxy.systems.invalidate()
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{world.gateway.port}/s/cookies/x",
                               headers={"Authorization": f"Bearer {world.token()}"})
    assert r.status_code == 200, r.text
    assert r.headers.get_list("set-cookie") == ["theme=dark; Path=/s/cookies/"]


async def test_folded_or_padded_header_names_never_reach_the_upstream(world: World) -> None:
    """obs-fold (RFC 9112 section 5.2) and whitespace before the colon (section 5.1) are
    how a header hides from one parser and appears to the next: refused outright by
    the server govgate runs on, so the header filter never has to guess."""
    token = world.token()
    for headers in ([("X-Other", "1\r\n X-Govgate-User: admin")],
                    [("X-Govgate-Assertion ", "forged")],
                    [("X-Forwarded-User\t", "admin")]):
        r = await world.request("GET", "/s/echo/api/x", token=token, headers=headers)
        assert r.status == 400, headers
    assert world.echo.seen == []


async def test_trace_and_connect_are_never_forwarded(world: World) -> None:
    """An upstream that answers TRACE echoes what it received, the identity assertion
    included; a policy line for every method (``*``) does not open it."""
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "*"))
    before = len(world.echo.paths())
    for method in ("TRACE", "CONNECT"):  # TRACK: the HTTP parser refuses it (400)
        r = await world.request(method, "/s/echo/api/x", token=other)
        assert r.status == 403, (method, r.body)
        assert "x-govgate-assertion" not in r.body.decode().lower()
        record = world.audit.records[-1]
        assert (record.status, record.outcome) == (403, "deny")
        assert record.reason == f"{method} is never forwarded"
        r = await world.request("GET", "/auth/verify", token=other, headers=[
            ("X-Original-URI", "/s/echo/api/x"), ("X-Original-Method", method)])
        assert r.status == 403 and "x-govgate-assertion" not in r.headers
    assert len(world.echo.paths()) == before
    r = await world.request("DELETE", "/s/echo/api/x", token=other)
    assert r.status == 200, r.body


async def test_a_method_named_in_the_query_is_refused(world: World) -> None:
    """Express's ``method-override('_method')`` takes the method from the query: a POST
    decided as a POST must not run as a DELETE upstream."""
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "POST"))
    before = len(world.echo.paths())
    for query in ("_method=DELETE", "a=1&_METHOD=DELETE", "%5Fmethod=DELETE",
                  "x;X-HTTP-Method-Override=DELETE", "_method[]=DELETE"):
        r = await world.request("POST", f"/s/echo/api/x?{query}", token=other, body=b"{}")
        assert r.status == 400, (query, r.body)
        record = world.audit.records[-1]
        assert (record.status, record.outcome) == (400, "error")
        assert "names a method" in (record.reason or ""), record.reason
        r = await world.request("GET", "/auth/verify", token=other, headers=[
            ("X-Original-URI", f"/s/echo/api/x?{query}"), ("X-Original-Method", "POST")])
        assert r.status in (400, 403) and "x-govgate-assertion" not in r.headers, query
    assert len(world.echo.paths()) == before
    r = await world.request("POST", "/s/echo/api/x?payment_method=card&methods=2",
                            token=other, body=b"{}")
    assert r.status == 200, r.body


async def test_a_method_named_in_a_form_post_is_refused(world: World) -> None:
    """Rack::MethodOverride (on by default in Rails) and Laravel run a form POST with
    ``_method=DELETE`` as a DELETE: a POST decided as a POST must not."""
    other = world.token(sub="li.si", department="czt", roles=["data_steward"])
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/api/*", "POST"))
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    multipart = [("Content-Type", "multipart/form-data; boundary=XyZ")]
    part = (b'--XyZ\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n'
            b"--XyZ--\r\n")
    before = len(world.echo.paths())
    for headers, body in ((form, b"a=1&_method=delete"), (form, b"%5FMETHOD=DELETE"),
                          (multipart, part)):
        r = await world.request("POST", "/s/echo/api/x", token=other, body=body,
                                headers=headers)
        assert r.status == 400, (body, r.body)
        assert "names a method" in (world.audit.records[-1].reason or "")
    assert len(world.echo.paths()) == before
    # forms without one pass, whole, with their length; so does an upload naming it in
    # its content, not in a part's header
    upload = (b'--XyZ\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\n'
              b'_method=DELETE name="_method"\r\n--XyZ--\r\n')
    for headers, body in ((form, b"payment_method=card&a=2"), (multipart, upload)):
        r = await world.request("POST", "/s/echo/api/x", token=other, body=body,
                                headers=headers)
        assert r.status == 200, r.body
        assert r.json()["body_len"] == len(body)
