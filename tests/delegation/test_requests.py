"""The rules of asking, deciding and revoking, through /api/v1/delegations: who may
decide (never A or B themselves), what A may give (only what A holds, never the 三员
roles), the bounds, the problem+json answers, and the audit record of every step and
every refusal."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.delegation.conftest import api, approved, ask, session, steps
from tests.proxy.conftest import World


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/problem+json"
    return dict(json.loads(r.body))


async def test_what_a_may_give_and_the_bounds(quick: World) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("li.ming", {"roles": ["sysadmin"], "systems": []}, "admin roles are never delegated"),
        ("li.ming", {"roles": ["dept_head"], "systems": []}, "roles you do not hold: dept_head"),
        ("wang.fang", {"delegate": "li.ming", "systems": ["ledger"]},
         "systems you may not open: ledger"),
        ("li.ming", {"delegate": "chen.jing"}, "chen.jing is not in your department"),
        ("li.ming", {"delegate": "li.ming"}, "cannot delegate to oneself"),
        ("li.ming", {"delegate": "nobody"}, "no active user 'nobody'"),
        ("li.ming", {"roles": [], "systems": []}, "at least one role or system"),
        ("li.ming", {"days": 31}, "at most 30 days"),
        ("li.ming", {"reason": "  "}, "give a reason"),
        ("li.ming", {"ends_at": "tomorrow"}, "ends_at: a date"),
        ("li.ming", {"starts_at": "2020-01-01"}, "the start is in the past"),
    ]
    for who, change, says in cases:
        body = ask(quick, days=change.pop("days", 1))
        body.update(change)
        detail = _problem(await api(quick, who, "POST", "", body), 400)["detail"]
        assert says in detail, (change, detail)
    refusals = [r for r in steps(quick) if r.change == "delegation_refused"]
    # every refusal by the domain is audited (the unparsable date stops before it)
    assert len(refusals) == len(cases) - 1
    assert all(r.outcome == "deny" and r.status == 400 for r in refusals)
    assert refusals[0].actor_user == "li.ming" and refusals[0].extra["roles"] == ["sysadmin"]
    # a date is a China-time day: the end date's whole day counts
    body = ask(quick)
    body["ends_at"] = (quick.services.clock() + timedelta(days=2)).date().isoformat()
    r = await api(quick, "li.ming", "POST", "", body)
    assert r.status == 201, r.body
    assert json.loads(r.body)["delegation"]["ends_at"].endswith("16:00:00+00:00")


async def test_who_decides_and_who_revokes(quick: World) -> None:
    r = await api(quick, "li.ming", "POST", "", ask(quick))
    assert r.status == 201
    made = json.loads(r.body)["delegation"]
    assert made["state"] == "requested" and made["live"] is False
    number = made["id"]
    for who, says in (("li.ming", "neither party"), ("wang.fang", "neither party"),
                      ("chen.jing", "only a department head")):
        detail = _problem(await api(quick, who, "POST", f"/{number}/approve"), 403)["detail"]
        assert says in detail
    _problem(await api(quick, "chen.jing", "POST", f"/{number}/revoke"), 403)
    r = await api(quick, "zhao.head", "POST", f"/{number}/approve")
    assert r.status == 200
    done = json.loads(r.body)["delegation"]
    assert done["state"] == "approved" and done["live"] and done["decided_by"] == "zhao.head"
    _problem(await api(quick, "zhao.head", "POST", f"/{number}/approve"), 409)
    _problem(await api(quick, "zhao.head", "POST", "/999999/approve"), 404)
    # the head revokes; then nothing more to revoke
    r = await api(quick, "zhao.head", "POST", f"/{number}/revoke")
    assert json.loads(r.body)["delegation"]["revoked_by"] == "zhao.head"
    _problem(await api(quick, "li.ming", "POST", f"/{number}/revoke"), 409)
    # a system administrator may revoke too
    other = await approved(quick)
    quick.services.org.change_password("sysadmin", "Another-long-pass-456")
    sysadmin_session = session(quick, "sysadmin")
    r = await quick.request("POST", f"/api/v1/delegations/{other}/revoke", body=b"{}", headers=[
        ("Cookie", f"{SESSION_COOKIE}={sysadmin_session}"),
        ("Content-Type", "application/json")])
    assert r.status == 200, r.body
    assert [(r.change, r.actor_user, r.outcome) for r in steps(quick)] == [
        ("delegation_requested", "li.ming", "success"),
        ("delegation_refused", "li.ming", "deny"),
        ("delegation_refused", "wang.fang", "deny"),
        ("delegation_refused", "chen.jing", "deny"),
        ("delegation_refused", "chen.jing", "deny"),
        ("delegation_approved", "zhao.head", "success"),
        ("delegation_refused", "zhao.head", "deny"),
        ("delegation_revoked", "zhao.head", "success"),
        ("delegation_refused", "li.ming", "deny"),
        ("delegation_requested", "li.ming", "success"),
        ("delegation_approved", "zhao.head", "success"),
        ("delegation_revoked", "sysadmin", "success"),
    ]
    approved_record = next(r for r in steps(quick) if r.change == "delegation_approved")
    assert approved_record.extra["delegator"] == "li.ming"
    assert approved_record.extra["delegate"] == "wang.fang"
    assert approved_record.extra["systems"] == ["echo"] and approved_record.extra["via"] == "api"


async def test_the_list_is_ones_own_and_a_token_needs_the_account_scope(quick: World
                                                                        ) -> None:
    number = await approved(quick)
    for who, sees in (("li.ming", [number]), ("wang.fang", [number]),
                      ("zhao.head", [number]), ("chen.jing", [])):
        r = await api(quick, who, "GET", "")
        assert [d["id"] for d in json.loads(r.body)["delegations"]] == sees, who
    token = quick.token(sub="li.ming", scope="openid account")
    r = await quick.request("GET", "/api/v1/delegations", token=token)
    assert r.status == 200 and json.loads(r.body)["delegations"][0]["id"] == number
    r = await quick.request("GET", "/api/v1/delegations", token=quick.token(
        sub="li.ming", scope="openid proxy"))
    _problem(r, 403)
    _problem(await quick.request("GET", "/api/v1/delegations"), 401)
