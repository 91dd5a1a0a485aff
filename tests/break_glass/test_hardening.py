"""Break-glass attacked as a stranger would: refusals the desk never saw (the schema's,
the scope's, the CSRF token's) are audited; an approval by an administrator disabled
since does not count; a delegated token takes no step; another person's id is not
theirs to read; the token claim comes from the ≤1 s view without a query."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from gateway.break_glass.tables import break_glass
from gateway.idp.oauth2.rfc9068 import Subject
from tests.break_glass.conftest import PEOPLE, World, claims_of
from tests.break_glass.test_portal import ORIGIN, as_session
from tests.oauth2.helpers import csrf_of
from tests.tokens import access_token
from tests.wiring import apply_state, parts


def _denied(world: World, step: str) -> list[dict[str, Any]]:
    return [x for x in world.records("break_glass")
            if x["reason"] == step and x["outcome"] == "deny"]


async def test_refusals_before_the_desk_are_audited(world: World) -> None:
    """400s of the schema check and 401/403s of the credentials: each an audit record
    with the step, outcome deny, the status and what was refused."""
    bodies = [{"system": "echo", "reason": "   ", "minutes": 10},  # blank reason
              {"system": "echo", "reason": "急", "minutes": 24 * 60 + 1},  # too long
              {"system": "echo", "minutes": 10}]  # no reason
    for body in bodies:
        r = await world.call("POST", "/api/v1/break-glass", "wang.wu", json=body)
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    denied = _denied(world, "break_glass_requested")
    assert [(x["actor_user"], x["status"]) for x in denied] == [("wang.wu", 400)] * 3
    assert all(x["extra"]["refused"] and x["extra"]["via"] == "api" for x in denied)

    bg = await world.active()
    path = f"/api/v1/break-glass/{bg['id']}"
    # no finding; a finding that is not a string
    for body in ({}, {"finding": 5}):
        assert (await world.call("POST", path + "/review", "aud.a", json=body)
                ).status_code == 400
    # a token without the admin scope; no credentials at all
    account_only = access_token(world.services, sub="aud.a", department="czt",
                                roles=("auditor",), scope="openid account")
    r = await world.http.post(path + "/review", json={"finding": "ok"},
                              headers={"Authorization": f"Bearer {account_only}"})
    assert r.status_code == 403
    assert (await world.http.post(path + "/end", json={"reason": "x"})).status_code == 401
    reviewed = _denied(world, "break_glass_reviewed")
    assert [(x["actor_user"], x["status"]) for x in reviewed] == [
        ("aud.a", 400), ("aud.a", 400), ("aud.a", 403)]
    assert {x["extra"]["break_glass"] for x in reviewed} == {bg["id"]}
    ended = _denied(world, "break_glass_ended")
    assert [(x["actor_user"], x["status"]) for x in ended] == [(None, 401)]
    # a refusal the desk audited is not written twice
    assert (await world.approve(bg["id"], "aud.a")).status_code == 403
    assert len(_denied(world, "break_glass_approved")) == 1


async def test_approvals_standing_and_in_person(world: World) -> None:
    """An approval by an administrator disabled since does not count; a forged form
    (no CSRF token) approves nothing, and says so in the audit; the audit administrator
    does not review their own break-glass."""
    bg = await world.request()
    kept = world.token("sec.a")
    assert (await world.approve(bg["id"], "sec.a")).status_code == 200
    department, roles = PEOPLE["sec.a"]
    apply_state(world.services, {"users": [{
        "username": "sec.a", "name": "sec.a", "department": department,
        "roles": list(roles), "status": "disabled"}]})
    # the disabled one cannot approve any more; sec.b's is the only standing approval
    r = await world.http.post(f"/api/v1/break-glass/{bg['id']}/approve",
                              headers={"Authorization": f"Bearer {kept}"})
    assert r.status_code == 401
    second = await world.approve(bg["id"], "sec.b")
    assert second.json()["break_glass"]["state"] == "pending", second.text
    assert (await world.call("GET", "/s/echo/x", "wang.wu")).status_code == 403
    third = await world.approve(bg["id"], "sec.c")
    assert third.json()["break_glass"]["state"] == "active"

    # one open request per person and target: a copy is refused (audited)
    copy = await world.call("POST", "/api/v1/break-glass", "wang.wu", json={
        "system": "echo", "reason": "再来一次", "minutes": 10})
    assert copy.status_code == 409 and bg["id"] in copy.json()["detail"]
    assert _denied(world, "break_glass_requested")[-1]["extra"]["break_glass"] == bg["id"]

    # the portal's forms need their CSRF token; the refusal is audited
    bg = await world.request(system="vehicles")
    as_session(world, "sec.b")
    page = await world.http.get("/portal/break-glass")
    forged = await world.http.post(f"/portal/break-glass/{bg['id']}/approve",
                                   data={"csrf_token": "forged"}, headers=ORIGIN)
    assert forged.status_code == 400
    assert _denied(world, "break_glass_approved")[-1]["status"] == 400
    view = await world.call("GET", f"/api/v1/break-glass/{bg['id']}", "wang.wu")
    assert view.json()["break_glass"]["approvals"] == []
    # the page's own check of the duration is audited as well
    bad = await world.http.post("/portal/break-glass", headers=ORIGIN, data={
        "csrf_token": csrf_of(page.text), "system": "echo", "reason": "急", "minutes": "-5"})
    assert bad.status_code == 400
    assert _denied(world, "break_glass_requested")[-1]["actor_user"] == "sec.b"

    own = await world.active(who="aud.a")
    r = await world.call("POST", f"/api/v1/break-glass/{own['id']}/end", "sec.c",
                         json={"reason": "已处置"})
    assert r.json()["break_glass"]["in_review"] is True
    r = await world.call("POST", f"/api/v1/break-glass/{own['id']}/review", "aud.a",
                         json={"finding": "本人复核"})
    assert r.status_code == 403 and "another audit administrator" in r.json()["detail"]
    assert _denied(world, "break_glass_reviewed")[-1]["actor_user"] == "aud.a"


async def test_strangers_take_no_step(world: World) -> None:
    """A system acting for a security administrator (RFC 8693 ``act``) is not the
    administrator: dual control counts people (refused, audited). Another person's
    break-glass is not a staff member's to read, end or review."""
    pending = await world.request(system="vehicles")
    department, roles = PEOPLE["sec.a"]
    acting = access_token(world.services, sub="sec.a", department=department, roles=roles,
                          act={"sub": "client:office-web"})
    r = await world.http.post(f"/api/v1/break-glass/{pending['id']}/approve",
                              headers={"Authorization": f"Bearer {acting}"})
    assert r.status_code == 401, r.text  # a delegated token serves only the proxy
    assert _denied(world, "break_glass_approved")[-1]["status"] == r.status_code
    view = await world.call("GET", f"/api/v1/break-glass/{pending['id']}", "wang.wu")
    assert view.json()["break_glass"]["approvals"] == []

    bg = await world.active()
    # a stranger (staff, not an administrator) reads, ends and reviews nothing of it
    department, roles = "jgswj", ("staff",)
    stranger = access_token(world.services, sub="li.si", department=department, roles=roles)
    auth = {"Authorization": f"Bearer {stranger}"}
    path = f"/api/v1/break-glass/{bg['id']}"
    assert (await world.http.get(path, headers=auth)).status_code == 404
    assert (await world.http.get("/api/v1/break-glass", headers=auth)).json() == {
        "break_glass": []}
    assert (await world.http.get("/api/v1/break-glass/review", headers=auth)
            ).status_code == 403
    assert (await world.http.post(path + "/end", headers=auth, json={"reason": "x"})
            ).status_code == 403
    assert [x["status"] for x in _denied(world, "break_glass_read")] == [404]
    assert [x["status"] for x in _denied(world, "break_glass_queue")] == [403]


def _claim(world: World) -> Any:
    generator = parts(world.services).provider.server.token_generator
    user = Subject("wang.wu", "王五", "nn-jgsw", "gx", frozenset({"staff"}))
    token = generator(grant_type="authorization_code", user=user, scope="openid proxy",
                      client=SimpleNamespace(client_id="office-web",
                                             get_allowed_scope=lambda s: s))
    return claims_of(token["access_token"]).get("break_glass")


async def test_the_token_claim_comes_from_the_one_second_view(world: World) -> None:
    bg = await world.active()
    assert _claim(world)[0]["id"] == bg["id"]
    seen: list[str] = []

    def on_query(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "break_glass" in statement:
            seen.append(statement)

    engine = world.services.engine
    sa.event.listen(engine, "before_cursor_execute", on_query)
    try:
        # many tokens within the second: no query on the table
        assert all(_claim(world) for _ in range(20))
        assert seen == []
        # ended by another process (written to the table, this view not told): the next
        # token issued after at most a second has no claim
        with engine.begin() as conn:
            conn.execute(break_glass.update().where(break_glass.c.id == bg["id"])
                         .values(ended_at=world.clock(), ended_by="sec.c"))
        ended = time.monotonic()
        while _claim(world) is not None:
            assert time.monotonic() - ended <= 1.2, "still in tokens after a second"
            time.sleep(0.05)
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_query)

    # ended in this process (the desk tells the view): the very next token has none
    again = await world.active()
    assert _claim(world)[0]["id"] == again["id"]
    r = await world.call("POST", f"/api/v1/break-glass/{again['id']}/end", "sec.c",
                         json={"reason": "故障已排除"})
    assert r.status_code == 200
    assert _claim(world) is None

