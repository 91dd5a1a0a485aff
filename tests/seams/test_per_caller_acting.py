"""``assertion: per_caller`` × 委托, on the proxy and forward-auth: A herself, B
himself and B acting for A each get their own reused assertion (``act`` only on B's
for A); once the delegation is revoked inside the reuse window, B's next call for A is
refused on both paths, never served the assertion still cached."""

from __future__ import annotations

import json
from datetime import datetime

from tests.delegation.conftest import api, approved, claims_of, cookies, header
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers


async def both(world: World, cookie: tuple[str, str], path: str
               ) -> tuple[tuple[int, int], list[dict[str, object]]]:
    """The statuses of the proxy's and forward-auth's answers, and the assertions."""
    got = []
    r1 = await world.request("GET", path, headers=[cookie])
    if r1.status == 200:
        got.append(claims_of(header(world.echo.seen[-1], "x-govgate-assertion") or ""))
    r2 = await world.request("GET", "/auth/verify", headers=[cookie, *verify_headers(path)])
    if r2.status == 200:
        got.append(claims_of(r2.headers["x-govgate-assertion"]))
    return (r1.status, r2.status), got


async def _each_caller_its_own_and_revocation_refuses_at_once(seam: World) -> None:
    world = seam
    number = await approved(world)  # li.ming → wang.fang, names echo (per_caller)
    acting = cookies(world, "wang.fang", acting=number)
    jti: dict[str, object] = {}
    for who, cookie in (("a", cookies(world, "li.ming")), ("b", cookies(world, "wang.fang")),
                        ("b_for_a", acting)):
        statuses, claims = await both(world, cookie, "/s/echo/x")
        assert statuses == (200, 200), who
        assert claims[0] == claims[1], who  # the proxy and forward-auth: the same one
        jti[who] = claims[0]["jti"]
        assert claims[0]["sub"] == ("wang.fang" if who == "b" else "li.ming")
        if who == "b_for_a":
            assert claims[0]["act"] == {"sub": "wang.fang"}
            assert claims[0]["delegation"] == number
        else:
            assert "act" not in claims[0] and "delegation" not in claims[0]
    assert len(set(jti.values())) == 3
    # still within the window: the same assertion again
    assert (await both(world, acting, "/s/echo/y"))[1][0]["jti"] == jti["b_for_a"]

    r = await api(world, "li.ming", "POST", f"/{number}/revoke")
    assert r.status == 200, r.body
    sent = len(world.echo.seen)
    statuses, claims = await both(world, acting, "/s/echo/y")
    assert statuses == (403, 403) and claims == []
    assert len(world.echo.seen) == sent
    record = world.audit.records[-1]
    assert record.event_type == "forward_auth" and record.outcome == "deny"
    assert "revoked" in (record.reason or "") and "assertion_jti" not in record.extra
    # A's own assertion is untouched by it
    assert (await both(world, cookies(world, "li.ming"), "/s/echo/z"))[1][0]["jti"] == jti["a"]


async def _a_reused_assertion_for_a_never_outlives_the_delegation(seam: World) -> None:
    world = seam
    number = await approved(world, days=20 / 86400)  # ends in 20 s, inside the window
    statuses, claims = await both(world, cookies(world, "wang.fang", acting=number),
                                  "/s/echo/x")
    assert statuses == (200, 200) and claims[0]["delegation"] == number
    row = await api(world, "li.ming", "GET", "")
    ends = next(d["ends_at"] for d in json.loads(row.body)["delegations"]
                if d["id"] == number)
    assert claims[0]["exp"] <= datetime.fromisoformat(ends).timestamp()
    assert int(claims[0]["exp"]) - int(claims[0]["iat"]) < 30  # type: ignore[call-overload]


async def test_delegation_on_a_per_caller_system(seam: World) -> None:
    """One world for every case (a world costs more than the cases)."""
    await _each_caller_its_own_and_revocation_refuses_at_once(seam)
    await _a_reused_assertion_for_a_never_outlives_the_delegation(seam)
    await _a_lent_role_taken_from_a_refuses_in_the_window(seam)


async def _a_lent_role_taken_from_a_refuses_in_the_window(world: World) -> None:
    number = await approved(world, systems=[], roles=["data_steward"])
    acting = cookies(world, "wang.fang", acting=number)
    statuses, claims = await both(world, acting, "/s/ledger/x")
    assert statuses == (200, 200) and claims[0] == claims[1]
    assert claims[0]["roles"] == ["data_steward"] and "request_id" not in claims[0]
    world.services.org.set_roles("li.ming", ["staff"])
    world.services.changed_here()
    assert await both(world, acting, "/s/ledger/x") == ((403, 403), [])
    assert "still holds" in (world.audit.records[-1].reason or "")
