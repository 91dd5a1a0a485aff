"""B acting for A through the proxy, with the echo upstream behind it: what the
upstream is told (the assertion's ``sub`` and ``act``, the acting-user header), what the
audit record says, and every way the proxy refuses to let B act."""

from __future__ import annotations

import asyncio
import json
import time

from gateway.delegation_tables import delegations
from gateway.web.delegation_common import acting_entries
from tests.delegation.conftest import (
    ShiftClock,
    api,
    approved,
    ask,
    claims_of,
    cookies,
    header,
    systems_doc,
)
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers


async def test_b_acting_for_a_reaches_a_delegated_system_named_as_both(sockets: World
                                                                        ) -> None:
    world = sockets
    number = await approved(world)
    sent = len(world.echo.seen)
    r = await world.request("GET", "/s/echo/approve/42",
                            headers=[cookies(world, "wang.fang", acting=number)])
    assert r.status == 200, r.body
    seen = world.echo.seen[sent]
    claims = claims_of(header(seen, "x-govgate-assertion") or "")
    assert claims["sub"] == "li.ming" and claims["username"] == "li.ming"
    assert claims["act"] == {"sub": "wang.fang"} and claims["delegation"] == number
    assert claims["department"] == "jgswj" and claims["via"] == "session"
    record = world.audit.records[-1]
    assert record.event_type == "proxy_request" and record.outcome == "allow"
    assert record.actor_user == "li.ming" and record.system == "echo"
    assert record.extra["act"] == {"sub": "wang.fang"}
    assert record.extra["delegation"] == number
    assert record.extra["delegated_as"] == "system"
    # the same person without choosing to act is themselves
    r = await world.request("GET", "/s/echo/own", headers=[cookies(world, "wang.fang")])
    assert r.status == 200
    mine = claims_of(header(world.echo.seen[-1], "x-govgate-assertion") or "")
    assert mine["sub"] == "wang.fang" and "act" not in mine
    assert world.audit.records[-1].actor_user == "wang.fang"
    assert "act" not in world.audit.records[-1].extra


async def test_a_system_not_delegated_is_refused_and_headers_name_the_actor(quick: World
                                                                          ) -> None:
    quick.built.state_applier().apply({"systems": [
        {"code": "echo", "name": "回显系统", "department": "jgswj",
         "upstream": "http://127.0.0.1:59999", "identity_headers": "both"}]})
    quick.built.proxy.systems.invalidate()
    number = await approved(quick, systems=["echo"])
    r = await quick.request("GET", "/s/echo/x", headers=[
        cookies(quick, "wang.fang", acting=number), ("X-Govgate-Acting-User", "forged")])
    assert r.status == 200, r.body
    seen = quick.echo.seen[-1]
    assert header(seen, "x-govgate-user") == "li.ming"
    assert header(seen, "x-govgate-acting-user") == "wang.fang"
    assert [k for k, _ in seen["headers"]].count("x-govgate-acting-user") == 1
    # forward-auth tells the front proxy too, and the assertion it hands out is verified
    r = await quick.request("GET", "/auth/verify", headers=[
        cookies(quick, "wang.fang", acting=number), *verify_headers("/s/echo/y")])
    assert r.status == 200 and r.headers["x-govgate-user"] == "li.ming"
    assert r.headers["x-govgate-acting-user"] == "wang.fang"
    claims = quick.services.keys.verify_jwt("assertion", r.headers["x-govgate-assertion"])
    assert claims["sub"] == "li.ming" and claims["act"] == {"sub": "wang.fang"}
    assert quick.audit.records[-1].event_type == "forward_auth"
    assert quick.audit.records[-1].extra["act"] == {"sub": "wang.fang"}
    # a bearer token is never turned by the cookie: only a portal session chooses
    r = await quick.request("GET", "/s/echo/x", token=quick.token(sub="wang.fang", scope="proxy"),
                            headers=[("Cookie", f"gg_act={number}")])
    assert r.status == 200 and header(quick.echo.seen[-1], "x-govgate-user") == "wang.fang"
    before = len(quick.echo.seen)
    # down is li.ming's department's (the default rule opens it to li.ming) but not lent
    r = await quick.request("GET", "/s/down/x",
                            headers=[cookies(quick, "wang.fang", acting=number)])
    assert r.status == 403, r.body
    assert json.loads(r.body)["type"] == "urn:govgate:error:not_delegated"
    record = quick.audit.records[-1]
    assert record.outcome == "deny" and record.actor_user == "li.ming"
    assert record.extra["act"] == {"sub": "wang.fang"}
    assert "names neither the system down" in (record.reason or "")
    assert len(quick.echo.seen) == before


async def test_a_lent_role_opens_only_what_its_policy_lines_open(quick: World) -> None:
    number = await approved(quick, systems=[], roles=["data_steward"])
    # ledger (czt) is opened to jgswj's data stewards by a policy line
    r = await quick.request("GET", "/s/ledger/report",
                            headers=[cookies(quick, "wang.fang", acting=number)])
    assert r.status == 200, r.body
    claims = claims_of(header(quick.echo.seen[-1], "x-govgate-assertion") or "")
    assert claims["roles"] == ["data_steward"] and claims["act"] == {"sub": "wang.fang"}
    assert quick.audit.records[-1].extra["delegated_as"] == "roles"
    # the launcher offers exactly that system, marked for li.ming
    [entry] = acting_entries(quick.built, "wang.fang")
    assert [x["code"] for x in entry.systems] == ["ledger"] and entry.delegator_name == "李明"
    # echo is opened to li.ming by the default rule only, not by a line of the role
    r = await quick.request("GET", "/s/echo/x",
                            headers=[cookies(quick, "wang.fang", acting=number)])
    assert r.status == 403
    assert "no policy line of the delegated roles" in (quick.audit.records[-1].reason or "")
    # a deny line of li.ming's own still wins for the one acting for him
    quick.built.state_applier().apply({"policies": [
        *systems_doc("http://127.0.0.1:59999")["policies"],
        {"subject": "user:li.ming", "department": "jgswj", "object": "/s/ledger/secret*",
         "action": "*", "effect": "deny", "ungoverned": True, "reason": "not his"}]})
    quick.built.policies.refresh()
    r = await quick.request("GET", "/s/ledger/secret/1",
                            headers=[cookies(quick, "wang.fang", acting=number)])
    assert r.status == 403 and quick.audit.records[-1].extra["line_id"] is not None
    # what li.ming no longer holds is no longer lent
    quick.services.org.set_roles("li.ming", ["staff"])
    r = await quick.request("GET", "/s/ledger/report",
                            headers=[cookies(quick, "wang.fang", acting=number)])
    assert r.status == 403


async def test_unapproved_rejected_revoked_expired_and_others_refused(
        quick: World, clock: ShiftClock) -> None:
    r = await api(quick, "li.ming", "POST", "", ask(quick))
    waiting = json.loads(r.body)["delegation"]["id"]
    r = await api(quick, "li.ming", "POST", "", ask(quick))
    turned_down = json.loads(r.body)["delegation"]["id"]
    r = await api(quick, "zhao.head", "POST", f"/{turned_down}/reject", {"note": "不必"})
    assert r.status == 200 and json.loads(r.body)["delegation"]["state"] == "rejected"
    revoked = await approved(quick)
    ok = await approved(quick)

    async def status(username: str, number: int | str) -> tuple[int, str]:
        resp = await quick.request("GET", "/s/echo/x", headers=[
            cookies(quick, username, acting=number)])
        return resp.status, quick.audit.records[-1].reason or ""

    assert (await status("wang.fang", ok))[0] == 200
    assert await status("wang.fang", waiting) == (403, f"delegation {waiting} is requested")
    assert await status("wang.fang", turned_down) == (
        403, f"delegation {turned_down} is rejected")
    r = await api(quick, "li.ming", "POST", f"/{revoked}/revoke")
    assert r.status == 200
    # this process sees its own revocation at once
    assert await status("wang.fang", revoked) == (403, f"delegation {revoked} is revoked")
    # a delegation is B's only
    assert (await status("chen.jing", ok))[0] == 403
    assert (await status("wang.fang", 999999))[0] == 403
    # a value the portal did not set in this session chooses nothing: B is B
    other_session = cookies(quick, "wang.fang", acting=ok)[1].split("gg_act=")[1]
    for forged in ("abc", str(ok), f"{ok}.00", other_session):
        assert (await status("wang.fang", forged))[0] == 200, forged
        assert quick.audit.records[-1].actor_user == "wang.fang"
        assert "act" not in quick.audit.records[-1].extra
    # expiry: a day and a second later, by the clock
    clock.advance(86400 + 1)
    assert await status("wang.fang", ok) == (403, f"delegation {ok} is expired")
    r = await api(quick, "li.ming", "GET", "")
    states = {d["id"]: d["state"] for d in json.loads(r.body)["delegations"]}
    assert states == {waiting: "expired", turned_down: "rejected", revoked: "revoked",
                      ok: "expired"}


async def test_a_revocation_in_another_process_holds_within_a_second(quick: World) -> None:
    number = await approved(quick)
    hdr = [cookies(quick, "wang.fang", acting=number)]
    assert (await quick.request("GET", "/s/echo/x", headers=hdr)).status == 200
    # another process revokes: only the database changes, nothing here is told
    with quick.services.engine.begin() as conn:
        conn.execute(delegations.update().where(delegations.c.id == number)
                     .values(state="revoked", revoked_by="sysadmin"))
    started = time.monotonic()
    while (await quick.request("GET", "/s/echo/x", headers=hdr)).status == 200:
        assert time.monotonic() - started < 1.5, "still admitted after a revocation"
        await asyncio.sleep(0.05)
    assert time.monotonic() - started <= 1.2
    assert quick.audit.records[-1].reason == f"delegation {number} is revoked"
