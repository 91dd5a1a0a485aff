"""委托 × the identity provider × break-glass and token exchange: the tokens an OpenID
Connect relying party receives while B acts for A (authlib's client over real
sockets) carry no mark of A's break-glass (it is A's, not B's), and they open nothing
further: not the proxy's forward-auth, not an RFC 8693 exchange."""

from __future__ import annotations

import httpx

from gateway.idp.oauth2.rfc8693 import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE
from tests.delegation.conftest import approved, cookies
from tests.delegation.test_idp import SECRET, clients_doc, code_flow, verified
from tests.proxy.conftest import World
from tests.proxy.test_forward_auth import verify_headers
from tests.seams.conftest import break_glass


async def test_acted_tokens_carry_no_break_glass_and_open_nothing_more(
        seam_sockets: World) -> None:
    world = seam_sockets
    doc = clients_doc()
    for c in doc["clients"]:
        c["token_exchange"] = True
    world.built.state_applier().apply(doc)
    bg_id = await break_glass(world, "li.ming", "echo")
    # A's own sign-in is marked (the control)
    rp, own, _ = await code_flow(world, "echo-web", cookies(world, "li.ming"))
    await rp.aclose()
    assert verified(world, own["access_token"])["break_glass"][0]["id"] == bg_id

    number = await approved(world, systems=["echo"])
    rp, token, _ = await code_flow(world, "echo-web",
                                   cookies(world, "wang.fang", acting=number))
    await rp.aclose()
    access = verified(world, token["access_token"])
    assert access["act"] == {"sub": "wang.fang"}
    assert "break_glass" not in access
    assert "break_glass" not in verified(world, token["id_token"])

    # forward-auth refuses it (401) as the proxy and the API do
    r = await world.request("GET", "/auth/verify", token=token["access_token"],
                            headers=verify_headers("/s/echo/x"))
    assert r.status == 401, r.body
    # and no exchange makes it a token for the proxy (delegation is one level only)
    assert world.gateway is not None
    async with httpx.AsyncClient(auth=("echo-web", SECRET)) as rs:
        r2 = await rs.post(f"http://127.0.0.1:{world.gateway.port}/oauth2/token", data={
            "grant_type": TOKEN_EXCHANGE, "subject_token": token["access_token"],
            "subject_token_type": ACCESS_TOKEN_TYPE, "audience": "echo"})
    assert r2.status_code == 400 and r2.json()["error"] == "invalid_grant", r2.text
