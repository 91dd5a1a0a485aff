"""A deny line holds for every spelling an upstream reads as its path (attack of
2026-12-05, policy lines and path spellings): through ``/s/`` to a real lax upstream,
through forward-auth with nginx's headers, and in ``govgate policy test``.

The upstream here routes as IIS, Tomcat and old Spring do together: letter case and
compatibility forms ignored, a ``;`` path parameter and a decoded ``?`` cut, trailing
dots, spaces, ``+`` and slashes dropped, a ``.json`` suffix read as a format. Every
spelling below reaches its ``/admin`` handler; the deny line used to see only one.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import AsyncIterator
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.cli.main import cli
from gateway.proxy.path import parse
from gateway.services import Services
from policies import make_line
from tests.proxy.conftest import Echo, Served, World, served_world
from tests.proxy.test_forward_auth import verify_headers

# spellings of /admin that the lax upstream below reads as /admin (percent-encoded as sent)
ADMIN = ["/admin", "/ADMIN", "/Admin", "/admin/", "/admin.", "/ADMIN./", "/admin..",
         "/admin;jsessionid=1", "/admin%20", "/admin+", "/admin.json", "/admin%3Fx",
         "/admin.a.b", "/admin.-", "/Admin.JSON.x",
         "/%EF%BD%81dmin", "/adm%C4%B1n"]
# spellings below /ops, denied by a prefix line /s/echo/ops*
OPS = ["/OPS/x", "/Ops", "/OPS.", "/OPS;x/y", "/Ops./x", "/%EF%BC%AF%EF%BC%B0%EF%BC%B3/x"]


def lax_read(raw_path: str) -> str:
    """The path as the lax upstream routes it (the module docstring)."""
    text = unicodedata.normalize("NFKC", unquote(raw_path)).lower().replace("\u0131", "i")
    segments = [re.split(r"[;?#]", s, maxsplit=1)[0].rstrip(". +") for s in text.split("/")]
    segments = [s for s in segments if s]
    if segments:
        # Spring MVC's suffix pattern match (before 5.3): "/admin.*" is "/admin"
        segments[-1] = re.sub(r"(?<=[^.])\..*\Z", "", segments[-1])
    return "/" + "/".join(segments)


def lax_app(echo: Echo) -> Starlette:
    async def anything(request: Request) -> Response:
        raw = request.scope["raw_path"].decode("latin-1")
        echo.seen.append({"raw_path": raw})
        return JSONResponse({"handler": lax_read(raw)})

    return Starlette(routes=[Route("/{path:path}", anything)])


@contextlib.asynccontextmanager
async def lax_world(services: Services) -> AsyncIterator[World]:
    """The proxy world with the lax upstream, a real server, behind ``echo`` (the
    default: letter case ignored) and ``strict`` (``case_sensitive_paths``)."""
    async with served_world(services) as world, Served(lax_app(world.echo)) as upstream:
        url = f"http://127.0.0.1:{upstream.port}"
        world.built.state_applier().apply({"systems": [
            {"code": "echo", "name": "回显系统", "department": "jgswj", "upstream": url},
            {"code": "strict", "name": "区分大小写", "department": "jgswj", "upstream": url,
             "case_sensitive_paths": True}]})
        for system in ("echo", "strict"):
            world.built.policies.add(make_line("role:staff", "*", f"/s/{system}/admin",
                                               "GET", effect="deny"))
        world.built.policies.add(make_line("role:staff", "*", "/s/echo/ops*", "GET",
                                           effect="deny"))
        yield world


@pytest.fixture
async def world(base_services: Services) -> AsyncIterator[World]:
    async with lax_world(base_services) as made:
        yield made


def test_the_upstream_reads_every_spelling_as_the_denied_path() -> None:
    """The premise: each spelling is the denied handler to this upstream."""
    assert {lax_read(s) for s in ADMIN} == {"/admin"}
    assert {lax_read(s).split("/")[1] for s in OPS} == {"ops"}


async def test_a_deny_line_holds_for_every_spelling_through_the_proxy_and_the_cli(
    world: World, env: dict[str, str]
) -> None:
    """``zhang.san`` (staff of jgswj, which owns both systems: the default rule allows
    him) is denied ``/admin`` by an exact line and everything below ``/ops`` by a prefix
    line. Every spelling is refused before the upstream, audited with the line, and
    ``govgate policy test`` answers what the proxy answered."""
    token = world.token()
    runner = CliRunner(env=env)

    def cli_says(target: str) -> str:
        obj = parse(target.encode()).object  # the decoded path, as the proxy decides it
        result = runner.invoke(cli, ["policy", "test", "role:staff", "jgswj", obj, "GET"],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output.split("\t", 1)[0]

    for spelling in [*ADMIN, *OPS]:
        target = "/s/echo" + spelling
        r = await world.request("GET", target, token=token)
        assert r.status == 403, (target, r.body)
        record = world.audit.records[-1]
        assert record.outcome == "deny" and record.extra["line_id"] is not None, target
        assert (record.reason or "").startswith("deny by policy line"), target
        # and HEAD, which the upstream answers from the same GET handler
        r = await world.request("HEAD", target, token=token)
        assert r.status == 403, ("HEAD", target)
    assert world.echo.seen == []
    # exact lines stay exact, prefix lines prefixes: another name still passes
    for spelling in ("/administrator", "/admin/x", "/ADMINS", "/op"):
        r = await world.request("GET", "/s/echo" + spelling, token=token)
        assert r.status == 200 and r.json()["handler"] != "/admin", spelling
    # a system that tells letter case apart: the line holds for its own letters only
    for spelling, status in (("/ADMIN", 200), ("/admin/", 403), ("/admin.", 403),
                             ("/admin;x", 403), ("/Admin.json", 200)):
        r = await world.request("GET", "/s/strict" + spelling, token=token)
        assert r.status == status, spelling
    # the command line answers as the proxy did (a few of each kind: each run opens
    # the services anew)
    for target, answer in (("/s/echo/ADMIN", "deny"), ("/s/echo/admin.", "deny"),
                           ("/s/echo/admin;x", "deny"), ("/s/echo/%EF%BD%81dmin", "deny"),
                           ("/s/echo/OPS/x", "deny"), ("/s/echo/administrator", "allow"),
                           ("/s/strict/ADMIN", "allow"), ("/s/strict/admin/", "deny")):
        assert cli_says(target) == answer, target


async def test_forward_auth_denies_every_spelling_and_allow_lines_keep_their_letters(
    world: World
) -> None:
    """``/auth/verify`` as nginx's ``auth_request`` asks it (``X-Original-URI``, the
    whole ``/s/`` path, or the system's own path with ``X-Govgate-System``) refuses
    every spelling. Fail closed: a spelling that matches an allow line only when read
    loosely is not allowed by it, through ``/s/`` or forward-auth (the default rule
    decides: another department is refused)."""
    token = world.token()
    for spelling in [*ADMIN, *OPS]:
        for uri, system in (("/s/echo" + spelling, None), (spelling, "echo")):
            r = await world.request("GET", "/auth/verify", token=token,
                                    headers=verify_headers(uri, system=system))
            assert r.status == 403 and "x-govgate-assertion" not in r.headers, uri
            record = world.audit.records[-1]
            assert record.event_type == "forward_auth" and record.outcome == "deny", uri
            assert (record.reason or "").startswith("deny by policy line"), uri
    r = await world.request("GET", "/auth/verify", token=token,
                            headers=verify_headers("/Admin/", "HEAD", system="echo"))
    assert r.status == 403
    ok = await world.request("GET", "/auth/verify", token=token,
                             headers=verify_headers("/administrator", system="echo"))
    assert ok.status == 200
    strict = await world.request("GET", "/auth/verify", token=token,
                                 headers=verify_headers("/ADMIN", system="strict"))
    assert strict.status == 200
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/public", "GET"))
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/open/*", "GET"))
    li = world.token(sub="li.si", department="czt", roles=["data_steward"])
    assert (await world.request("GET", "/s/echo/public", token=li)).status == 200
    assert (await world.request("GET", "/s/echo/open/x", token=li)).status == 200
    for spelling in ("/PUBLIC", "/public/", "/public.", "/public;x", "/OPEN/x", "/open./x"):
        r = await world.request("GET", "/s/echo" + spelling, token=li)
        assert r.status == 403, spelling
        assert (world.audit.records[-1].reason or "").startswith("deny by default rule")
        r = await world.request("GET", "/auth/verify", token=li,
                                headers=verify_headers(spelling, system="echo"))
        assert r.status == 403, spelling
