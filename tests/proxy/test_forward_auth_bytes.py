"""Forward-auth with header values outside ASCII, sent as nginx passes them: raw bytes
on the wire (``$request_uri`` is the client's request target as it came, UTF-8 or not)
to a served gateway. Every such value is either read as what it means (a raw UTF-8 path
is the path its percent-encoding names, under the same policy and catalogue match) or
refused with a clear ``bad_path`` problem (403, nginx's only refusal; ``refused_as``
400), audited; never a 500, never a decision on a mis-decoded value."""

from __future__ import annotations

import json

import pytest

from gateway.idp.oauth2.provider import SESSION_COOKIE
from gateway.proxy.acting import ACT_COOKIE
from policies import make_line
from tests.in_process import Resp
from tests.proxy.conftest import World, raw_request

pytestmark = pytest.mark.usefixtures("world")


def wire(text: str) -> str:
    """``text`` as the UTF-8 bytes nginx passes on (``raw_request`` sends latin-1)."""
    return text.encode("utf-8").decode("latin-1")


async def verify(world: World, headers: list[tuple[str, str]], token: str | None = None
                 ) -> Resp:
    assert world.gateway is not None
    if token:
        headers = [*headers, ("Authorization", f"Bearer {token}")]
    return await raw_request(world.gateway.port, "GET", "/auth/verify", headers)


def front(uri: str, method: str = "GET") -> list[tuple[str, str]]:
    return [("X-Original-URI", uri), ("X-Original-Method", method)]


async def test_a_raw_utf8_path_is_the_path_its_percent_encoding_names(world: World) -> None:
    token = world.token()
    world.built.policies.add(make_line("role:staff", "jgswj", "/s/echo/档案/*", "GET",
                                       effect="deny"))
    spellings = [wire("/s/echo/档案/1"), "/s/echo/%E6%A1%A3%E6%A1%88/1",
                 wire("/s/echo/档") + "%E6%A1%88/1", "/s/echo/%e6%a1%a3%e6%a1%88/1"]
    rules = set()
    for uri in spellings:
        r = await verify(world, front(uri), token)
        assert r.status == 403, uri
        assert json.loads(r.body)["type"].endswith("access_denied"), uri
        record = world.audit.records[-1]
        assert record.extra["upstream_path"] == "/%E6%A1%A3%E6%A1%88/1", uri
        rules.add((record.reason, record.extra["rule"], record.extra["line_id"]))
    assert len(rules) == 1  # one line decided every spelling
    # the system named apart (nginx serving it at its root): the same
    r = await verify(world, [*front(wire("/档案/1")), ("X-Govgate-System", "echo")], token)
    assert r.status == 403 and world.audit.records[-1].extra["line_id"] is not None

    # next to it, allowed: the audit record shows the path as characters, and the
    # assertion binds the raw path as the upstream behind nginx receives it
    r = await verify(world, front(wire("/s/echo/资产/1?a=1")), token)
    assert r.status == 200
    record = world.audit.records[-1]
    assert record.extra["path"] == "/s/echo/资产/1?a=1"
    claims = world.services.keys.verify_jwt("assertion", r.headers["x-govgate-assertion"])
    assert claims["htu"] == wire("/s/echo/资产/1")
    # percent-encoded UTF-8 routes as it always did
    r = await verify(world, front("/s/echo/%E8%B5%84%E4%BA%A7/1"), token)
    assert r.status == 200
    assert world.audit.records[-1].extra["upstream_path"] == "/%E8%B5%84%E4%BA%A7/1"


REFUSED: list[tuple[list[tuple[str, str]], str, str]] = [
    # (the front proxy's headers, the problem's detail, the audit record's path)
    (front("/s/echo/a\xff\xfe"), "path is not UTF-8", "/s/echo/a\\xff\\xfe"),
    (front(wire("/s/echo/x?q=档")), "query string is not ASCII (percent-encode it)",
     "/s/echo/x?q=档"),
    (front(wire("/s/回显/x")), "bad system code", "/s/回显/x"),
    ([*front("/x"), ("X-Govgate-System", wire("echö"))], "bad system or URI", "/x"),
    (front("/s/echo/x", wire("GÉT")), "the front proxy's method is not an HTTP method name",
     "/s/echo/x"),
    (front("/s/echo/x", "\xdf"), "the front proxy's method is not an HTTP method name",
     "/s/echo/x"),  # latin-1 ß, which upper-cases to "SS"
    ([*front("/s/echo/x"), ("X-HTTP-Method-Override", wire("gét"))],
     "a method-override header names another method", "/s/echo/x"),
    ([*front("/s/echo/x"), ("X-Forwarded-Host", wire("档案.example"))],
     "the forwarded host is not ASCII", "/s/echo/x"),
]


async def test_odd_bytes_are_refused_clearly_and_audited(world: World) -> None:
    token = world.token()
    for headers, detail, path in REFUSED:
        for credential in (token, None):  # refused before anybody is asked who calls
            r = await verify(world, headers, credential)
            assert r.status == 403, (headers, r.body)
            problem = json.loads(r.body)
            assert problem["type"].endswith("bad_path") and problem["status"] == 403
            assert problem["detail"].startswith(detail), (headers, problem)
            record = world.audit.records[-1]
            assert record.request_id == r.headers["x-request-id"]
            assert (record.event_type, record.outcome, record.status) == (
                "forward_auth", "deny", 403)
            assert record.extra["refused_as"] == 400 and record.extra["path"] == path
            assert "x-govgate-assertion" not in r.headers
    # credentials in bytes nobody issues: 401 as any bad credential
    for name, value in (("Authorization", wire("Bearer 档案")),
                        ("Authorization", wire("Bearer ey档.e30.x")),
                        ("Cookie", wire(f"{SESSION_COOKIE}=档案"))):
        r = await verify(world, [*front("/s/echo/x"), (name, value)])
        assert r.status == 401 and r.headers["www-authenticate"] == 'Bearer realm="govgate"'
        assert world.audit.records[-1].outcome == "deny"


async def test_a_session_with_odd_bytes_beside_it(world: World) -> None:
    world.services.org.add_user("wang.wu", "王五", "jgswj", ["staff"], "Very-long-pass-123",
                                must_change=False)
    session, _ = world.built.provider.store.create_session(
        "wang.wu", "active", amr="pwd", absolute_seconds=3600)
    cookie = f"{SESSION_COOKIE}={session}"
    # a delegation choice that is bytes, not a signed number: ignored, acts as itself
    chosen = f"{cookie}; {ACT_COOKIE}={wire('档')}"
    r = await verify(world, [*front("/s/echo/x"), ("Cookie", chosen)])
    assert r.status == 200 and r.headers["x-govgate-user"] == "wang.wu"
    assert "act" not in world.audit.records[-1].extra
    # an unsafe request whose Origin is bytes no browser sends: not the gateway's own
    r = await verify(world, [*front("/s/echo/x", "POST"), ("Cookie", cookie),
                             ("Origin", wire("http://档案.example"))])
    assert r.status == 403 and json.loads(r.body)["type"].endswith("access_denied")
    assert "session cookie" in (world.audit.records[-1].reason or "")
