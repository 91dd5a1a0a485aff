"""Break-glass through the API and the proxy (docs/break-glass.md): dual control, the
marks in token, assertion and audit record, expiry by the clock, the review queue."""

from __future__ import annotations

import json
from types import SimpleNamespace

from gateway.idp.oauth2.rfc9068 import Subject
from tests.break_glass.conftest import World, claims_of
from tests.gateway.test_cli import here
from tests.wiring import parts


def _assertion(echoed: dict[str, object]) -> dict[str, object]:
    headers = dict(echoed["headers"])  # type: ignore[arg-type]
    return claims_of(headers["x-govgate-assertion"])


async def test_two_different_security_admins_open_it_and_it_is_marked(world: World) -> None:
    assert (await world.call("GET", "/s/echo/ledger", "wang.wu")).status_code == 403
    bg = await world.request()
    assert bg["state"] == "pending" and bg["approvals"] == []

    # one approver is not enough: the proxy still refuses
    assert (await world.approve(bg["id"], "sec.a")).status_code == 200
    assert (await world.call("GET", "/s/echo/ledger", "wang.wu")).status_code == 403
    # the same admin twice counts once; a non-secadmin is refused; the requester
    # (not a secadmin here) too
    again = await world.approve(bg["id"], "sec.a")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert (await world.approve(bg["id"], "aud.a")).status_code == 403
    assert (await world.approve(bg["id"], "wang.wu")).status_code == 403
    r = await world.call("GET", f"/api/v1/break-glass/{bg['id']}", "wang.wu")
    assert r.json()["break_glass"]["state"] == "pending"
    assert [a["approver"] for a in r.json()["break_glass"]["approvals"]] == ["sec.a"]
    assert (await world.call("GET", "/s/echo/ledger", "wang.wu")).status_code == 403

    active = (await world.approve(bg["id"], "sec.b")).json()["break_glass"]
    assert active["state"] == "active"
    assert active["ends_at"] is not None

    # a real proxied call through the real upstream, marked in assertion and headers
    r = await world.call("GET", "/s/echo/ledger", "wang.wu")
    assert r.status_code == 200, r.text
    claims = _assertion(r.json())
    assert claims["sub"] == "wang.wu"
    assert claims["break_glass"]["id"] == bg["id"]  # type: ignore[index]
    assert claims["break_glass"]["exp"] > claims["exp"]  # type: ignore[index]
    assert dict(r.json()["headers"])["x-govgate-break-glass"] == bg["id"]
    record = [x for x in world.records("proxy_request") if x["status"] == 200][-1]
    assert record["extra"]["break_glass"] == bg["id"]
    assert record["extra"]["rule"] == "break_glass"
    assert record["extra"]["break_glass_needed"] is True

    # a token issued now carries it too
    generator = parts(world.services).provider.server.token_generator
    user = Subject("wang.wu", "王五", "nn-jgsw", "gx", frozenset({"staff"}))
    token = generator(grant_type="authorization_code", user=user, scope="openid proxy",
                      client=SimpleNamespace(client_id="office-web",
                                             get_allowed_scope=lambda s: s))
    assert claims_of(token["access_token"])["break_glass"][0]["id"] == bg["id"]

    # it widens nothing else: another system, another person, a catalogue resource
    assert (await world.call("GET", "/s/vehicles/api/vehicles", "wang.wu")).status_code == 403
    assert (await world.call("GET", "/s/echo/ledger", "sec.c")).status_code == 403
    # every step was audited, with the id
    steps = [x["reason"] for x in world.records("break_glass")
             if x["extra"].get("break_glass") == bg["id"]]
    assert steps == ["break_glass_requested", "break_glass_approved",
                     "break_glass_approved", "break_glass_approved", "break_glass_approved",
                     "break_glass_activated"]


async def test_refusals_the_requesters_own_approval_and_too_long(world: World) -> None:
    # longer than the operator's maximum (4 h by default); no such system
    r = await world.call("POST", "/api/v1/break-glass", "wang.wu", json={
        "system": "echo", "reason": "急", "minutes": 4 * 60 + 1})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    r = await world.call("POST", "/api/v1/break-glass", "wang.wu", json={
        "system": "nowhere", "reason": "急", "minutes": 10})
    assert r.status_code == 404
    assert (await world.call("GET", "/api/v1/break-glass", "wang.wu")).json() == {
        "break_glass": []}

    bg = await world.request(who="sec.c")
    refused = await world.approve(bg["id"], "sec.c")
    assert refused.status_code == 403
    assert "own approval" in refused.json()["detail"]
    assert (await world.approve(bg["id"], "sec.a")).json()["break_glass"]["state"] == "pending"
    assert (await world.call("GET", "/s/echo/x", "sec.c")).status_code == 403
    denied = [x for x in world.records("break_glass") if x["outcome"] == "deny"]
    assert denied[-1]["actor_user"] == "sec.c" and denied[-1]["status"] == 403


async def test_it_expires_by_itself_and_enters_the_review(world: World,
                                                          env: dict[str, str]) -> None:
    bg = await world.active(minutes=30)
    assert (await world.call("GET", "/s/echo/a", "wang.wu")).status_code == 200
    world.clock.advance(29 * 60)
    assert (await world.call("GET", "/s/echo/b", "wang.wu")).status_code == 200
    world.clock.advance(61)
    assert (await world.call("GET", "/s/echo/c", "wang.wu")).status_code == 403
    r = await world.call("GET", f"/api/v1/break-glass/{bg['id']}", "wang.wu")
    assert r.json()["break_glass"]["state"] == "expired"
    assert r.json()["break_glass"]["in_review"] is True

    # the operator's list (its clock is the real one, months after the world's Monday:
    # a request left pending then has lapsed by now)
    pending = await world.request(system="vehicles")
    listed = here(env, "break-glass", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()[1:]]
    assert {(r[0], r[3], r[4]) for r in rows} == {(bg["id"], "expired", "sec.a,sec.b"),
                                                  (pending["id"], "lapsed", "-")}
    only = here(env, "break-glass", "list", "--state", "lapsed", "--json")
    assert [json.loads(x)["id"] for x in only.stdout.splitlines()] == [pending["id"]]


async def test_a_security_admin_ends_it_early(world: World) -> None:
    bg = await world.active()
    assert (await world.call("GET", "/s/echo/a", "wang.wu")).status_code == 200
    # forward-auth marks it as well
    front = {"X-Original-URI": "/s/echo/a", "X-Original-Method": "GET"}
    r = await world.call("GET", "/auth/verify", "wang.wu", headers=front)
    assert r.status_code == 200
    assert r.headers["x-govgate-break-glass"] == bg["id"]
    assert claims_of(r.headers["x-govgate-assertion"])["break_glass"]["id"] == bg["id"]
    assert world.records("forward_auth")[-1]["extra"]["break_glass"] == bg["id"]
    r = await world.call("POST", f"/api/v1/break-glass/{bg['id']}/end", "wang.wu",
                         json={"reason": "我自己"})
    assert r.status_code == 403
    r = await world.call("POST", f"/api/v1/break-glass/{bg['id']}/end", "sec.c",
                         json={"reason": "故障已排除"})
    assert r.json()["break_glass"]["state"] == "ended"
    assert (await world.call("GET", "/s/echo/b", "wang.wu")).status_code == 403
    assert (await world.call("GET", "/auth/verify", "wang.wu", headers=front)
            ).status_code == 403


async def test_a_resource_break_glass_opens_that_resource_only(world: World) -> None:
    await world.active(system="vehicles", resource="JG-0001")
    r = await world.call("GET", "/s/vehicles/api/vehicles", "wang.wu")
    assert r.status_code == 200, r.text
    record = world.records("proxy_request")[-1]
    assert record["resource"] == "JG-0001" and record["extra"]["break_glass"]
    # the system's other paths are not opened by it
    assert (await world.call("GET", "/s/vehicles/api/other", "wang.wu")).status_code == 403


async def test_the_review_queue_lists_every_use_and_needs_a_finding(world: World) -> None:
    bg = await world.active()
    for n in range(3):
        assert (await world.call("GET", f"/s/echo/use/{n}", "wang.wu")).status_code == 200
    # the audit administrator only
    for who in ("sec.a", "wang.wu"):
        assert (await world.call("GET", "/api/v1/break-glass/review", who)).status_code == 403
    queue = (await world.call("GET", "/api/v1/break-glass/review", "aud.a")).json()["queue"]
    assert [q["id"] for q in queue] == [bg["id"]]
    uses = [r for r in queue[0]["records"] if r["use"]]
    assert queue[0]["uses"] == 3 == len(uses)
    ids = {r["id"] for r in uses}
    assert ids == {x["id"] for x in world.records("proxy_request")
                   if x["extra"].get("break_glass") == bg["id"]}
    # and the notices of its activation to the audit administrators
    assert {r["event_type"] for r in queue[0]["records"]} == {"proxy_request", "break_glass",
                                                               "auditor_notice"}

    path = f"/api/v1/break-glass/{bg['id']}/review"
    assert (await world.call("POST", path, "aud.a", json={"finding": "  "})).status_code == 400
    assert (await world.call("POST", path, "aud.a", json={})).status_code == 400
    assert (await world.call("POST", path, "sec.a", json={"finding": "ok"})).status_code == 403
    # in the queue once used, closed once over: a use after a closed review would never
    # be reviewed (failed before: 200 while it was active)
    early = await world.call("POST", path, "aud.a", json={"finding": "应急处置合规"})
    assert early.status_code == 409 and "still active" in early.json()["detail"]
    r = await world.call("POST", f"/api/v1/break-glass/{bg['id']}/end", "sec.a",
                         json={"reason": "处置完毕"})
    assert r.status_code == 200, r.text
    done = await world.call("POST", path, "aud.a", json={"finding": "应急处置合规"})
    assert done.status_code == 200
    assert done.json()["break_glass"]["finding"] == "应急处置合规"
    assert (await world.call("POST", path, "aud.a", json={"finding": "again"})
            ).status_code == 409
    assert (await world.call("GET", "/api/v1/break-glass/review", "aud.a")).json() == {
        "queue": []}
    closed = (await world.call("GET", "/api/v1/break-glass/review?closed=true", "aud.a")
              ).json()["queue"]
    assert [q["reviewed_by"] for q in closed] == ["aud.a"]
    reviewed = [x for x in world.records("break_glass")
                if x["reason"] == "break_glass_reviewed"]
    # the schema's refusals (blank, missing) too, then sec.a's, the early one, the
    # finding, the repeat
    assert [x["outcome"] for x in reviewed] == ["deny", "deny", "deny", "deny", "success",
                                                "deny"]
    reviewed = [x for x in reviewed if x["outcome"] == "success"]
    assert reviewed[-1]["extra"]["finding"] == "应急处置合规"
    assert reviewed[-1]["actor_user"] == "aud.a"
