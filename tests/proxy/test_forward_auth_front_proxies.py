"""Forward-auth where the front proxy and the system behind it read a request their own
way (attack of 2026-12-05): a real nginx with ``auth_request`` (docs/nginx-forward-auth.conf)
in front of a real upstream, and the answers an operator's cache would keep."""

from __future__ import annotations

from policies import make_line
from tests.proxy.conftest import World, raw_request
from tests.proxy.test_forward_auth import nginx, verify_headers

__all__ = ["nginx"]  # the real nginx fixture, shared with test_forward_auth


async def test_a_segment_a_servlet_container_reads_as_empty_is_refused(
    world: World, nginx: int
) -> None:
    """Tomcat cuts a path parameter before routing and collapses the empty segment it
    leaves: ``/api/;x/rooms`` is ``/api/rooms`` to it, ``/api/rooms/;jsessionid=1`` is
    ``/api/rooms/``. govgate read them as other paths (below the route, decided by
    policy alone), so a catalogue route reached that way left raw through nginx. A
    segment that is only a path parameter, white space or a decoded ``?``/``#`` is
    refused, through nginx and through ``/s/``, like ``//``."""
    auth = [("Authorization", f"Bearer {world.token()}")]
    for target in ("/api/;x/rooms", "/api/rooms/;jsessionid=1", "/api/rooms/;",
                   "/api/%3Bx/rooms", "/api/rooms/%20", "/api/rooms/%3Fa=1", "/api/%23/rooms"):
        r = await raw_request(nginx, "GET", target, auth)
        assert r.status == 403, target
        record = world.audit.records[-1]
        assert record.event_type == "forward_auth" and record.outcome == "deny", target
        assert record.extra["refused_as"] == 400 and record.extra["path"] == target
        direct = await world.request("GET", "/s/echo" + target, token=world.token())
        assert direct.status == 400, target
    assert world.echo.seen == []
    # a path parameter on a named segment, and a trailing slash, still pass
    for target in ("/api/rooms;v=2", "/api/rooms/"):
        assert (await raw_request(nginx, "GET", target, auth)).status == 200, target
    assert [seen["raw_path"] for seen in world.echo.seen] == ["/api/rooms;v=2", "/api/rooms/"]


async def test_every_answer_says_no_store_even_when_the_audit_fails(world: World) -> None:
    """An operator's ``proxy_cache`` on the auth location honours ``Cache-Control``: the
    503 of a failed audit append said nothing, and ``proxy_cache_valid any`` kept it
    (and every caller's requests refused with it) after the audit came back."""
    token = world.token()
    answers = [await world.request("GET", "/auth/verify", token=token,
                                   headers=verify_headers("/s/echo/a")),
               await world.request("GET", "/auth/verify", headers=verify_headers("/s/echo/a"))]
    world.audit.fail = True
    answers.append(await world.request("GET", "/auth/verify", token=token,
                                       headers=verify_headers("/s/echo/a")))
    assert [a.status for a in answers] == [200, 401, 503]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.status


async def test_a_fragment_in_the_request_target_is_refused(world: World, nginx: int) -> None:
    """nginx passes ``$request_uri`` with a raw ``#`` in it, and the upstream stops the
    path there: ``/admin#x`` was decided as another path than the denied ``/admin``
    (the default rule allowed it) and the upstream served ``/admin``."""
    world.built.policies.add(make_line("role:staff", "jgswj", "/s/echo/admin", "GET",
                                       effect="deny"))
    auth = [("Authorization", f"Bearer {world.token()}")]
    for target in ("/admin", "/admin#x", "/admin#", "/admin/x#y"):
        r = await raw_request(nginx, "GET", target, auth)
        assert r.status == 403, target
        record = world.audit.records[-1]
        assert record.event_type == "forward_auth" and record.outcome == "deny", target
    assert "fragment" in (record.reason or "")
    assert world.echo.seen == []
    # an encoded "#" is a character of the name, passed on encoded
    assert (await raw_request(nginx, "GET", "/a%23b", auth)).status == 200
    assert world.echo.seen[-1]["raw_path"] == "/a%23b"
