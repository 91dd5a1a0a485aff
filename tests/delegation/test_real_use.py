"""Real use (实绩) names the person who saw the data: wang.fang's calls acting for
li.ming (委托) are hers in the count of users, and the reports say how many calls were
made acting for a colleague (the API's ``acting``, the console's line), through the
proxy to a real upstream on a socket."""

from __future__ import annotations

import json
from typing import Any

from gateway.idp.oauth2.provider import SESSION_COOKIE
from tests.delegation.conftest import PASSWORD, approved, cookies
from tests.proxy.conftest import World
from tests.tokens import access_token


async def _stats(world: World, path: str) -> Any:
    token = access_token(world.services, sub="aud.j", department="jgswj",
                         roles=["auditor"])
    r = await world.request("GET", path, token=token)
    assert r.status == 200, r.body
    return json.loads(r.body)


async def test_acting_calls_count_for_the_delegate_and_show_both(sockets: World) -> None:
    """Failed on the base: the echo's users were 1 (li.ming, credited with wang.fang's
    two calls as his), and no report said a delegate had made them."""
    number = await approved(sockets)
    as_b = [cookies(sockets, "wang.fang", acting=number)]
    for _ in range(2):
        assert (await sockets.request("GET", "/s/echo/x", headers=as_b)).status == 200
    own = [cookies(sockets, "li.ming")]
    assert (await sockets.request("GET", "/s/echo/y", headers=own)).status == 200
    rows = [r for r in sockets.audit.records if r.event_type == "proxy_request"]
    assert [(r.actor_user, (r.extra.get("act") or {}).get("sub")) for r in rows] == [
        ("li.ming", "wang.fang"), ("li.ming", "wang.fang"), ("li.ming", None)]

    sockets.services.org.add_user("aud.j", "审计员", "jgswj", ["auditor"], PASSWORD,
                                  must_change=False)
    overview = await _stats(sockets, "/api/v1/stats/overview?days=30")
    echo = next(s for s in overview["systems"] if s["code"] == "echo")
    assert {k: echo["total"][k] for k in ("calls", "users", "acting")} == {
        "calls": 3, "users": 2, "acting": 2}
    summary = await _stats(sockets, "/api/v1/stats/departments/jgswj?days=30")
    assert {k: summary["provided"]["total"][k] for k in ("calls", "users", "acting")} == {
        "calls": 3, "users": 2, "acting": 2}

    session, _ = sockets.built.provider.store.create_session(
        "aud.j", "active", amr="pwd otp", absolute_seconds=3600)
    for lang, line in (("zh", "其中 2 次由被委托人代委托人调用"),
                       ("en", "2 of them by a delegate acting for a colleague")):
        page = await sockets.request("GET", f"/portal/stats?days=30&lang={lang}",
                                     headers=[("Cookie", f"{SESSION_COOKIE}={session}")])
        assert page.status == 200
        text = page.body.decode()
        target = text.split('data-code="echo"', 1)[1].split("</section>", 1)[0]
        assert line in target, target[:600]
