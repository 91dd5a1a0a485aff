"""The catalogue: and grants: sections through the real state-file applier."""

from __future__ import annotations

import copy

import pytest

from catalogue.model import PUBLISHED
from gateway.errors import StateFileError
from gateway.services import Services
from gateway.statefile import export_state, load_file, load_text
from tests.catalogue.conftest import DEMO
from tests.wiring import apply_state, parts


def test_demo_catalogue_applied_and_second_apply_changes_nothing(services: Services) -> None:
    cat = parts(services).catalogue
    codes = {r.code: r for r in cat.resources()}
    assert set(codes) == {"JG-0001", "JG-0002", "CZ-0001"}
    jg = codes["JG-0001"]
    assert jg.status == PUBLISHED and jg.version == 1 and jg.route.records == "items"
    assert jg.item("driver_phone").encrypt and jg.item("driver_name").mask == "keep_first_char"
    grants = parts(services).catalogue.snapshot().grants
    assert [(g.resource, g.consumer, g.items) for g in grants] == [
        ("JG-0001", "czt", ("plate_number", "brand", "driver_name", "driver_phone"))]
    assert apply_state(services, load_file(DEMO)) == []


def test_export_then_apply_is_a_no_op(services: Services) -> None:
    doc = export_state(services.engine, parts(services).state_sections())
    assert [e["code"] for e in doc["catalogue"]] == ["CZ-0001", "JG-0001", "JG-0002"]
    assert doc["grants"][0]["resource"] == "JG-0001"
    assert apply_state(services, doc) == []


def test_changes_are_planned_and_bump_the_version(services: Services) -> None:
    doc = load_file(DEMO)
    doc["catalogue"][0]["items"].append({"name": "fuel", "title": "燃料", "level": 1})
    doc["grants"][0]["until"] = "2028-06-30"
    changes = [str(c) for c in apply_state(services, doc)]
    assert changes == ["~ resource JG-0001 (items)", "~ grant JG-0001->czt (费用核算) (until)"]
    assert parts(services).catalogue.get("JG-0001").version == 2
    assert apply_state(services, doc) == []


def test_revoked_grant_stays_revoked(services: Services) -> None:
    from catalogue import Actor

    wf = parts(services).workflow
    g = wf.grants()[0]
    wf.revoke(Actor("ops", operator=True), g.id, "合同到期")
    assert apply_state(services, load_file(DEMO)) == []
    assert wf.get_grant(g.id).status == "revoked"


BAD = """\
catalogue:
  - code: X-1
    name: 坏资源
    provider: ghost
    system: vehicles
    share_type: sometimes
    route: {method: GET, path: /api/vehicles, records: items}
    items:
      - {name: a, title: A, level: 7, mask: scramble}
      - {name: a, title: A2, encrypt: maybe}
  - code: X-2
    name: 路由重复
    provider: jgswj
    system: vehicles
    share_type: conditional
    route: {method: GET, path: /api/vehicles}
    items: [{name: plate_number, title: 车牌号}]
grants:
  - {resource: JG-0002, consumer: czt, items: [room_id], purpose: x, until: 2027-01-01}
  - {resource: JG-0001, consumer: czt, items: [plate_number, nope], purpose: x,
     until: someday, client: office-web}
  - {resource: JG-0001, consumer: jgswj, items: [plate_number], purpose: y,
     until: 2027-01-01}
"""


def test_every_problem_with_its_place(services: Services) -> None:
    with pytest.raises(StateFileError) as info:
        apply_state(services, load_text(BAD))
    problems = info.value.problems
    expected = [
        "catalogue[0] (line 2): share_type must be one of",
        "catalogue[0] (line 2): items[0]: level must be 1, 2, 3 or 4",
        "catalogue[0] (line 2): items[0]: mask must be one of",
        "catalogue[0] (line 2): items[1]: duplicate item 'a'",
        "catalogue[0] (line 2): items[1]: encrypt must be true or false",
        "catalogue[0] (line 2): unknown provider department 'ghost'",
        "catalogue[1] (line 11): a conditional resource needs its conditions",
        "catalogue[1] (line 11): route GET /api/vehicles is already the route of JG-0001",
        "grants[0] (line 19): JG-0002 is unconditional",
        "grants[1] (line 20): JG-0001 has no item nope (its shared items: ",
        "grants[1] (line 20): until must be a date",
        "grants[1] (line 20): client 'office-web' belongs to jgswj, not to czt",
        "grants[2] (line 22): jgswj provides JG-0001 and needs no grant",
    ]
    for e in expected:
        assert any(p.startswith(e) for p in problems), (e, problems)


def test_a_grant_tells_a_withheld_item_from_one_the_resource_lacks(services: Services
                                                                   ) -> None:
    """An item the resource withholds (shareable: false) is "not shareable"; a name it
    does not have is said to be missing, with what it shares, not called unshareable
    (the walk of 2026-12-05: a typo read as a refusal)."""
    doc = load_file(DEMO)
    doc["catalogue"][0]["items"] = [{**i, "shareable": False}
                                    if i["name"] == "driver_id_number" else i
                                    for i in doc["catalogue"][0]["items"]]
    doc["grants"][0]["items"] = ["plate_number", "driver_id_number", "plate"]
    with pytest.raises(StateFileError) as info:
        apply_state(services, doc)
    assert [p.split(": ", 1)[1] for p in info.value.problems
            if p.startswith("grants[0]")] == [
        "JG-0001 has no item plate (its shared items: plate_number, brand, vehicle_type, "
        "mileage_km, driver_name, driver_phone)",
        "items not shareable in JG-0001: driver_id_number"]


def test_duplicate_collection_warning_on_apply(services: Services,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    doc = copy.deepcopy(load_file(DEMO))
    doc["catalogue"] = [{
        "code": "CZ-0002", "name": "公务用车费用台账", "provider": "czt", "system": "assets",
        "share_type": "conditional", "conditions": "费用核算",
        "route": {"method": "GET", "path": "/api/vehicle-costs", "records": "items"},
        "items": [{"name": "plate_number", "title": "车牌号"},
                  {"name": "cost", "title": "费用"}],
    }]
    doc.pop("grants")
    changes = [str(c) for c in apply_state(services, doc)]
    assert changes == ["+ resource CZ-0002"]
    err = capsys.readouterr().err
    assert "warning: item plate_number of CZ-0002 (czt) is already provided as authoritative " \
           "by jgswj in JG-0001 公务用车基础信息" in err
