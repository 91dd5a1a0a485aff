"""An old system's fixed credential at /s/ (gateway.proxy.static_credentials) gets the
catalogue's cut exactly as its client's token does: czt's grant of JG-0001, the items
not granted never sent. The wire (a real upstream, Basic over a socket) is proven in
tests/proxy/test_static_credentials.py; this is about the catalogue's decision."""

from __future__ import annotations

import base64

from tests.catalogue.conftest import World
from tests.catalogue.test_client_changes import VEHICLES
from tests.wiring import apply_state

SECRET = "energy-system-secret-0123456789abcdef"


async def test_a_basic_caller_gets_its_clients_catalogue_cut(world: World) -> None:
    apply_state(world.services, {"clients": [{
        "client_id": "energy-system", "name": "能耗监测系统", "department": "czt",
        "grant_types": ["client_credentials"], "scope": "proxy", "secret": SECRET,
        "static_credential": "basic"}]})
    basic = "Basic " + base64.b64encode(f"energy-system:{SECRET}".encode()).decode()
    r = await world.http.get(VEHICLES, headers={"Authorization": basic})
    assert r.status_code == 200, r.text
    by_basic = world.records("proxy_request")[-1]
    token = await world.get(VEHICLES, world.token("czt", "energy-system"))
    assert token.status_code == 200, token.text
    by_token = world.records("proxy_request")[-1]
    # the same cut: the grant's items less driver_phone (no encryption key registered)
    assert r.json() == token.json()
    assert set(r.json()["items"][0]) == {"plate_number", "brand", "driver_name"}
    assert by_basic["extra"]["authenticated_by"] == "basic"
    assert "authenticated_by" not in by_token["extra"]
    for key in ("items", "resource", "purpose", "actor_client", "department"):
        assert by_basic[key] == by_token[key], key
    assert by_basic["extra"]["withheld"] == by_token["extra"]["withheld"]
    assert SECRET not in str(by_basic)
