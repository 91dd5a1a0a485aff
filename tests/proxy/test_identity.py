"""Revocation, the portal session cookie, and a policy change made by another process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from tests.proxy.conftest import World


async def _until(predicate, within: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not await predicate():
        assert time.monotonic() - start < within, f"not within {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def test_revoked_token_is_refused_within_one_second(world: World) -> None:


    token = world.token(jti="revoke-me")
    assert (await world.request("GET", "/s/echo/api/x", token=token)).status == 200
    world.built.provider.store.deny_jti("revoke-me", 600)

    async def refused() -> bool:
        return (await world.request("GET", "/s/echo/api/x", token=token)).status == 401

    await _until(refused, 1.0)
    assert "revoked" in (world.audit.records[-1].reason or "")


async def test_session_cookie_browser_user(world: World) -> None:

    from gateway.idp.oauth2.provider import SESSION_COOKIE

    world.services.org.add_user("zhang.san", "张三", "jgswj", ["staff"], "Very-long-pass-123",
                                must_change=False)
    store = world.built.provider.store
    cookie, row = store.create_session("zhang.san", "active", amr="pwd", absolute_seconds=3600)
    r = await world.request("GET", "/s/echo/", headers=[
        ("Cookie", f"{SESSION_COOKIE}={cookie}; lang=zh")])
    assert r.status == 200, r.body
    got = dict((k.lower(), v) for k, v in r.json()["headers"])
    assert got["cookie"] == "lang=zh"  # the session cookie stays at the gateway
    claims = world.services.keys.verify_jwt("assertion", got["x-govgate-assertion"])
    assert claims["via"] == "session" and claims["username"] == "zhang.san"
    store.revoke_session(row.sid, ttl_seconds=3600)
    r = await world.request("GET", "/s/echo/", headers=[("Cookie", f"{SESSION_COOKIE}={cookie}")])
    assert r.status == 401


async def test_policy_change_by_another_process_is_enforced_within_one_second(
    world: World, env: dict[str, str]
) -> None:
    steward = world.token(sub="li.si", department="czt", roles=["data_steward"])
    assert (await world.request("GET", "/s/echo/api/x", token=steward)).status == 403
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-c", "from gateway.cli.main import main; main()", "policy", "add",
         "role:data_steward", "czt", "/s/echo/api/*", "GET"],
        env=env, cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    added = time.monotonic()

    async def allowed() -> bool:
        return (await world.request("GET", "/s/echo/api/x", token=steward)).status == 200

    await _until(allowed, 1.0)
    assert time.monotonic() - added < 1.0
    assert world.audit.records[-1].reason.startswith("allow by policy line")


def test_launcher_lists_what_policy_allows(world: World) -> None:
    from gateway.idp.authenticator import Principal
    from gateway.web.portal.launcher import launcher_systems
    from policies import make_line

    def opens(principal: Principal) -> list[dict[str, str]]:
        return launcher_systems(world.services.engine, world.built.policies, principal)

    def who(dept: str, roles: frozenset[str]) -> Principal:
        return Principal("li.si", "li.si", dept, "gx", roles, None, frozenset(), None, None,
                         "session")

    assert [s["code"] for s in opens(who("jgswj", frozenset()))] == [
        "down", "echo"]
    steward = who("czt", frozenset({"data_steward"}))
    assert opens(steward) == []
    world.built.policies.add(make_line("role:data_steward", "czt", "/s/echo/*", "GET"))
    assert [s["url"] for s in opens(steward)] == ["/s/echo/"]
    world.built.policies.add(make_line("user:li.si", "jgswj", "/s/down/*", "*", "deny"))
    assert [s["code"] for s in opens(who("jgswj", frozenset()))] == [
        "echo"]
