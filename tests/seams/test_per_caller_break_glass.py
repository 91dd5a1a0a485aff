"""``assertion: per_caller`` × break-glass, on both paths (the proxy and forward-auth):
a call a break-glass covers is never served a reused assertion (it carries the mark,
signed for that request), a reused assertion never lacks a mark it should carry, and
once the break-glass ends the next call is refused."""

from __future__ import annotations

from tests.delegation.conftest import claims_of, cookies, header
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers
from tests.seams.conftest import break_glass, end_break_glass


async def via_proxy(world: World, who: str, path: str) -> tuple[int, dict[str, object]]:
    r = await world.request("GET", path, headers=[cookies(world, who)])
    if r.status != 200:
        return r.status, {}
    return 200, claims_of(header(world.echo.seen[-1], "x-govgate-assertion") or "")


async def via_verify(world: World, who: str, path: str) -> tuple[int, dict[str, object]]:
    r = await world.request("GET", "/auth/verify",
                            headers=[cookies(world, who), *verify_headers(path)])
    if r.status != 200:
        return r.status, {}
    return 200, claims_of(r.headers["x-govgate-assertion"])


async def test_break_glass_calls_are_never_reused_and_end_with_it(seam: World) -> None:
    world = seam
    for call in (via_proxy, via_verify):
        assert (await call(world, "wang.fang", "/s/vault/a"))[0] == 403
    # echo (per_caller) opened by her own rights: reused before the break-glass
    _, before = await call_twice(world, "wang.fang", "/s/echo/a")
    assert "break_glass" not in before
    vault = await break_glass(world, "wang.fang", "vault")
    echo = await break_glass(world, "wang.fang", "echo")
    for call in (via_proxy, via_verify):
        jtis = set()
        for path, bg_id in (("/s/vault/a", vault), ("/s/vault/b", vault),
                            ("/s/echo/a", echo), ("/s/echo/b", echo)):
            status, claims = await call(world, "wang.fang", path)
            assert status == 200, (call.__name__, path)
            # marked, signed for this request (bound to it), never the cached one
            assert claims["break_glass"]["id"] == bg_id, (call.__name__, path)  # type: ignore[index]
            assert str(claims["htu"]).endswith(path[-2:]) and claims["htm"] == "GET"
            assert "request_id" in claims and claims["jti"] not in jtis
            jtis.add(claims["jti"])
            assert world.audit.records[-1].extra["break_glass"] == bg_id
            assert "assertion_jti" not in world.audit.records[-1].extra
        assert before["jti"] not in jtis
    await end_break_glass(world, vault)
    await end_break_glass(world, echo)
    for call in (via_proxy, via_verify):
        status, _ = await call(world, "wang.fang", "/s/vault/a")
        assert status == 403, call.__name__
        assert "break_glass" not in world.audit.records[-1].extra
        # her own rights on echo again, reused and unmarked
        status, claims = await call(world, "wang.fang", "/s/echo/c")
        assert status == 200 and "break_glass" not in claims and "htu" not in claims


async def call_twice(world: World, who: str, path: str) -> tuple[int, dict[str, object]]:
    """Both paths twice: one reused per-caller assertion for all four calls."""
    seen = set()
    for call in (via_proxy, via_verify, via_proxy, via_verify):
        status, claims = await call(world, who, path)
        assert status == 200
        seen.add(claims["jti"])
    assert len(seen) == 1
    return status, claims
