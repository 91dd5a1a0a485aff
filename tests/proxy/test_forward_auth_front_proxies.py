"""Forward-auth where the front proxy and the system behind it read a request their own
way (attack of 2026-12-05): a real nginx with ``auth_request`` (docs/nginx-forward-auth.conf)
in front of a real upstream, and the answers an operator's cache would keep."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import make_line
from tests.dpop_proofs import Holder
from tests.proxy import test_forward_auth
from tests.proxy.conftest import World, raw_request
from tests.proxy.test_forward_auth import nginx, verify_headers

__all__ = ["nginx"]  # the real nginx fixture, shared with test_forward_auth

# an operator's cache on the auth location, keyed by the URI alone (not the caller)
CACHE_ZONE = "    proxy_cache_path {tmp}/auth_cache keys_zone=auth:1m;\n"
CACHE_AUTH = ("proxy_pass http://govgate/auth/verify;\n"
              "            proxy_cache auth; proxy_cache_key $request_uri;"
              " proxy_cache_valid any 10m;")


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
        assert record.extra["refused_as"] == 400
        # a session id's value is masked in the record (gateway.proxy.target_redaction)
        assert record.extra["path"] == target.replace("jsessionid=1", "jsessionid=[redacted]")
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


@pytest.fixture
def _auth_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = test_forward_auth.nginx_conf

    def cached(tmp: Path, *ports: int) -> str:
        conf = plain(tmp, *ports)
        assert "proxy_pass http://govgate/auth/verify;" in conf
        conf = conf.replace("proxy_pass http://govgate/auth/verify;", CACHE_AUTH)
        return conf.replace("    upstream govgate {", CACHE_ZONE.format(tmp=tmp)
                            + "    upstream govgate {", 1)

    monkeypatch.setattr(test_forward_auth, "nginx_conf", cached)


@pytest.fixture
async def cached_nginx(_auth_cache: None, nginx: int) -> int:
    return nginx


async def test_a_cache_on_the_auth_location_serves_no_one_elses_answer(
    world: World, cached_nginx: int
) -> None:
    """nginx's ``proxy_cache`` honours the answer's ``Cache-Control: no-store``: with a
    cache keyed by the URI alone, every request is still checked (and audited) as its
    own caller's, and 401 keeps its ``WWW-Authenticate`` through nginx."""
    zhang = [("Authorization", f"Bearer {world.token()}")]
    li = [("Authorization", f"Bearer {world.token(sub='li.si', department='czt')}")]
    assert (await raw_request(cached_nginx, "GET", "/api/x", zhang)).status == 200
    anonymous = await raw_request(cached_nginx, "GET", "/api/x", [])
    assert anonymous.status == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert (await raw_request(cached_nginx, "GET", "/api/x", li)).status == 403
    assert (await raw_request(cached_nginx, "GET", "/api/x", zhang)).status == 200
    checks = [r for r in world.audit.records if r.event_type == "forward_auth"]
    assert [(r.actor_user, r.outcome) for r in checks] == [
        ("zhang.san", "allow"), (None, "deny"), ("li.si", "deny"), ("zhang.san", "allow")]
    first, second = (dict(seen["headers"]) for seen in world.echo.seen)
    assert first["x-request-id"] != second["x-request-id"]


async def test_a_browser_refused_behind_a_proxy_that_hands_the_answer_on(
        world: World) -> None:
    """Caddy and Traefik hand forward-auth's non-2xx answer to the client as it is (the
    real Caddy: tests/proxy/test_forward_auth_caddy.py); Traefik, not installable here,
    sends the request as its ``forwardAuth`` does (``X-Forwarded-Uri``/``-Method``/
    ``-Host``, the client's own fields beside them). A browser navigating gets the
    sign-in (an absolute address: Traefik resolves a relative ``Location`` against the
    auth address) or the refusal page; a program, and anything behind nginx
    (``X-Original-URI``: nginx would turn a 302 into its 500), the problem JSON."""
    host = world.services.settings.issuer.split("://", 1)[1].rstrip("/")
    traefik = [("X-Forwarded-Uri", "/s/echo/api/x?y=1"), ("X-Forwarded-Method", "GET"),
               ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", host)]
    browser = [("Accept", "text/html,*/*;q=0.8"), ("Sec-Fetch-Mode", "navigate"),
               ("Accept-Language", "en")]
    r = await world.request("GET", "/auth/verify", headers=[*traefik, *browser])
    assert r.status == 302 and r.body == b""
    # the gateway's own host: back to the address after the sign-in
    assert r.headers["location"] == (world.services.settings.issuer.rstrip("/")
                                     + "/portal/login?next=%2Fs%2Fecho%2Fapi%2Fx%3Fy%3D1")
    program = await world.request("GET", "/auth/verify", headers=traefik)
    assert program.status == 401 and program.headers["content-type"] == \
        "application/problem+json"
    behind_nginx = await world.request("GET", "/auth/verify",
                                       headers=[*verify_headers("/s/echo/api/x"), *browser])
    assert behind_nginx.status == 401 and b"urn:govgate:error:unauthorized" in behind_nginx.body
    li = world.token(sub="li.si", department="czt", roles=["data_steward"])
    refused = await world.request("GET", "/auth/verify", token=li,
                                  headers=[*traefik, *browser])
    assert refused.status == 403 and refused.headers["content-type"].startswith("text/html")
    assert b"Access denied" in refused.body and refused.headers["x-refusal-code"] == \
        "access_denied"
    assert [r.outcome for r in world.audit.records[-4:]] == ["deny"] * 4
    # a program with a credential is no browser, whatever its Accept says (Java's
    # HttpURLConnection sends text/html by default and follows a 302 to a 200 sign-in
    # page): a DPoP client refused keeps its 401 and the DPoP challenge, a bearer
    # client its 401 with the Bearer one
    holder = Holder()
    bound = world.token(cnf={"jkt": holder.jkt})
    java = [("Accept", "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2")]
    stale = holder.proof("GET", "http://elsewhere.example/s/echo/api/x", token=bound)
    r = await world.request("GET", "/auth/verify", headers=[
        *traefik, *java, ("Authorization", f"DPoP {bound}"), ("DPoP", stale)])
    assert r.status == 401 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith('DPoP realm="govgate"')
    expired = world.token(exp=1)
    r = await world.request("GET", "/auth/verify", token=expired, headers=[*traefik, *java])
    assert r.status == 401 and r.headers["www-authenticate"].startswith('Bearer realm=')
