"""A delegated token through the proxy to real department systems: allowed only when
both the user and the acting system are; the catalogue releases the items granted to
both; the assertion and the audit record name both.

Two tests (a world costs 2 s on PostgreSQL), each a sequence of named steps."""

from __future__ import annotations

from typing import Any

from tests.exchange.conftest import ISSUER, World, claims_of
from tests.tokens import access_token
from tests.wiring import apply_state

BOTH = ["plate_number", "driver_name"]  # nn-jgsw's grant ∩ czt's grant of JG-0001


async def test_catalogue_releases_only_what_both_are_granted(world: World) -> None:
    token = await world.delegated("wang.wu", "nn-jgsw")  # nn-jgsw user, czt system
    r = await world.get("/s/vehicles/api/vehicles", token)
    assert r.status_code == 200, r.text
    rows = r.json()["items"]
    assert rows and all(sorted(row) == sorted(BOTH) for row in rows)
    assertion = world.seen.assertions[-1]
    assert (assertion["sub"], assertion["department"], assertion["client_id"]) == (
        "wang.wu", "nn-jgsw", "fin-portal")
    assert assertion["act"] == {"sub": "client:fin-portal"}
    assert assertion["aud"] == "vehicles"
    rec = world.records("proxy_request")[-1]
    assert (rec["outcome"], rec["actor_user"], rec["actor_client"]) == (
        "allow", "wang.wu", "fin-portal")
    assert rec["department"] == "nn-jgsw"
    assert rec["extra"]["act"] == {"sub": "client:fin-portal"}
    assert rec["extra"]["acting_department"] == "czt"
    assert sorted(rec["items"]) == sorted(BOTH)
    assert rec["resource"] == "JG-0001"
    assert len(rec["extra"]["grants"]) == 2  # the user's department's and the system's
    await _the_user_lacking_a_grant_is_refused(world)
    await _the_system_lacking_a_grant_is_refused(world)


async def _the_user_lacking_a_grant_is_refused(world: World) -> None:
    token = await world.delegated("chen.qi", "jgj")  # jgj holds no grant; czt does
    before = len(world.seen.assertions)
    r = await world.get("/s/vehicles/api/vehicles", token)
    assert (r.status_code, r.json()["type"]) == (403, "urn:govgate:error:access_denied")
    assert len(world.seen.assertions) == before  # never reached the system
    rec = world.records("proxy_request")[-1]
    assert (rec["outcome"], rec["actor_user"], rec["actor_client"]) == (
        "deny", "chen.qi", "fin-portal")
    assert rec["reason"].startswith("user chen.qi: ")
    assert "no grant for department jgj" in rec["reason"]
    assert "acting client" not in rec["reason"]


async def _the_system_lacking_a_grant_is_refused(world: World) -> None:
    # nn-jgsw's user holds a grant; the acting system's department jgj holds none
    token = await world.delegated("wang.wu", "nn-jgsw", client="jgj-portal")
    r = await world.get("/s/vehicles/api/vehicles", token)
    assert r.status_code == 403
    rec = world.records("proxy_request")[-1]
    assert (rec["actor_user"], rec["actor_client"]) == ("wang.wu", "jgj-portal")
    assert rec["reason"].startswith("acting client jgj-portal: ")
    assert "no grant for department jgj" in rec["reason"]


async def test_policy_for_both_then_audience_then_setting_withdrawn(world: World) -> None:
    token = await world.delegated("zhao.min", "czt", audience="echo")
    assert (await world.get("/s/echo/shared/x", token)).status_code == 200
    assert world.seen.assertions[-1]["act"] == {"sub": "client:fin-portal"}
    # the system may, the user may not: the system's line does not speak for the user
    assert (await world.get("/s/echo/system/x", token)).status_code == 403
    assert world.records("proxy_request")[-1]["reason"].startswith("user zhao.min: ")
    # the user may, the system may not
    assert (await world.get("/s/echo/mine/x", token)).status_code == 403
    assert world.records("proxy_request")[-1]["reason"].startswith(
        "acting client fin-portal: ")
    await _forward_auth_names_both(world, token)
    await _a_chained_or_mismatched_act_is_refused(world)
    await _a_token_for_another_system_is_refused(world)
    await _the_delegation_ends_with_the_systems_setting(world)


async def _a_chained_or_mismatched_act_is_refused(world: World) -> None:
    """Tokens the gateway never issues, signed with its key: the proxy refuses a second
    level of ``act`` and an ``act`` that is not the token's own client."""
    for act in ({"sub": "client:fin-portal", "act": {"sub": "client:nn-portal"}},
                {"sub": "client:nn-portal"}):
        forged = access_token(world.services, sub="zhao.min", department="czt",
                              roles=("staff", "data_steward"), client_id="fin-portal",
                              scope="proxy:echo", aud=f"{ISSUER}/s/echo", act=act)
        assert (await world.get("/s/echo/shared/x", forged)).status_code == 401
        assert world.records("proxy_request")[-1]["reason"] == (
            "act claim is not the token's own client")


async def _forward_auth_names_both(world: World, token: str) -> None:
    def verify(uri: str) -> Any:
        return world.http.get("/auth/verify", headers={
            "X-Original-URI": uri, "X-Original-Method": "GET",
            "Authorization": f"Bearer {token}"})

    r = await verify("/s/echo/shared/x")
    assert r.status_code == 200, r.text
    assert (r.headers["x-govgate-user"], r.headers["x-govgate-client"]) == (
        "zhao.min", "fin-portal")
    assert claims_of(r.headers["x-govgate-assertion"])["act"] == {"sub": "client:fin-portal"}
    assert (await verify("/s/echo/mine/x")).status_code == 403
    rec = world.records("forward_auth")[-1]
    assert rec["reason"].startswith("acting client fin-portal: ")
    assert rec["extra"]["act"] == {"sub": "client:fin-portal"}


async def _a_token_for_another_system_is_refused(world: World) -> None:
    token = await world.delegated("zhao.min", "czt", audience="vehicles")
    r = await world.get("/s/echo/shared/x", token)
    assert (r.status_code, r.json()["type"]) == (403, "urn:govgate:error:wrong_audience")
    rec = world.records("proxy_request")[-1]
    assert rec["outcome"] == "deny"
    assert f"not {ISSUER}/s/echo" in rec["reason"]
    # and nowhere but the proxy: the APIs do not take a delegated token
    assert (await world.get("/api/v1/account", token)).status_code == 401


async def _the_delegation_ends_with_the_systems_setting(world: World) -> None:
    token = await world.delegated("zhao.min", "czt", audience="echo")
    assert (await world.get("/s/echo/shared/x", token)).status_code == 200
    apply_state(world.services, {"clients": [{
        "client_id": "fin-portal", "name": "fin-portal", "department": "czt",
        "grant_types": ["client_credentials"], "scope": "proxy",
        "token_endpoint_auth_method": "client_secret_basic"}]})
    r = await world.get("/s/echo/shared/x", token)
    assert r.status_code == 401
    assert world.records("proxy_request")[-1]["reason"] == (
        "acting client no longer allowed to exchange tokens")

