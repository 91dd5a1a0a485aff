"""委托 × break-glass: a break-glass is one person's (docs/break-glass.md, "It never
widens ... another person"). B acting for A is another person: A's break-glass must
neither open a system for B nor mark B's calls as an emergency."""

from __future__ import annotations

from tests.delegation.conftest import approved, claims_of, cookies, header
from tests.proxy.conftest import World
from tests.seams.conftest import break_glass


async def _a_delegate_never_uses_the_delegators_break_glass(seam: World) -> None:
    world = seam
    bg_id = await break_glass(world, "li.ming", "vault")
    # A herself: opened by her break-glass, and marked
    r = await world.request("GET", "/s/vault/files", headers=[cookies(world, "li.ming")])
    assert r.status == 200, r.body
    assert claims_of(header(world.echo.seen[-1], "x-govgate-assertion") or ""
                     )["break_glass"]["id"] == bg_id
    # B acting for A through a lent role (no line of it opens vault): refused, not
    # admitted by A's emergency access
    number = await approved(world, systems=[], roles=["data_steward"])
    sent = len(world.echo.seen)
    r = await world.request("GET", "/s/vault/files",
                            headers=[cookies(world, "wang.fang", acting=number)])
    assert r.status == 403, r.body
    assert len(world.echo.seen) == sent
    record = world.audit.records[-1]
    assert record.outcome == "deny" and record.extra["act"] == {"sub": "wang.fang"}
    assert "break_glass" not in record.extra
    # B's own break-glass opens vault to B, never to B acting for A (no fallback)
    own = await break_glass(world, "wang.fang", "vault")
    r = await world.request("GET", "/s/vault/files",
                            headers=[cookies(world, "wang.fang", acting=number)])
    assert r.status == 403 and "break_glass" not in world.audit.records[-1].extra
    r = await world.request("GET", "/s/vault/files", headers=[cookies(world, "wang.fang")])
    assert r.status == 200
    claims = claims_of(header(world.echo.seen[-1], "x-govgate-assertion") or "")
    assert claims["sub"] == "wang.fang" and claims["break_glass"]["id"] == own


async def _a_delegated_system_call_carries_no_break_glass_mark(seam: World) -> None:
    world = seam
    await break_glass(world, "li.ming", "echo")
    number = await approved(world)  # names echo
    for _ in range(2):  # echo is per_caller: the reused assertion too
        r = await world.request("GET", "/s/echo/approve/1",
                                headers=[cookies(world, "wang.fang", acting=number)])
        assert r.status == 200, r.body
        seen = world.echo.seen[-1]
        claims = claims_of(header(seen, "x-govgate-assertion") or "")
        assert claims["act"] == {"sub": "wang.fang"} and "break_glass" not in claims
        assert header(seen, "x-govgate-break-glass") is None
        assert "break_glass" not in world.audit.records[-1].extra


async def test_a_delegate_never_has_the_delegators_break_glass(seam: World) -> None:
    """One world for every case (a world costs more than the cases)."""
    await _a_delegated_system_call_carries_no_break_glass_mark(seam)
    await _a_delegate_never_uses_the_delegators_break_glass(seam)
