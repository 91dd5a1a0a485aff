"""A disabled client's token through the proxy's hot path (real gateway and
upstream over HTTP): refused within a second, even though the proxy had already
verified and cached that token."""

from __future__ import annotations

import asyncio
import base64
import time

from gateway.services import open_services
from tests.proxy import conftest as proxy
from tests.proxy.conftest import World, raw_request
from tests.wiring import apply_state, parts

# the proxy suite's fixtures: a real upstream and a real gateway over HTTP
base_services = proxy.base_services
world = proxy.world

SYNC = ("echo-sync", "echo-sync-secret-0123456789abcdef")


async def _client_token(world: World) -> str:
    basic = base64.b64encode(f"{SYNC[0]}:{SYNC[1]}".encode()).decode()
    r = await raw_request(world.gateway.port, "POST", "/oauth2/token", [
        ("Authorization", f"Basic {basic}"),
        ("Content-Type", "application/x-www-form-urlencoded")],
        body=b"grant_type=client_credentials")
    assert r.status == 200, r.body
    return str(r.json()["access_token"])


async def test_a_disabled_clients_token_is_refused_by_the_proxy(world: World) -> None:
    services = world.services
    apply_state(services, {"clients": [{
        "client_id": SYNC[0], "name": "回显同步", "department": "jgswj",
        "grant_types": ["client_credentials"], "secret": SYNC[1], "scope": "proxy"}]})
    token = await _client_token(world)
    for _ in range(2):  # the second one is answered from the proxy's token cache
        r = await world.request("GET", "/s/echo/api/items", token=token)
        assert r.status == 200, r.body
    assert world.echo.seen[-1]["raw_path"] == "/api/items"

    # what `govgate client disable` does, from another process's services: the
    # gateway learns of it only through its deny-list refresh
    other = open_services(services.settings, writer="other-process")
    try:
        apply_state(other, {"clients": [{
            "client_id": SYNC[0], "name": "回显同步", "department": "jgswj",
            "grant_types": ["client_credentials"], "scope": "proxy",
            "token_endpoint_auth_method": "client_secret_basic", "status": "disabled"}]})
        await asyncio.to_thread(parts(other).provider.end_client_tokens, SYNC[0])
    finally:
        other.audit.close_sync()
        other.close()
    seen = len(world.echo.seen)
    start = time.monotonic()
    while (r := await world.request("GET", "/s/echo/api/items", token=token)).status == 200:
        assert time.monotonic() - start < 1.0, "still served a second after the disable"
        await asyncio.sleep(0.02)
    assert r.status == 401
    assert len(world.echo.seen) - seen < 60  # whatever passed, passed within the second
    refused = [rec for rec in world.audit.records if rec.status == 401]
    # answered from the proxy's token cache ("token revoked") or by a fresh check
    assert refused and refused[-1].outcome == "deny"
    assert refused[-1].reason in ("token revoked", "client disabled")
