"""The envelope around a governed answer's records keeps only what the route names
(``route.envelope``, ``catalogue.envelope``): the demo's JG-0001 (granted to czt
without the driver's ID number) served by an upstream on a real socket that puts
data beside the records, through the gateway on a real socket (the fixtures of
tests/catalogue/test_route_query.py). Unlisted, a string (an ID number, a phone
number) or an object beside the records is dropped and the audit record names it;
only counts under the names of pagination stay. Listed, only the listed keys stay."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from catalogue.envelope import MAX_NAMED, keys_problems
from catalogue.model import Item
from catalogue.shaping import shape
from tests.catalogue.test_route_query import (  # noqa: F401 (fixtures)
    SECRET,
    VEHICLES,
    Shop,
    Upstream,
    jg_0001,
    shop,
)
from tests.wiring import apply_state

PHONE = "13800138000"


@dataclass
class Enveloping(Upstream):
    """The upstream answering its rows beside ``envelope``."""

    envelope: dict[str, Any] = field(default_factory=dict)

    def answer(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"items": rows, **self.envelope}


@pytest.fixture
def upstream() -> Enveloping:
    return Enveloping()


async def answered(at: Shop, envelope: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The consumer's answer to ``envelope`` beside the records, and its audit extra."""
    assert isinstance(at.upstream, Enveloping)
    at.upstream.envelope = envelope
    # the upstream really sends it: the provider (its own data, unshaped) gets it all
    own = await at.get(VEHICLES, who="jgswj")
    assert own.status_code == 200 and own.json() == {"items": own.json()["items"], **envelope}
    r = await at.get(VEHICLES)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert len(doc["items"]) == 2 and all("driver_id_number" not in row for row in doc["items"])
    rec = at.record(r)
    assert (rec["outcome"], rec["resource"]) == ("allow", "JG-0001")
    return doc, rec["extra"]


async def test_unlisted_the_envelope_keeps_pagination_counts(shop: Shop) -> None:  # noqa: F811
    # a number, a boolean or null under a name that is no pagination's ("cursor",
    # "score") is dropped as a string is (catalogue.pagination)
    doc, extra = await answered(shop, {
        "total": 2, "first_driver": SECRET, "note": f"王五 {PHONE}", "has_more": False,
        "cursor": None, "score": 1.5, "page": {"next": "abc", "size": 2}, "tags": [SECRET],
        "driverName": "李建国"})
    assert doc == {"items": doc["items"], "total": 2, "has_more": False}
    assert extra["envelope_dropped"] == ["first_driver", "note", "cursor", "score", "page",
                                         "tags"]
    assert extra["outside_records"] == ["driverName"]
    assert "envelope_dropped_more" not in extra
    # an envelope of many keys: the audit record names the first ones and counts the rest
    _, extra = await answered(shop, {f"k{n}": "v" for n in range(MAX_NAMED + 5)})
    assert extra["envelope_dropped"] == [f"k{n}" for n in range(MAX_NAMED)]
    assert extra["envelope_dropped_more"] == 5


async def test_a_route_that_lists_its_envelope_keeps_only_those(shop: Shop) -> None:  # noqa: F811
    apply_state(shop.services, {"catalogue": [
        jg_0001(envelope=["next", "page.next", "total", "driver_name", "link"])]})
    doc, extra = await answered(shop, {
        "total": 2, "next": "cursor-2", "count": 5, "note": f"王五 {PHONE}",
        "page": {"next": "p-2", "size": 2, "owner": SECRET}, "link": {"href": SECRET},
        "driver_name": "李建国", "Next": SECRET})
    assert doc == {"items": doc["items"], "total": 2, "next": "cursor-2",
                   "page": {"next": "p-2"}}
    assert extra["envelope_dropped"] == ["count", "note", "page.size", "page.owner", "link",
                                         "Next"]
    assert extra["outside_records"] == ["driver_name"]  # listed or not: an item's name
    # an empty list: nothing beside the records
    apply_state(shop.services, {"catalogue": [jg_0001(envelope=[])]})
    doc, extra = await answered(shop, {"total": 2, "next": "cursor-2"})
    assert doc == {"items": doc["items"]} and extra["envelope_dropped"] == ["total", "next"]


def test_keys_are_checked() -> None:
    assert keys_problems(None) == [] and keys_problems(["next", "page.next", "$count"]) == []
    assert keys_problems("next") == ["envelope must be a list of key names"]
    assert keys_problems(["next", "next"]) == [
        "envelope[1]: key 'next' listed twice (first at envelope[0])"]
    bad = keys_problems(["a b", "", "-x", 7, "x" * 201, "page.", ".next", "a..b"])
    assert [p.split(":")[0] for p in bad] == [f"envelope[{k}]" for k in range(8)]
    assert keys_problems([f"k{n}" for n in range(51)])[0] == "envelope names more than 50 keys"
    on_path = keys_problems(["data", "data.rows", "data.rows.x", "data.page", "datax"],
                            "data.rows")
    assert [p.split(":")[0] for p in on_path] == ["envelope[0]", "envelope[1]", "envelope[2]"]


def test_nested_records_keep_their_envelope_by_dotted_paths() -> None:
    """A common answer of a department's system: ``{"code": 0, "msg": "成功",
    "data": {"rows": [...], ...}}``; the levels along the records' path are envelope too."""
    body = json.dumps({"code": 0, "msg": "成功", "data": {
        "rows": [{"brand": "红旗 H5", "driver_phone": PHONE}], "total": 1,
        "page": {"next": "p-2", "owner": SECRET}, "note": PHONE}}).encode()
    items, allowed = [Item("brand", "品牌"), Item("driver_phone", "电话")], ["brand"]
    out = shape(body, records="data.rows", items=items, allowed=allowed)
    # "code" is the wrapper's outcome, a count: kept (若依's code == 200 checks); its
    # text "msg" only when the route lists it
    assert json.loads(out.body) == {"code": 0, "data": {"rows": [{"brand": "红旗 H5"}],
                                                        "total": 1}}
    assert out.dropped == ("msg", "data.page", "data.note") and out.outside == ()
    # an ID number under a status name is no status
    leaky = json.loads(body)
    leaky["code"] = 110101199001011234
    out = shape(json.dumps(leaky).encode(), records="data.rows", items=items, allowed=allowed)
    assert "code" not in json.loads(out.body) and out.dropped[0] == "code"
    out = shape(body, records="data.rows", items=items, allowed=allowed,
                envelope=("msg", "data.page.next", "data.page.owner.x"))
    assert json.loads(out.body) == {"msg": "成功", "data": {"rows": [{"brand": "红旗 H5"}],
                                                          "page": {"next": "p-2"}}}
    assert out.dropped == ("code", "data.total", "data.page.owner", "data.note")
