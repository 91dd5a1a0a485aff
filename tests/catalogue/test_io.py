"""CSV and YAML import/export, row-numbered errors, duplicates report, search."""

from __future__ import annotations

import pytest

from catalogue import Actor, InvalidInput
from catalogue.io import load_yaml, read_csv
from gateway.services import Services
from tests.wiring import parts

HEADER = ("code,name,provider,system,share_type,conditions,route_method,route_path,"
          "route_records,item_name,item_title,item_level,item_mask,item_encrypt,"
          "item_authoritative\n")


def test_csv_round_trip_is_a_no_op(services: Services) -> None:
    cat = parts(services).catalogue
    text = cat.export_csv()
    assert text.splitlines()[0].startswith("code,name,summary,provider")
    planned, warnings = cat.import_csv(text, actor="test")
    assert planned == [] and warnings == []


def test_csv_import_creates_with_chinese_headers(services: Services) -> None:
    text = (
        "资源代码,资源名称,提供方,系统,共享类型,共享条件,路径,记录位置,信息项,信息项名称,分级,权威来源\n"
        "JG-0009,车辆维修记录,jgswj,vehicles,有条件共享,仅用于费用核算,/api/repairs,items,"
        "repair_id,维修单号,1,是\n"
        "JG-0009,,,,,,,,cost,维修费用,2,否\n"
    )
    planned, _ = parts(services).catalogue.import_csv(text, actor="test")
    assert [str(p) for p in planned] == ["+ resource JG-0009"]
    r = parts(services).catalogue.get("JG-0009")
    assert r.share_type == "conditional" and r.item_names == ("repair_id", "cost")
    assert r.item("repair_id").authoritative and r.item("cost").level == 2
    assert r.route.method == "GET" and r.status == "published"


def test_csv_errors_name_their_rows(services: Services) -> None:
    text = HEADER + (
        "X-1,资源一,jgswj,vehicles,conditional,条件,GET,/api/x,items,a,A,1,,false,false\n"
        "X-1,资源一,jgswj,vehicles,conditional,条件,GET,/api/x,items,b,B,9,,false,false\n"
        "X-1,改名,jgswj,vehicles,conditional,条件,GET,/api/x,items,c,C,1,blur,maybe,false\n"
        "X-2,资源二,ghost,vehicles,sometimes,,GET,/api/y,items,d,D,1,,,\n"
        ",资源三,jgswj,vehicles,conditional,条件,GET,/api/z,items,e,E,1,,,\n"
        "X-3,资源三,jgswj,vehicles,conditional,条件,GET,/api/vehicles,items,bad name,E,x,,,\n"
    )
    with pytest.raises(InvalidInput) as info:
        parts(services).catalogue.import_csv(text, actor="test")
    problems = info.value.problems
    for expected in [
        "row 3: items[1]: level must be 1, 2, 3 or 4",
        "row 4: name '改名' differs from row 2",
        "row 4: item_encrypt must be true or false",
        "row 4: items[2]: mask must be one of",
        "row 5: share_type must be one of",
        "row 6: code is empty",
        "row 7: item_level must be a number 1-4",
        "row 7: items[0]: bad item name 'bad name'",
    ]:
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert parts(services).catalogue.search(q="资源") == []  # nothing written


def test_csv_reference_errors_by_row(services: Services) -> None:
    text = HEADER + (
        "X-2,资源二,ghost,vehicles,conditional,条件,GET,/api/y,items,d,D,1,,,\n"
        "X-3,资源三,jgswj,vehicles,conditional,条件,GET,/api/vehicles,items,e,E,1,,,\n"
    )
    with pytest.raises(InvalidInput) as info:
        parts(services).catalogue.import_csv(text, actor="test")
    assert info.value.problems == [
        "row 2: unknown provider department 'ghost'",
        "row 2: system 'vehicles' belongs to jgswj, not to the provider ghost",
        "row 3: route GET /api/vehicles is already the route of JG-0001",
    ]


def test_bad_header_and_empty_file() -> None:
    assert read_csv("")[2] == ["row 1: the file is empty (needs a header row)"]
    assert read_csv("code,colour\n")[2][0].startswith("row 1: unknown column(s) colour")


def test_yaml_export_and_import(services: Services) -> None:
    cat = parts(services).catalogue
    text = cat.export_yaml(with_grants=True)
    doc = load_yaml(text)
    assert [e["code"] for e in doc["catalogue"]] == ["CZ-0001", "JG-0001", "JG-0002"]
    assert cat.import_doc(doc, actor="test") == ([], [])
    doc["catalogue"][1]["name"] = "公务用车基础信息(新)"
    planned, _ = cat.import_doc(doc, actor="test", dry_run=True)
    assert [str(p) for p in planned] == ["~ resource JG-0001 (name)"]
    assert cat.get("JG-0001").name == "公务用车基础信息"  # dry run
    with pytest.raises(InvalidInput, match="unknown section"):
        load_yaml("users: []\n")


def test_duplicates_report_and_publish_warning(services: Services) -> None:
    cat = parts(services).catalogue
    steward = Actor("zhao.min", "czt", frozenset({"data_steward"}))
    entry = {
        "code": "CZ-0002", "name": "公务用车费用台账", "provider": "czt", "system": "assets",
        "share_type": "conditional", "conditions": "费用核算",
        "route": {"method": "GET", "path": "/api/vehicle-costs", "records": "items"},
        "items": [{"name": "plate", "title": "车牌号"}, {"name": "cost", "title": "费用"}],
    }
    saved, warnings = cat.save(steward, entry)
    assert saved.status == "draft" and len(warnings) == 1
    published, warnings = cat.publish(steward, "CZ-0002")
    assert published.status == "published"
    assert warnings == [
        "item plate of CZ-0002 (czt) is already provided as authoritative by jgswj in "
        "JG-0001 公务用车基础信息 (item plate_number): reuse that source instead of "
        "collecting it again"
    ]
    overlaps = cat.duplicates()
    assert [(o.resource, o.item, o.source_resource) for o in overlaps] == [
        ("CZ-0002", "plate", "JG-0001")]


def test_search(services: Services) -> None:
    cat = parts(services).catalogue
    codes = lambda rs: [r.code for r in rs]  # noqa: E731
    assert codes(cat.search(q="车辆")) == ["JG-0001"]
    assert codes(cat.search(q="jg-0002")) == ["JG-0002"]
    assert codes(cat.search(department="czt")) == ["CZ-0001"]
    assert codes(cat.search(share_type="unconditional")) == ["JG-0002"]
    assert codes(cat.search(item="driver_phone")) == ["JG-0001"]
    assert codes(cat.search(item="保管人")) == ["CZ-0001"]
    # part of a title or a name finds the item too
    assert codes(cat.search(item="身份证")) == ["JG-0001"]
    assert codes(cat.search(item="PHONE")) == ["JG-0001"]
    assert codes(cat.search(item=" 使用")) == ["JG-0002"]
    assert codes(cat.search(level=3)) == ["JG-0001"]
    assert codes(cat.search(q="身份证", level=3, department="jgswj")) == ["JG-0001"]
