"""A route's ``query:`` list where people write it: the catalogue API (its JSON Schema
and the model's problems), ``govgate catalogue import/export`` (YAML and CSV), and
the migration that adds its column to a catalogue stored before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from catalogue.store import load_resources
from gateway.cli.main import cli
from gateway.services import Services
from gateway.storage import create_engine, upgrade
from tests.catalogue.stored_routes import columns, migrate, store_at, stored_column
from tests.tokens import access_token
from tests.wiring import parts

P = "/api/v1/catalogue/resources"
ENTRY = {
    "code": "CZ-0002", "name": "公务用车费用台账", "provider": "czt", "system": "assets",
    "share_type": "conditional", "conditions": "费用核算",
    "route": {"method": "GET", "path": "/api/vehicle-costs", "records": "items",
              "query": ["plate_number", "$top"]},
    "items": [{"name": "plate_number", "title": "车牌号"}, {"name": "cost", "title": "费用"}],
}


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    from gateway.app import create_app

    token = access_token(services, sub="zhao.min", department="czt",
                         roles=("staff", "data_steward"), client_id="office-web")
    with TestClient(create_app(parts(services)),
                    headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"}) as c:
        yield c


def test_the_api_saves_and_shows_the_list_and_refuses_bad_names(client: TestClient) -> None:
    r = client.post(P, json=ENTRY)
    assert r.status_code == 200, r.text
    assert r.json()["resource"]["route"]["query"] == ["plate_number", "$top"]
    shown = client.get(f"{P}/CZ-0002").json()["resource"]["route"]
    assert shown == ENTRY["route"]
    unlisted = client.post(P, json={**ENTRY, "route": {"path": "/api/vehicle-costs"}})
    assert "query" not in unlisted.json()["resource"]["route"]
    for query, says in [(["a b"], "route.query[0]"), (["plate", "PLATE"], "listed twice"),
                        ("plate", "route.query"), ([f"p{k}" for k in range(51)], "50")]:
        bad = client.post(P, json={**ENTRY, "route": {**ENTRY["route"], "query": query}})
        assert bad.status_code == 400, (query, bad.text)
        assert bad.headers["content-type"] == "application/problem+json"
        assert any(says in e for e in bad.json()["errors"]), (query, bad.json())
    # nothing of the refused saves was kept
    assert "query" not in client.get(f"{P}/CZ-0002").json()["resource"]["route"]


@pytest.fixture
def invoke(services: Services, env: dict[str, str]):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def call(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["catalogue", *args], env=env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result.output

    return call


def test_import_and_export_carry_the_list(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    yaml_file = tmp_path / "cat.yaml"
    invoke("export", "-o", str(yaml_file))
    text = yaml_file.read_text(encoding="utf-8")
    listed = text.replace("path: /api/vehicles\n    records: items\n",
                          "path: /api/vehicles\n    records: items\n"
                          "    query:\n    - plate_number\n    - limit\n", 1)
    assert listed != text
    yaml_file.write_text(listed, encoding="utf-8")
    assert invoke("import", "--dry-run", str(yaml_file)).startswith(
        "~ resource JG-0001 (route)\n")
    invoke("import", str(yaml_file))
    assert "query:\n    - plate_number\n    - limit\n" in invoke("show", "JG-0001")
    csv_text = invoke("export", "--format", "csv")
    assert "route_records,route_query," in csv_text.splitlines()[0]
    assert ",/api/vehicles,items,plate_number limit," in csv_text
    csv_file = tmp_path / "cat.csv"
    csv_file.write_text(csv_text, encoding="utf-8")
    assert invoke("import", str(csv_file)) == "nothing to change\n"
    none = csv_text.replace(",items,plate_number limit,", ",items,-,", 1)
    csv_file.write_text(none, encoding="utf-8")
    invoke("import", str(csv_file))
    assert "query: []\n" in invoke("show", "JG-0001")
    yaml_file.write_text(text.replace("path: /api/vehicles\n    records: items\n",
                                      "path: /api/vehicles\n    records: items\n"
                                      "    query: [plate, 'a&b']\n", 1), encoding="utf-8")
    out = invoke("import", str(yaml_file), code=1)
    assert "route: query[1]: bad parameter name 'a&b'" in out
    assert "query: []\n" in invoke("show", "JG-0001")  # the refused import wrote nothing


def test_the_migration_adds_an_empty_list_to_stored_routes(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        store_at(engine, "0018_catalogue_steward")
        upgrade(engine)
        with engine.connect() as conn:
            (stored,) = load_resources(conn)
        assert stored.route.query is None and stored.route.records == "items"
        migrate(engine, "0018_catalogue_steward", down=True)
        assert stored_column(engine, "code") == "JG-0001"
        assert {"route_query", "route_envelope"}.isdisjoint(columns(engine))
        assert "route_records" in columns(engine)
    finally:
        engine.dispose()
