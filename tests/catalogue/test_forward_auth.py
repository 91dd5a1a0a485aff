"""Forward-auth (``/auth/verify``) where the catalogue governs the route, and the one
admission step it shares with ``/s/``: the same table of requests through both must
get the same verdict (forward-auth allows only what ``/s/`` would send unshaped),
and every request leaves exactly one audit record.

The demo's catalogue and its real upstream systems behind a real gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from tests.catalogue.conftest import World
from tests.wiring import parts


def verify_headers(uri: str, method: str = "GET") -> dict[str, str]:
    return {"X-Original-URI": uri, "X-Original-Method": method}


async def verify(world: World, uri: str, token: str, method: str = "GET") -> httpx.Response:
    return await world.http.get("/auth/verify", headers={
        **verify_headers(uri, method), "Authorization": f"Bearer {token}"})


def record_of(world: World, response: httpx.Response) -> dict[str, Any]:
    """The one audit record of ``response`` (by its request id)."""
    rid = response.headers["x-request-id"]
    found = [r for r in world.records("") if r["request_id"] == rid]
    assert len(found) == 1, (rid, found)
    return found[0]


async def test_unconditional_masked_resource_is_refused_not_passed_raw(world: World) -> None:
    # JG-0002 masks the occupant's name for other departments: nginx would pass the raw body
    r = await verify(world, "/s/offices/api/rooms", world.token("nn-jgsw", "nn-client"))
    assert r.status_code == 403, r.text
    assert "x-govgate-assertion" not in r.headers
    problem = r.json()
    assert problem["type"] == "urn:govgate:error:shaping_required"
    assert "/s/offices/" in problem["detail"] and "JG-0002" in problem["detail"]
    rec = record_of(world, r)
    assert rec["event_type"] == "forward_auth" and rec["outcome"] == "deny"
    assert rec["status"] == 403 and rec["resource"] == "JG-0002"
    assert "forward-auth cannot change a response body" in rec["reason"]
    # the same request through /s/ is masked, not refused
    shaped = await world.get("/s/offices/api/rooms", world.token("nn-jgsw", "nn-client"))
    assert shaped.status_code == 200 and shaped.json()["items"][0]["occupant_name"] == "张*"


async def test_conditional_resource_with_and_without_grant_and_expired(world: World) -> None:
    granted = await verify(world, "/s/vehicles/api/vehicles", world.token("czt"))
    assert granted.status_code == 403 and granted.json()["type"].endswith(":shaping_required")
    rec = record_of(world, granted)
    assert rec["resource"] == "JG-0001" and rec["purpose"] == "费用核算"

    none = await verify(world, "/s/vehicles/api/vehicles", world.token("nn-jgsw", "nn-client"))
    assert none.status_code == 403 and none.json()["type"].endswith(":access_denied")
    rec = record_of(world, none)
    assert rec["resource"] == "JG-0001"
    assert rec["reason"] == "JG-0001 is conditional (有条件共享): no grant for department nn-jgsw"

    world.clock.now = datetime(2028, 1, 1, tzinfo=UTC)
    parts(world.services).catalogue.invalidate()
    expired = await verify(world, "/s/vehicles/api/vehicles", world.token("czt"))
    assert expired.status_code == 403 and expired.json()["type"].endswith(":access_denied")
    assert "expired after 2027-12-31" in record_of(world, expired)["reason"]


async def test_provider_and_ungoverned_routes_pass_as_before(world: World) -> None:
    own = await verify(world, "/s/vehicles/api/vehicles", world.token("jgswj", "office-web"))
    assert own.status_code == 200 and own.headers["x-govgate-department"] == "jgswj"
    rec = record_of(world, own)
    assert rec["outcome"] == "allow" and rec["resource"] == "JG-0001"
    claims = world.services.keys.verify_jwt("assertion", own.headers["x-govgate-assertion"])
    assert claims["aud"] == "vehicles" and claims["request_id"] == rec["request_id"]
    # HEAD has no body to shape, but the assertion it would get serves a GET as well
    head = await verify(world, "/s/offices/api/rooms", world.token("nn-jgsw", "nn-client"),
                        method="HEAD")
    assert head.status_code == 403 and "x-govgate-assertion" not in head.headers
    assert head.json()["type"].endswith(":shaping_required")
    # a route the catalogue does not govern is the policy's alone
    free = await verify(world, "/s/vehicles/healthz", world.token("jgswj", "office-web"))
    assert free.status_code == 200 and record_of(world, free)["resource"] is None


# (caller department, client, method, path below /s/)
TABLE: list[tuple[str | None, str, str, str]] = [
    ("czt", "finance-system", "GET", "/s/vehicles/api/vehicles"),  # granted: shaped
    ("czt", "finance-system", "GET", "/s/vehicles/API/Vehicles/"),  # another spelling
    ("czt", "finance-system", "GET", "/s/vehicles/api/vehicles;x=1"),  # ambiguous: 400
    ("czt", "finance-system", "GET", "/s/vehicles/api/vehicles.json"),
    ("czt", "finance-system", "HEAD", "/s/vehicles/api/vehicles"),  # no body, still shaped
    ("czt", "finance-system", "GET", "/s/assets/api/assets"),  # its own resource
    ("nn-jgsw", "nn-client", "GET", "/s/vehicles/api/vehicles"),  # no grant
    ("nn-jgsw", "nn-client", "GET", "/s/offices/api/rooms"),  # unconditional, masked
    ("jgswj", "office-web", "GET", "/s/vehicles/api/vehicles"),  # provider
    ("jgswj", "office-web", "GET", "/s/assets/api/assets"),  # not shared
    ("jgswj", "office-web", "GET", "/s/vehicles/healthz"),  # ungoverned, own system
    ("czt", "finance-system", "GET", "/s/vehicles/healthz"),  # ungoverned, other's
    ("czt", "finance-system", "GET", "/s/nosuch/x"),  # unknown system
    ("czt", "finance-system", "GET", "/s/vehicles/api/%2e%2e/x"),  # bad path
    (None, "", "GET", "/s/vehicles/api/vehicles"),  # no credentials
]


async def test_proxy_and_forward_auth_agree_on_every_request(world: World) -> None:
    for department, client, method, path in TABLE:
        headers = {}
        if department is not None:
            headers["Authorization"] = f"Bearer {world.token(department, client)}"
        via_proxy = await world.http.request(method, path, headers=headers)
        via_verify = await world.http.get("/auth/verify", headers={
            **headers, **verify_headers(path, method)})
        case = (department, method, path, via_proxy.status_code, via_verify.status_code)
        proxied = record_of(world, via_proxy)
        checked = record_of(world, via_verify)
        assert proxied["event_type"] == "proxy_request", case
        assert checked["event_type"] == "forward_auth", case
        # what /s/ would send unshaped: a 2xx answer with no catalogue shaping
        shaped = bool(proxied["extra"].get("shape"))  # the catalogue cuts, masks, encrypts
        if via_proxy.status_code == 401:
            assert via_verify.status_code == 401, case
        elif 200 <= via_proxy.status_code < 300 and not shaped:
            assert via_verify.status_code == 200, case
        else:
            assert via_verify.status_code == 403, case
        # both name the same resource and decide for the same reason (unless
        # forward-auth refused because the answer needs shaping)
        assert checked["resource"] == proxied["resource"], case
        if "forward-auth cannot change" not in checked["reason"]:
            assert checked["reason"] == proxied["reason"], case
