"""A delegation is decided by the head of the department its people are in now: once
the delegator has moved to another department (czt), the head of the department the
request was made in (jgswj) no longer approves it (attack of 2026-12-05: a department
head approving a delegation of another department's person)."""

from __future__ import annotations

import json

from gateway.tables import users
from tests.delegation.conftest import api, approved, ask, steps
from tests.delegation.test_pages import signed_in
from tests.oauth2.helpers import csrf_of
from tests.proxy.conftest import World


async def test_a_head_does_not_approve_for_someone_moved_away(quick: World) -> None:
    r = await api(quick, "li.ming", "POST", "", ask(quick))
    assert r.status == 201, r.body
    number = json.loads(r.body)["delegation"]["id"]
    with quick.services.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "li.ming")
                     .values(department_code="czt"))
    r = await api(quick, "zhao.head", "POST", f"/{number}/approve")
    assert r.status == 403, r.body
    assert "li.ming" in json.loads(r.body)["detail"]
    refused = [s for s in steps(quick) if s.change == "delegation_refused"]
    assert [(s.actor_user, s.outcome, s.status) for s in refused] == [
        ("zhao.head", "deny", 403)]


async def test_b_does_not_start_acting_for_someone_moved_away(quick: World) -> None:
    number = await approved(quick)
    with quick.services.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "li.ming")
                     .values(department_code="czt"))
    b = signed_in(quick, "wang.fang")
    page = b.get("/portal/delegations")
    r = b.post(f"/portal/delegations/{number}/act", data={"csrf_token": csrf_of(page.text)},
               follow_redirects=False)
    assert r.status_code == 403 and "gg_act" not in r.headers.get("set-cookie", "")
    refused = [s for s in steps(quick) if s.change == "delegation_refused"]
    assert [(s.actor_user, s.outcome) for s in refused] == [("wang.fang", "deny")]
