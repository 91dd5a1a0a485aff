"""委托 and break-glass × forward-auth behind the real nginx of
docs/nginx-forward-auth.conf: the headers the new features added (the acting user,
the break-glass id, and the subject and client forward-auth answers with) reach the
system from govgate only: a client's own copies are dropped by nginx."""

from __future__ import annotations

import pytest

from tests.proxy.conftest import World, raw_request
from tests.proxy.test_forward_auth import nginx  # noqa: F401 (fixture)

SPOOFED = [("X-Govgate-Acting-User", "li.ming"), ("X-Govgate-Break-Glass", "bg_0123456789abcdef"),
           ("X-Govgate-Subject", "li.ming"), ("X-Govgate-Client", "office-web"),
           ("X-Govgate-Department", "czt"), ("X-Govgate-Roles", "sysadmin")]


@pytest.fixture
def world(sockets: World) -> World:
    """The delegation world on sockets, as the nginx fixture wants it."""
    return sockets


async def test_nginx_drops_client_copies_of_the_new_identity_headers(
        world: World, nginx: int) -> None:  # noqa: F811
    token = world.token(sub="wang.fang", department="jgswj", roles=["staff"])
    r = await raw_request(nginx, "GET", "/approve/1",
                          [*SPOOFED, ("Authorization", f"Bearer {token}")])
    assert r.status == 200, r.body
    names = [k.lower() for k, _ in world.echo.seen[-1]["headers"]]
    for name, _ in SPOOFED:
        assert name.lower() not in names, name
    assert names.count("x-govgate-assertion") == 1
