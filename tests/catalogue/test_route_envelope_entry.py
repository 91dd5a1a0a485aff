"""A route's ``envelope:`` list where people write it: the catalogue API (its JSON
Schema and the model's problems), ``govgate catalogue import/export`` (YAML and CSV;
the fixtures of tests/catalogue/test_route_query_entry.py), and the migration that
adds its column to a catalogue stored before."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from catalogue.store import load_resources
from gateway.storage import create_engine, upgrade
from tests.catalogue.stored_routes import columns, migrate, store_at, stored_column
from tests.catalogue.test_route_query_entry import (  # noqa: F401 (fixtures)
    ENTRY,
    P,
    client,
    invoke,
)

ROUTE = {"method": "GET", "path": "/api/vehicle-costs", "records": "data.items",
         "envelope": ["total", "page.next"]}


def test_the_api_saves_and_shows_the_list_and_refuses_bad_keys(
        client: TestClient) -> None:  # noqa: F811
    r = client.post(P, json={**ENTRY, "route": ROUTE})
    assert r.status_code == 200, r.text
    assert client.get(f"{P}/CZ-0002").json()["resource"]["route"] == ROUTE
    for envelope, says in [(["a b"], "route.envelope[0]"), (["next", "next"], "route.envelope"),
                           ("next", "route.envelope"), (["data"], "records' path"),
                           (["data.items.x"], "records' path"), (["x" * 201], "envelope[0]"),
                           ([f"k{n}" for n in range(51)], "50")]:
        bad = client.post(P, json={**ENTRY, "route": {**ROUTE, "envelope": envelope}})
        assert bad.status_code == 400, (envelope, bad.text)
        assert bad.headers["content-type"] == "application/problem+json"
        assert any(says in e for e in bad.json()["errors"]), (envelope, bad.json())
    # nothing of the refused saves was kept; the list can be removed again
    assert client.get(f"{P}/CZ-0002").json()["resource"]["route"] == ROUTE
    unlisted = client.post(P, json={**ENTRY, "route": {**ROUTE, "envelope": None}})
    assert "envelope" not in unlisted.json()["resource"]["route"]


def test_import_and_export_carry_the_list(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    yaml_file = tmp_path / "cat.yaml"
    invoke("export", "-o", str(yaml_file))
    text = yaml_file.read_text(encoding="utf-8")
    listed = text.replace("path: /api/vehicles\n    records: items\n",
                          "path: /api/vehicles\n    records: items\n"
                          "    envelope:\n    - total\n    - page.next\n", 1)
    assert listed != text
    yaml_file.write_text(listed, encoding="utf-8")
    assert invoke("import", "--dry-run", str(yaml_file)).startswith(
        "~ resource JG-0001 (route)\n")
    invoke("import", str(yaml_file))
    assert "envelope:\n    - total\n    - page.next\n" in invoke("show", "JG-0001")
    csv_text = invoke("export", "--format", "csv")
    assert "route_query,route_envelope," in csv_text.splitlines()[0]
    assert ",/api/vehicles,items,,total page.next," in csv_text
    csv_file = tmp_path / "cat.csv"
    csv_file.write_text(csv_text, encoding="utf-8")
    assert invoke("import", str(csv_file)) == "nothing to change\n"
    csv_file.write_text(csv_text.replace(",items,,total page.next,", ",items,,-,", 1),
                        encoding="utf-8")
    invoke("import", str(csv_file))
    assert "envelope: []\n" in invoke("show", "JG-0001")
    yaml_file.write_text(text.replace("path: /api/vehicles\n    records: items\n",
                                      "path: /api/vehicles\n    records: items\n"
                                      "    envelope: [total, 'a&b']\n", 1), encoding="utf-8")
    out = invoke("import", str(yaml_file), code=1)
    assert "route: envelope[1]: bad key 'a&b'" in out
    assert "envelope: []\n" in invoke("show", "JG-0001")  # the refused import wrote nothing


def test_the_migration_leaves_stored_routes_unlisted(empty_db_url: str) -> None:
    engine = create_engine(empty_db_url)
    try:
        store_at(engine, "0023_catalogue_route_query", route_query="limit")
        upgrade(engine)
        with engine.connect() as conn:
            (stored,) = load_resources(conn)
        assert stored.route.envelope is None and stored.route.query == ("limit",)
        migrate(engine, "0023_catalogue_route_query", down=True)
        assert stored_column(engine, "route_query") == "limit"
        assert "route_envelope" not in columns(engine)
    finally:
        engine.dispose()
