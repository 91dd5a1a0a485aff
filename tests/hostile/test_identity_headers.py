"""Identity headers a client sends, in every spelling, through both server protocols, to
the real echo upstream and to forward-auth.

tests/proxy/test_identity_headers.py sends a list of spellings of the gateway's plain
identity headers; tests/proxy/test_proxy.py spoofed X-Forwarded-*, X-Govgate-*,
Remote-User and others; tests/proxy/test_spoof_headers.py the edge proxies' families;
tests/proxy/test_request_ambiguity.py folded and padded names on httptools. Here every
header the gateway sets, in every casing and with ``_`` for ``-``, each sent twice with
different values in both orders, on httptools and on h11; folded and padded names on
h11; and forward-auth's answer, whose identity headers nginx hands on."""

from __future__ import annotations

import pytest

from tests.proxy.conftest import World, exchange, raw_request, status_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: what the gateway sets towards the upstream, and the one value each must have
OURS = ["X-Govgate-Assertion", "X-Govgate-User", "X-Govgate-Department", "X-Govgate-Roles",
        "X-Govgate-Name", "X-Govgate-Client", "Remote-User", "X-Request-ID",
        "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"]


def spellings(name: str) -> list[str]:
    """``name`` in every casing a framework maps to the same header, and with ``_``."""
    mixed = "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(name))
    out = [name, name.lower(), name.upper(), mixed, name.replace("-", "_"),
           name.lower().replace("-", "_"), name.replace("-", "_", 1)]
    return list(dict.fromkeys(out))


@pytest.fixture(scope="module", autouse=True)
def both(proxy_world: World) -> None:
    """The echo system takes the assertion and the plain headers, Remote-User too."""
    proxy_world.built.state_applier().apply({"systems": [{
        "code": "echo", "name": "回显系统", "department": "jgswj",
        "upstream": f"http://127.0.0.1:{proxy_world.upstream.port}",
        "identity_headers": "both", "remote_user": True}]})
    proxy_world.built.proxy.systems.invalidate()


def received(world: World) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in world.echo.seen[-1]["headers"]]


async def test_every_spelling_twice_leaves_exactly_the_gateways_value(
        proxy_world: World, port: int) -> None:
    token = proxy_world.token()
    for first, second in (("admin", "root"), ("root", "admin")):
        spoofed = [(spelled, value) for name in OURS for spelled in spellings(name)
                   for value in (first, second)]
        for start in range(0, len(spoofed), 80):  # under the 100-field limit per request
            r = await raw_request(port, "GET", "/s/echo/api/x",
                                  [("Authorization", f"Bearer {token}"),
                                   *spoofed[start:start + 80]])
            assert r.status == 200, r.body
            got = received(proxy_world)
            names = [k for k, _ in got]
            assert not [n for n in names if "_" in n], names
            for name in OURS:
                assert names.count(name.lower()) == 1, (name, got)
            values = dict(got)
            assert values["x-govgate-user"] == values["remote-user"] == "zhang.san"
            assert values["x-govgate-department"] == "jgswj"
            assert values["x-forwarded-for"] == "127.0.0.1"
            assert values["x-request-id"] == r.headers["x-request-id"]
            assert not any(v in ("admin", "root") for v in values.values())
            claims = proxy_world.services.keys.verify_jwt(
                "assertion", values["x-govgate-assertion"])
            assert claims["username"] == "zhang.san"


async def test_folded_padded_and_odd_names_are_refused_on_both_protocols(
        proxy_world: World, port: int) -> None:
    before = len(proxy_world.echo.seen)
    token = proxy_world.token()
    for headers in ([("X-Other", "1\r\n X-Govgate-User: admin")],
                    [("X-Other", "1\r\n\tRemote-User: admin")],
                    [("X-Govgate-User ", "admin")], [("Remote-User\t", "admin")],
                    [("X-Govgate-User\x0b", "admin")], [("X Govgate User", "admin")]):
        r = await raw_request(port, "GET", "/s/echo/api/x",
                              [("Authorization", f"Bearer {token}"), *headers])
        assert r.status == 400, (headers, r.status)
    assert len(proxy_world.echo.seen) == before


async def test_forward_auth_answers_with_its_own_identity_headers_only(
        proxy_world: World, port: int) -> None:
    """nginx's ``auth_request_set`` copies the identity from forward-auth's answer: the
    headers a client sent to ``/auth/verify`` never appear in it."""
    token = proxy_world.token()
    spoofed = [(spelled, "admin") for name in ("X-Govgate-User", "X-Govgate-Department",
                                               "X-Govgate-Roles", "X-Govgate-Assertion",
                                               "X-Govgate-Subject")
               for spelled in spellings(name)]
    head = "\r\n".join([
        "GET /auth/verify HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
        f"Authorization: Bearer {token}", "X-Original-URI: /s/echo/api/x",
        "X-Original-Method: GET", *(f"{k}: {v}" for k, v in spoofed)]) + "\r\n\r\n"
    answer = await exchange(port, head.encode())
    assert status_of(answer) == 200, answer[:300]
    fields = [line.split(b":", 1) for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]]
    names = [k.strip().lower() for k, _ in fields]
    for name in (b"x-govgate-user", b"x-govgate-department", b"x-govgate-assertion"):
        assert names.count(name) == 1, (name, names)
    values = {k.strip().lower(): v.strip() for k, v in fields}
    assert values[b"x-govgate-user"] == b"zhang.san"
    assert values[b"x-govgate-department"] == b"jgswj"
    assert b"admin" not in answer
