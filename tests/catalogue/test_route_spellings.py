"""A governed route is governed under every spelling an upstream may read as the same.

``cheliang`` is the demo's vehicle system behind a path reader as lax as many real
department systems (``tests.catalogue.conftest.lax_path``): it serves its raw records
for ``/API/Vehicles``, ``/api/vehicles;x=1``, ``/api/vehicles.``, ``/Api/vehicles/``,
``/api/vehicles.json`` and ``/api/vehicles%3F``. With one broad, realistic policy
line per department in place, every spelling is shaped for the granted consumer or
refused, for everyone else refused, and never passed raw. A property test generates
spellings against the route matcher with the same lax reader as the model."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalogue.routes import RouteTable
from gateway.proxy.path import BadPath, parse
from gateway.statefile import dump_yaml, export_state
from policies import make_line
from tests.catalogue.conftest import World, lax_path
from tests.wiring import apply_state, parts

RAW_ID = "450102198305120031"  # a driver's full ID number in the upstream's records
RAW_PHONE = "13907710021"

GOVERNED = ["/api/vehicles", "/API/Vehicles", "/Api/vehicles/", "/api/VEHICLES",
            "/api/vehicles/", "/%61pi/vehicles", "/api/v%65hicles",
            # dotless ı and dotted İ (Java's equalsIgnoreCase, case-insensitive regexes
            # read them as i), full-width ａ (NFKC), the long s
            "/api/veh%C4%B1cles", "/api/veh%C4%B0cles", "/%EF%BD%81pi/vehicles",
            "/api/vehicle%C5%BF"]
AMBIGUOUS = ["/api/vehicles;x=1", "/api/vehicles.", "/api/vehicles.json", "/api/vehicles%20",
             "/api/vehicles%3F", "/api/vehicles%23", "/api;v=1/vehicles", "/API/Vehicles;",
             "/api/vehicles%2e", "/Api/Vehicles.xml", "/api/vehicles%3b",
             # Spring MVC's suffix pattern match (before 5.3), IIS's stream name
             "/api/vehicles.a.b", "/api/vehicles.-", "/api/vehicles::$DATA"]


def vehicle_resource(code: str, system: str, name: str) -> dict[str, Any]:
    """The demo's vehicle resource (a conditional share with masked and encrypted
    items) published on ``system``'s ``GET /api/vehicles``."""
    return {"code": code, "name": name, "provider": "jgswj",
            "system": system, "share_type": "conditional", "conditions": "仅用于费用核算",
            "basis": "公务用车管理办法", "status": "published",
            "route": {"method": "GET", "path": "/api/vehicles", "records": "items"},
            "items": [
                {"name": "plate_number", "title": "车牌号"},
                {"name": "brand", "title": "品牌型号"},
                {"name": "driver_name", "title": "驾驶员姓名", "mask": "keep_first_char"},
                {"name": "driver_id_number", "title": "驾驶员身份证号", "level": 3,
                 "mask": "keep_last_4"},
                {"name": "driver_phone", "title": "驾驶员手机号", "level": 3,
                 "encrypt": True}]}


@pytest.fixture
def cheliang(world: World) -> World:
    apply_state(world.services, {
        "catalogue": [vehicle_resource("JG-0101", "cheliang", "公务用车信息（车辆平台）")],
        "grants": [{"resource": "JG-0101", "consumer": "czt",
                    "items": ["plate_number", "brand", "driver_name", "driver_phone"],
                    "purpose": "费用核算", "until": "2027-12-31"}],
        # the broad lines that opened the hole: every GET below the system, even marked
        # as bypassing the catalogue on purpose, never open a governed route
        "policies": [
            {"subject": "dept:czt", "department": "czt", "object": "/s/cheliang/*",
             "action": "GET", "ungoverned": True, "reason": "车辆平台其他接口"},
            {"subject": "dept:nn-jgsw", "department": "nn-jgsw", "object": "/s/cheliang/*",
             "action": "GET", "ungoverned": True, "reason": "车辆平台其他接口"},
        ],
    })
    parts(world.services).catalogue.invalidate()
    return world


def assert_not_raw(text: str) -> None:
    assert RAW_ID not in text and RAW_PHONE not in text and "李建国" not in text


async def test_the_upstream_really_is_lax(cheliang: World) -> None:
    """The provider (unshaped by design) reads the raw records under a case spelling:
    the upstream serves them there, so a miss in the matcher would leak them."""
    r = await cheliang.get("/s/cheliang/API/Vehicles", cheliang.token("jgswj", "office-web"))
    assert r.status_code == 200 and RAW_ID in r.text


@pytest.mark.parametrize("spelling", GOVERNED)
async def test_every_governed_spelling_is_shaped_or_refused(cheliang: World,
                                                            spelling: str) -> None:
    granted = await cheliang.get(f"/s/cheliang{spelling}", cheliang.token("czt"))
    assert granted.status_code == 200, granted.text
    assert_not_raw(granted.text)
    first = granted.json()["items"][0]
    assert set(first) == {"plate_number", "brand", "driver_name", "driver_phone"}
    assert first["driver_name"] == "李**" and first["driver_phone"].count(".") == 4  # JWE
    rec = cheliang.records("proxy_request")[-1]
    assert rec["resource"] == "JG-0101" and rec["items"] == [
        "plate_number", "brand", "driver_name", "driver_phone"]
    other = await cheliang.get(f"/s/cheliang{spelling}", cheliang.token("nn-jgsw", "nn-client"))
    assert other.status_code == 403
    assert_not_raw(other.text)
    assert cheliang.records("proxy_request")[-1]["resource"] == "JG-0101"


@pytest.mark.parametrize("spelling", AMBIGUOUS)
async def test_ambiguous_spellings_are_refused_and_audited(cheliang: World,
                                                           spelling: str) -> None:
    for department, client in (("czt", "finance-system"), ("nn-jgsw", "nn-client")):
        r = await cheliang.get(f"/s/cheliang{spelling}", cheliang.token(department, client))
        assert r.status_code == 400, (department, r.text)
        assert r.json()["type"] == "urn:govgate:error:ambiguous_path"
        assert_not_raw(r.text)
        rec = cheliang.records("proxy_request")[-1]
        assert rec["status"] == 400 and rec["outcome"] == "error"
        assert rec["resource"] == "JG-0101" and rec["items"] == []
        assert rec["extra"]["path"] == f"/s/cheliang{spelling}"  # as the client sent it
        assert "ambiguous spelling" in rec["reason"]
        verdict = await cheliang.http.get("/auth/verify", headers={
            "Authorization": f"Bearer {cheliang.token(department, client)}",
            "X-Original-URI": f"/s/cheliang{spelling}", "X-Original-Method": "GET"})
        assert verdict.status_code == 403


async def test_another_method_on_a_governed_route_is_refused_to_others(cheliang: World) -> None:
    """Many upstreams answer any method on a route (PHP, Express app.all, a body's
    _method): a POST to the GET route is refused to another department even with an
    ungoverned line for POST, and left to policy for the provider."""
    parts(cheliang.services).policies.add(make_line(
        "dept:czt", "czt", "/s/cheliang/*", "POST", ungoverned="车辆平台的提交接口"))
    for spelling in ("/api/vehicles", "/API/Vehicles/", "/api/vehicles;x=1"):
        r = await cheliang.http.post(f"/s/cheliang{spelling}", json={}, headers={
            "Authorization": f"Bearer {cheliang.token('czt')}"})
        assert r.status_code == 403, (spelling, r.text)
        assert_not_raw(r.text)
        rec = cheliang.records("proxy_request")[-1]
        assert rec["resource"] == "JG-0101" and "POST on the route of JG-0101" in rec["reason"]
    own = await cheliang.http.post("/s/cheliang/api/vehicles", json={}, headers={
        "Authorization": f"Bearer {cheliang.token('jgswj', 'office-web')}"})
    # the provider's own system, its own rules: let through (its server has no POST)
    assert own.status_code == 405
    assert cheliang.records("proxy_request")[-1]["outcome"] == "allow"


async def test_a_path_below_a_governed_route_names_it(cheliang: World) -> None:
    r = await cheliang.get("/s/cheliang/api/vehicles/x/y", cheliang.token("czt"))
    rec = cheliang.records("proxy_request")[-1]
    assert rec["request_id"] == r.headers["x-request-id"]
    assert rec["resource"] is None and rec["extra"]["resembles"] == "JG-0101"


# -- property: whatever a lax upstream serves as the governed route is governed or refused

_LETTERS = st.sampled_from(["upper", "lower", "encoded"])
_TAILS = st.sampled_from(["", "/", ";", ";x=1", ".", "..", ". ", ".json", ".xml", "%20",
                          "%3F", "%3Fa=1", "%23", "%09", "%2e", ";jsessionid=ABC/", "%3b"])


def _spell(path: str, choices: list[str], tail: str, inner: str) -> str:
    out = []
    for ch, how in zip(path, choices, strict=True):
        if ch in string.ascii_letters and how == "upper":
            out.append(ch.upper())
        elif ch in string.ascii_letters and how == "encoded":
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    spelled = "".join(out)
    head, _, last = spelled.rpartition("/")
    return f"{head}{inner}/{last}{tail}"


TABLE: RouteTable[str] = RouteTable([("GET", "/api/vehicles", "JG-0101"),
                                     ("GET", "/api/rooms/{room}", "JG-0102")])


@settings(max_examples=400, deadline=None)
@given(choices=st.lists(_LETTERS, min_size=13, max_size=13), tail=_TAILS,
       inner=st.sampled_from(["", ";v=1", ".", "%20"]))
def test_generated_spellings_are_governed_or_refused(choices: list[str], tail: str,
                                                     inner: str) -> None:
    raw = "/s/cheliang" + _spell("/api/vehicles", choices, tail, inner)
    try:
        target = parse(raw.encode("ascii"))
    except BadPath:
        return  # refused before any decision
    governed: Any = TABLE.match("GET", target.path)
    if lax_path(target.path) == "/api/vehicles":
        assert governed is not None or TABLE.resembling("GET", target.path) == "JG-0101", raw
    if governed is not None:
        assert governed.target == "JG-0101", raw


async def test_a_case_sensitive_system_matches_letter_for_letter(world: World) -> None:
    """The demo's vehicle system is a case-sensitive server: declared so, ``/API/Vehicles``
    is another path there (its server answers 404), decided by policy alone; the
    ambiguous spellings stay refused."""

    s = world.services
    system = parts(s).proxy.systems.get("vehicles")
    assert system is not None and not system.case_sensitive
    upstream = system.upstream
    apply_state(s, {
        "systems": [{"code": "vehicles", "name": "公务用车管理平台", "department": "jgswj",
                     "upstream": upstream,
                     "case_sensitive_paths": True}],
        "policies": [{"subject": "dept:czt", "department": "czt", "object": "/s/vehicles/*",
                      "action": "GET", "ungoverned": True, "reason": "车辆平台其他接口"}]})
    parts(s).proxy.systems.invalidate()
    parts(s).policies.refresh()  # else within a second, as every process
    token = world.token("czt")
    other_case = await world.get("/s/vehicles/API/Vehicles", token)
    assert other_case.status_code == 404  # the policy let it through; the server has no such path
    assert_not_raw(other_case.text)
    assert world.records("proxy_request")[-1]["resource"] is None
    shaped = await world.get("/s/vehicles/api/vehicles", token)
    assert shaped.status_code == 200 and shaped.json()["items"][0]["driver_name"] == "李**"
    refused = await world.get("/s/vehicles/api/vehicles;x=1", token)
    assert refused.status_code == 400
    assert "case_sensitive_paths: true" in dump_yaml(export_state(s.engine))
