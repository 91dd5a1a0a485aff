"""Catalogue changes read what is stored, then write: they succeed while another
connection commits in between (tests.interleave)."""

from __future__ import annotations

from catalogue import Actor
from gateway.services import Services
from tests.interleave import commit_between_read_and_write
from tests.wiring import parts

STEWARD = Actor("zhao.min", "czt", frozenset({"data_steward"}))
ENTRY = {
    "code": "CZ-0002", "name": "公务用车费用台账", "provider": "czt", "system": "assets",
    "share_type": "conditional", "conditions": "费用核算",
    "route": {"method": "GET", "path": "/api/vehicle-costs", "records": "items"},
    "items": [{"name": "plate", "title": "车牌号"}, {"name": "cost", "title": "费用"}],
}


def test_save_publish_retire_and_import(services: Services) -> None:
    cat, engine = parts(services).catalogue, services.engine
    with commit_between_read_and_write(engine):
        assert cat.save(STEWARD, ENTRY)[0].status == "draft"
    with commit_between_read_and_write(engine):
        assert cat.publish(STEWARD, "CZ-0002")[0].status == "published"
    with commit_between_read_and_write(engine):
        assert cat.retire(STEWARD, "CZ-0002")[0].status == "retired"
    with commit_between_read_and_write(engine):
        planned, _ = cat.import_doc({"catalogue": [{**ENTRY, "name": "费用台账"}]}, actor="t")
    assert [str(p) for p in planned] == ["~ resource CZ-0002 (name)"]
