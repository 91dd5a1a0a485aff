"""Plain identity headers for a system that cannot verify a JWT: through the real
proxy to a real upstream, the system receives exactly one of each header, the
gateway's, whatever the client sent in whatever spelling; a Chinese name arrives
as an RFC 8187 ext-value; the assertion goes or not as the system says."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from gateway.errors import StateFileError
from gateway.proxy.identity_headers import header_value
from tests.proxy.conftest import World

SPOOFS = [("X-Govgate-User", "admin"), ("x-govgate-user", "root"), ("X-GOVGATE-ROLES", "sysadmin"),
          ("X_Govgate_Department", "czt"), ("x-govgate-name", "Boss"),
          ("Remote-User", "admin"), ("REMOTE-USER", "admin"), ("Remote_User", "admin"),
          ("X-Govgate-Client", "finance-system")]


def declare(world: World, **fields: object) -> None:
    upstream = f"http://127.0.0.1:{world.upstream.port}"
    world.built.state_applier().apply({"systems": [{
        "code": "echo", "name": "回显系统", "department": "jgswj", "upstream": upstream,
        **fields}]})
    world.built.proxy.systems.invalidate()


def received(world: World) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in world.echo.seen[-1]["headers"]]


async def test_plain_headers_replace_every_spoofed_copy(world: World) -> None:
    declare(world, identity_headers="plain", remote_user=True)
    world.built.state_applier().apply({"users": [{
        "username": "zhang.san", "name": "张三", "department": "jgswj",
        "roles": ["staff", "data_steward"]}]})
    token = world.token(roles=["staff", "data_steward"])
    r = await world.request("GET", "/s/echo/api/x", token=token, headers=SPOOFS)
    assert r.status == 200
    got = received(world)
    names = [k for k, _ in got]
    for name in ("x-govgate-user", "x-govgate-department", "x-govgate-roles",
                 "x-govgate-name", "x-govgate-client", "remote-user"):
        assert names.count(name) == 1, (name, got)
    values = dict(got)
    assert values["x-govgate-user"] == "zhang.san" and values["remote-user"] == "zhang.san"
    assert values["x-govgate-department"] == "jgswj"
    assert values["x-govgate-roles"] == "data_steward,staff"
    assert values["x-govgate-client"] == "office-web"
    assert values["x-govgate-name"] == "UTF-8''%E5%BC%A0%E4%B8%89"
    assert unquote(values["x-govgate-name"].removeprefix("UTF-8''")) == "张三"
    assert "x-govgate-assertion" not in names  # plain only
    assert not any("_" in k for k in names)  # the underscore spellings were dropped


async def test_both_and_the_default(world: World) -> None:
    declare(world, identity_headers="both")
    await world.request("GET", "/s/echo/api/x", token=world.token(), headers=SPOOFS)
    names = [k for k, _ in received(world)]
    assert names.count("x-govgate-assertion") == 1 and names.count("x-govgate-user") == 1
    assert "remote-user" not in names  # not asked for
    declare(world)  # back to the default: the assertion only
    await world.request("GET", "/s/echo/api/x", token=world.token(), headers=SPOOFS)
    names = [k for k, _ in received(world)]
    assert names.count("x-govgate-assertion") == 1
    assert not [n for n in names if n.startswith("x-govgate-") and n != "x-govgate-assertion"]
    assert "remote-user" not in names


async def test_a_client_credentials_call_names_the_client(world: World) -> None:
    declare(world, identity_headers="plain", remote_user=True)
    token = world.token(sub="finance-system", client_id="finance-system", department="jgswj",
                        roles=[], gty="client_credentials")
    await world.request("GET", "/s/echo/api/x", token=token)
    values = dict(received(world))
    assert values["x-govgate-user"] == "client:finance-system"
    assert "remote-user" not in values  # no person to name


def test_bad_settings_are_refused(world: World) -> None:
    for fields in ({"identity_headers": "cookie"}, {"remote_user": "yes"}):
        with pytest.raises(StateFileError):
            declare(world, **fields)
    assert header_value("abc-1") == b"abc-1"
    assert header_value("a\tb") == b"UTF-8''a%09b"
