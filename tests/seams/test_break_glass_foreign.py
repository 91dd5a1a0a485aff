"""Break-glass × a user's token through another department's client (docs/seams.md,
"Attack of 2026-12-05, fourth session (a user's token through another department's
client, on every path)"): the person's emergency access is theirs, not another
department's system's acting for them; through the proxy to a real upstream."""

from __future__ import annotations

from tests.break_glass.conftest import World, clock, services, world  # noqa: F401 (fixtures)
from tests.tokens import access_token


async def test_a_break_glass_does_not_open_to_another_departments_system(
        world: World) -> None:  # noqa: F811
    bg = await world.active()  # wang.wu of nn-jgsw, on czt's echo
    own = await world.call("GET", "/s/echo/ledger", "wang.wu")
    assert own.status_code == 200 and world.records("proxy_request")[-1]["extra"][
        "break_glass"] == bg["id"]
    # the same person through office-web, jgswj's system (the demo's registration)
    token = access_token(world.services, sub="wang.wu", department="nn-jgsw",
                         client_id="office-web")
    r = await world.http.get("/s/echo/ledger", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403, r.text
    refused = world.records("proxy_request")[-1]
    assert "break_glass" not in refused["extra"]
    assert refused["extra"]["client_department"] == "jgswj"
    assert "client office-web of jgswj: deny by default rule" in refused["reason"]
