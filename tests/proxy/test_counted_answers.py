"""What the cheaper hot paths must still say: forward-auth's answer fields exactly, its
counter per decision (its label children are resolved once per proxy), the proxy's
counters per system and status, and the request's own id in both directions."""

from __future__ import annotations

import re

import pytest

from gateway.proxy.forward_auth import _URI, _one, scan
from gateway.proxy.path import BadPath
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers


def counted(world: World, metric: str, **labels: str) -> float:
    text = world.built.metrics.render().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        found = re.match(rf"^{metric}\{{(.*)\}} (\S+)$", line)
        if found and ",".join(sorted(found.group(1).split(","))) == want:
            return float(found.group(2))
    return 0.0


async def test_forward_auth_and_proxy_counted_with_the_same_fields(world: World) -> None:
    """One world for both (its set-up is most of the time)."""
    before = {d: counted(world, "govgate_forward_auth_total", decision=d)
              for d in ("allow", "deny", "unauthenticated", "audit_failed")}
    r = await world.request("GET", "/auth/verify", token=world.token(),
                            headers=verify_headers("/s/echo/api/x?y=1"))
    assert r.status == 200
    fields = dict(r.headers)
    assert fields["x-govgate-user"] == "zhang.san" == fields["x-govgate-subject"]
    assert fields["x-govgate-department"] == "jgswj"
    assert fields["x-govgate-roles"] == "staff" and fields["x-govgate-client"] == "office-web"
    assert fields["cache-control"] == "no-store" and fields["content-length"] == "0"
    assert fields["x-request-id"] == world.audit.records[-1].request_id
    assert "x-govgate-acting-user" not in fields
    r = await world.request("GET", "/auth/verify", headers=verify_headers("/s/echo/x"))
    assert r.status == 401 and r.headers["www-authenticate"] == 'Bearer realm="govgate"'
    assert r.headers["content-type"] == "application/problem+json"
    r = await world.request("GET", "/auth/verify", token=world.token(),
                            headers=[*verify_headers("/s/echo/x"),
                                     ("X-Forwarded-Uri", "/s/echo/other")])
    assert r.status == 403  # two request lines: ambiguous, refused and audited
    record = world.audit.records[-1]
    assert record.reason == "the front proxy's request line is ambiguous"
    assert record.extra["refused_as"] == 400
    world.audit.fail = True
    r = await world.request("GET", "/auth/verify", token=world.token(),
                            headers=verify_headers("/s/echo/x"))
    assert r.status == 503 and "x-request-id" in r.headers
    assert not any(name.startswith("x-govgate-") for name in r.headers)
    world.audit.fail = False
    after = {d: counted(world, "govgate_forward_auth_total", decision=d) for d in before}
    assert {d: after[d] - before[d] for d in before} == {
        "allow": 1, "deny": 1, "unauthenticated": 1, "audit_failed": 1}
    echo_ok = counted(world, "govgate_proxy_requests_total", system="echo", status="200",
                      decision="allow")
    down = counted(world, "govgate_proxy_requests_total", system="down", status="502",
                   decision="allow")
    for _ in range(2):
        r = await world.request("GET", "/s/echo/api/x", token=world.token())
        assert r.status == 200
        sent = world.echo.seen[-1]["headers"]
        upstream_id = [v for k, v in sent if k.lower() == "x-request-id"]
        assert upstream_id == [r.headers["x-request-id"]]
        assert world.audit.records[-1].req_hash == (
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    r = await world.request("GET", "/s/down/api/x", token=world.token())
    assert r.status == 502
    assert counted(world, "govgate_proxy_requests_total", system="echo", status="200",
                   decision="allow") == echo_ok + 2
    assert counted(world, "govgate_proxy_requests_total", system="down", status="502",
                   decision="allow") == down + 1


def test_scan_reads_each_front_proxy_field_once_and_flags_two_values() -> None:
    sent, front = scan([(b"Host", b"gw"), (b"x-original-method", b"get"),
                        (b"X-Forwarded-Method", b"GET"), (b"x-original-uri", b"/a"),
                        (b"host", b"second")])
    assert sent == {"host": "gw", "x-original-method": "get",
                    "x-forwarded-method": "GET", "x-original-uri": "/a"}
    assert front[:2] == ["/a", "GET"]  # one method in two spellings is one method
    _, front = scan([(b"x-original-uri", b"/a"), (b"x-forwarded-uri", b"/b")])
    with pytest.raises(BadPath):
        _one(front, _URI)
