"""Route spellings × break-glass × ``assertion: per_caller``, on the proxy and
forward-auth: a system-wide break-glass opens no spelling of the system's catalogue
route (the catalogue resource JG-0001, ``GET /api/vehicles``), a resource one opens
only spellings the catalogue reads as that resource, and case or encoding variants of
``/s/{system}`` of the per-caller system are refused."""

from __future__ import annotations

from tests.break_glass.conftest import World, claims_of, world  # noqa: F401 (fixture)
from tests.catalogue.conftest import clock, services  # noqa: F401 (fixtures)
from tests.proxy.test_forward_auth import verify_headers
from tests.seams.conftest import upstream_of
from tests.wiring import apply_state

# spellings of the governed route GET /api/vehicles below /s/vehicles
SPELLINGS = ("/api/vehicles", "/api/vehicles/", "/api/Vehicles", "/API/vehicles",
             "/api/%76ehicles", "/api/vehicles;x", "/api/vehicles%3B", "/api/vehicles.",
             "/api/vehicles%2e", "/api/vehicles%20", "/api//vehicles", "/api/vehicles/?",
             "/api/%EF%BD%96ehicles", "/api/vehicles%00")


async def both(w: World, path: str, method: str = "GET") -> tuple[int, int]:
    """The statuses of the proxy's and forward-auth's answers for wang.wu."""
    proxied = await w.call(method, path, "wang.wu")
    verified = await w.call("GET", "/auth/verify", "wang.wu",
                            headers=dict(verify_headers(path, method)))
    return proxied.status_code, verified.status_code


def resources(w: World, n: int) -> list[object]:
    return [r["resource"] for r in w.records("forward_auth")[-n:]]


async def test_spellings_never_widen_a_break_glass(world: World) -> None:  # noqa: F811
    """One world for both (a world costs more than the cases)."""
    apply_state(world.services, {"systems": [
        {"code": "vehicles", "name": "公务用车", "department": "jgswj",
         "upstream": upstream_of(world.services, "vehicles"),
         "assertion": "per_caller"}]})
    bg = await world.active(system="vehicles", resource="JG-0001")
    await _a_resource_break_glass_opens_only_what_reads_as_it(world)
    r = await world.call("POST", f"/api/v1/break-glass/{bg['id']}/end", "sec.a",
                         json={"reason": "故障已排除"})
    assert r.status_code == 200, r.text
    await world.active(system="vehicles")
    await _a_system_break_glass_opens_no_spelling_of_the_resource(world)


async def _a_system_break_glass_opens_no_spelling_of_the_resource(w: World) -> None:
    for spelling in SPELLINGS:
        got = await both(w, "/s/vehicles" + spelling)
        assert got[0] in (400, 403) and got[1] == 403, (spelling, got)
    assert await both(w, "/s/vehicles/healthz") == (200, 200)
    r = await w.call("GET", "/auth/verify", "wang.wu",
                     headers=dict(verify_headers("/s/vehicles/healthz")))
    assert claims_of(r.headers["x-govgate-assertion"])["break_glass"]["resource"] is None
    for system in ("Vehicles", "VEHICLES", "%76ehicles", "vehicles%2F", "vehicles%20"):
        got = await both(w, f"/s/{system}/healthz")
        assert got[0] in (400, 404) and got[1] == 403, (system, got)


async def _a_resource_break_glass_opens_only_what_reads_as_it(w: World) -> None:
    opened = []
    for spelling in SPELLINGS:
        got = await both(w, "/s/vehicles" + spelling)
        # forward-auth never: the answer is cut to the resource's shareable items,
        # which nginx cannot do (shaping_required)
        assert got[1] == 403, (spelling, got)
        if got[0] in (200, 307):  # 307: the upstream's redirect of a trailing slash
            opened.append(spelling)
            assert [r["resource"] for r in w.records("proxy_request")[-1:]] == ["JG-0001"]
            assert resources(w, 1) == ["JG-0001"], spelling
        else:
            assert got[0] in (400, 403, 404), (spelling, got)
    assert "/api/vehicles" in opened
    assert w.records("forward_auth")[-1]["status"] == 403
    # the system's other paths stay closed, in any spelling
    for path in ("/healthz", "/HEALTHZ", "/api/other", "/api/vehicles/1"):
        assert await both(w, "/s/vehicles" + path) == (403, 403), path
