"""``assertion: per_caller`` × token exchange (RFC 8693): the user's own call and a
system's call for the user get different reused assertions (``act`` only on the
second), and each way the delegated token stops counting inside the reuse window
(the token revoked, the client's exchange setting withdrawn, the user disabled)
refuses the next call on the proxy and forward-auth, never serving the cached one."""

from __future__ import annotations

from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.exchange.conftest import SECRET, World, _client, claims_of, world  # noqa: F401
from tests.seams.conftest import upstream_of
from tests.tokens import access_token
from tests.wiring import apply_state


async def both(w: World, token: str) -> tuple[tuple[int, int], list[dict[str, object]]]:
    auth = {"Authorization": f"Bearer {token}"}
    r1 = await w.http.get("/s/echo/shared/x", headers=auth)
    r2 = await w.http.get("/auth/verify", headers={
        **auth, "X-Original-URI": "/s/echo/shared/x", "X-Original-Method": "GET"})
    got = []
    if r1.status_code == 200:
        got.append(w.seen.assertions[-1])
    if r2.status_code == 200:
        got.append(claims_of(r2.headers["x-govgate-assertion"]))
    return (r1.status_code, r2.status_code), got


async def _exchanged_calls_reuse_their_own_and_stop_at_once(world: World) -> None:  # noqa: F811
    apply_state(world.services, {"systems": [
        {"code": "echo", "name": "回声", "department": "nn-jgsw",
         "upstream": upstream_of(world.services, "echo"),
         "assertion": "per_caller"}]})
    own = world.user_token("zhao.min", "czt", roles=("staff", "data_steward"))
    statuses, mine = await both(world, own)
    assert statuses == (200, 200) and mine[0] == mine[1] and "act" not in mine[0]
    assert "request_id" not in mine[0]  # the per-caller one

    async def delegated() -> str:
        r = await world.exchange(world.user_token("zhao.min", "czt",
                                                  roles=("staff", "data_steward")),
                                 audience="echo")
        assert r.status_code == 200, r.text
        return str(r.json()["access_token"])

    token = await delegated()
    statuses, acted = await both(world, token)
    assert statuses == (200, 200) and acted[0] == acted[1]
    assert acted[0]["act"] == {"sub": "client:fin-portal"} and acted[0]["jti"] != mine[0]["jti"]

    # the delegated token revoked by its client: refused, the cached one not sent
    r = await world.http.post("/oauth2/revoke", data={"token": token},
                              auth=("fin-portal", SECRET))
    assert r.status_code == 200
    assert (await both(world, token)) == ((401, 401), [])
    # the client's exchange setting withdrawn
    token = await delegated()
    assert (await both(world, token))[0] == (200, 200)
    apply_state(world.services, {"clients": [_client("fin-portal", "czt", exchange=False)]})
    assert (await both(world, token)) == ((401, 401), [])
    apply_state(world.services, {"clients": [_client("fin-portal", "czt")]})
    # the user disabled: neither the system's call for them nor their own
    token = await delegated()
    assert (await both(world, token))[0] == (200, 200)
    world.services.org.disable_user("zhao.min")
    world.services.changed_here()
    assert (await both(world, token)) == ((401, 401), [])
    assert (await both(world, own)) == ((401, 401), [])


async def _an_exchanged_token_carries_no_break_glass_mark(world: World) -> None:  # noqa: F811
    """A break-glass is the person's: a token for a system acting for them (which the
    proxy never lets use it) does not say it has one."""
    def bearer(who: str, department: str, roles: tuple[str, ...]) -> dict[str, str]:
        return {"Authorization": "Bearer " + access_token(
            world.services, sub=who, department=department, roles=roles)}

    r = await world.http.post("/api/v1/break-glass", headers=bearer("zhao.min", "czt", (
        "staff", "data_steward")), json={"system": "vehicles", "reason": "机房故障，需紧急处理",
                                         "minutes": 30})
    assert r.status_code == 201, r.text
    bg_id = r.json()["break_glass"]["id"]
    for who in ("sec.a", "sec.b"):
        r = await world.http.post(f"/api/v1/break-glass/{bg_id}/approve",
                                  headers=bearer(who, "czt", ("secadmin",)))
        assert r.status_code == 200, r.text
    r = await world.exchange(world.user_token("zhao.min", "czt",
                                              roles=("staff", "data_steward")),
                             audience="vehicles")
    assert r.status_code == 200, r.text
    claims = claims_of(r.json()["access_token"])
    assert claims["act"] == {"sub": "client:fin-portal"} and "break_glass" not in claims


async def test_exchanged_tokens_on_a_per_caller_system(world: World) -> None:  # noqa: F811
    """One world for every case (a world costs more than the cases)."""
    await _an_exchanged_token_carries_no_break_glass_mark(world)
    await _exchanged_calls_reuse_their_own_and_stop_at_once(world)
