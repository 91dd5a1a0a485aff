"""Every free-text field of the catalogue has a maximum (catalogue.limits, documented in
docs/catalogue.md), and the same rule holds through the API, the portal, the CLI and
the state file: a value at the maximum is taken, one character more is refused with
the field and its maximum named. Values are Chinese, so characters (not bytes) count,
and on PostgreSQL a value at the maximum fits its column."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from starlette.testclient import TestClient

from catalogue.limits import MAX_LENGTH
from gateway.cli.main import cli
from gateway.errors import StateFileError
from gateway.services import Services
from tests.catalogue.test_api import SEC, STEWARD_CZT, STEWARD_JG, WANG, Api
from tests.wiring import parts

P = "/api/v1/catalogue"
ENTRY: dict[str, Any] = {
    "code": "CZ-0100", "name": "费用台账", "provider": "czt", "system": "assets",
    "share_type": "conditional", "conditions": "费用核算",
    "route": {"method": "GET", "path": "/api/limits", "records": "items"},
    "items": [{"name": "cost", "title": "费用"}],
}


def _text(n: int) -> str:
    return "资" * n


def _with(field: str, n: int) -> dict[str, Any]:
    """ENTRY with ``field`` exactly ``n`` characters long."""
    e = copy.deepcopy(ENTRY)
    if field == "title":
        e["items"][0]["title"] = _text(n)
    elif field == "path":
        e["route"]["path"] = "/" + "a" * (n - 1)
    elif field == "records":
        e["route"]["records"] = "a" * n
    else:
        e[field] = _text(n)
    return e


RESOURCE_FIELDS = ("name", "summary", "conditions", "basis", "update_cycle", "open_attr",
                   "title", "path", "records")


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    from gateway.app import create_app

    # the tests read the English of the refusals
    with TestClient(create_app(parts(services)), headers={"Accept-Language": "en"}) as client:
        yield Api(services, client)


def _long(field: str) -> str:
    return f"{field} longer than {MAX_LENGTH[field]} characters"


@pytest.mark.parametrize("field", RESOURCE_FIELDS)
def test_resource_text_through_the_api(api: Api, field: str) -> None:
    h = api.token(*STEWARD_CZT)
    r = api.client.post(f"{P}/resources", json=_with(field, MAX_LENGTH[field] + 1), headers=h)
    assert r.status_code == 400, r.text
    assert any(e.endswith(_long(field)) for e in r.json()["errors"]), r.json()
    r = api.client.post(f"{P}/resources", json=_with(field, MAX_LENGTH[field]), headers=h)
    assert r.status_code == 200, r.text
    stored = parts(api.services).catalogue.get("CZ-0100").to_entry()
    assert len(yaml.safe_dump(stored, allow_unicode=True)) > MAX_LENGTH[field]


@pytest.mark.parametrize("field", RESOURCE_FIELDS)
def test_resource_text_through_the_state_file(services: Services, field: str) -> None:
    applier = parts(services).state_applier()
    with pytest.raises(StateFileError) as caught:
        applier.apply({"catalogue": [_with(field, MAX_LENGTH[field] + 1)]})
    assert any(p.endswith(_long(field)) for p in caught.value.problems), caught.value.problems
    assert applier.apply({"catalogue": [_with(field, MAX_LENGTH[field])]})


def _cli(services: Services, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize("field", ("name", "basis", "title"))
def test_resource_text_through_the_cli_import(services: Services, env: dict[str, str],
                                              tmp_path: Path, field: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"catalogue": [_with(field, MAX_LENGTH[field] + 1)]},
                                allow_unicode=True), encoding="utf-8")
    code, out = _cli(services, env, "catalogue", "import", str(f))
    assert code == 1 and _long(field) in out, out
    f.write_text(yaml.safe_dump({"catalogue": [_with(field, MAX_LENGTH[field])]},
                                allow_unicode=True), encoding="utf-8")
    code, out = _cli(services, env, "catalogue", "import", str(f))
    assert code == 0, out


# -- applications, decisions, grants ---------------------------------------------------


def _apply(api: Api, **fields: Any) -> Any:
    body = {"resource": "JG-0001", "items": ["plate_number"], "purpose": "统计",
            "until": "2026-12-31", **fields}
    return api.client.post(f"{P}/applications", json=body, headers=api.token(*WANG))


@pytest.mark.parametrize("field", ("purpose", "basis"))
def test_application_text_through_the_api(api: Api, field: str) -> None:
    r = _apply(api, **{field: _text(MAX_LENGTH[field] + 1)})
    assert r.status_code == 400 and _long(field) in r.json()["errors"], r.text
    r = _apply(api, **{field: _text(MAX_LENGTH[field])})
    assert r.status_code == 201, r.text
    assert r.json()["application"][field] == _text(MAX_LENGTH[field])


def test_the_8_mb_basis_of_the_report_is_refused(api: Api) -> None:
    r = _apply(api, basis="x" * (8 * 1024 * 1024))
    assert r.status_code == 413
    r = _apply(api, basis="x" * (512 * 1024))
    assert r.status_code == 400 and _long("basis") in r.json()["errors"]
    assert not parts(api.services).workflow.applications()


def test_client_and_item_names_are_bounded(api: Api) -> None:
    r = _apply(api, client="c" * (MAX_LENGTH["client"] + 1))
    assert r.status_code == 400 and _long("client") in r.json()["errors"]
    r = _apply(api, items=["i" * (MAX_LENGTH["item"] + 1)])
    assert r.status_code == 400
    assert r.json()["detail"] == f"items[0] longer than {MAX_LENGTH['item']} characters"
    assert len(r.text) < 1000


def test_decision_text_through_the_api(api: Api) -> None:
    c = api.client
    steward, sec = api.token(*STEWARD_JG), api.token(*SEC)
    ids = [_apply(api).json()["application"]["id"] for _ in range(3)]
    note = MAX_LENGTH["note"]
    r = c.post(f"{P}/applications/{ids[0]}/approve", json={"note": _text(note + 1)},
               headers=steward)
    assert r.status_code == 400 and _long("note") in r.json()["errors"]
    r = c.post(f"{P}/applications/{ids[0]}/approve", json={"note": _text(note)},
               headers=steward)
    assert r.status_code == 201, r.text
    grant = r.json()["grant"]["id"]
    reason = MAX_LENGTH["reason"]
    for url, who in ((f"{P}/applications/{ids[1]}/reject", steward),
                     (f"{P}/applications/{ids[1]}/escalate", api.token(*WANG)),
                     (f"{P}/applications/{ids[1]}/close", sec),
                     (f"{P}/grants/{grant}/revoke", steward)):
        r = c.post(url, json={"reason": _text(reason + 1)}, headers=who)
        assert r.status_code == 400 and r.json()["detail"] == _long("reason"), (url, r.text)
        r = c.post(url, json={"reason": _text(reason)}, headers=who)
        assert r.status_code == 200, (url, r.text)


def test_application_text_through_the_cli(services: Services, env: dict[str, str]) -> None:
    base = ["catalogue", "apply-for", "JG-0001", "--as", "wang.wu", "--items", "brand",
            "--until", "2099-12-31"]
    for field in ("purpose", "basis"):
        extra = [] if field == "purpose" else ["--purpose", "统计"]
        code, out = _cli(services, env, *base, *extra, f"--{field}",
                         _text(MAX_LENGTH[field] + 1))
        assert code == 1 and _long(field) in out, out
        code, out = _cli(services, env, *base, *extra, f"--{field}", _text(MAX_LENGTH[field]))
        assert code == 0, out
    app_id = out.split("\t")[0]
    code, out = _cli(services, env, "catalogue", "reject", app_id, "--reason",
                     _text(MAX_LENGTH["reason"] + 1))
    assert code == 1 and _long("reason") in out, out
    code, out = _cli(services, env, "catalogue", "approve", app_id, "--note",
                     _text(MAX_LENGTH["note"] + 1))
    assert code == 1 and _long("note") in out, out
    code, out = _cli(services, env, "catalogue", "approve", app_id, "--note",
                     _text(MAX_LENGTH["note"]))
    assert code == 0, out


@pytest.mark.parametrize("field", ("purpose", "basis"))
def test_grant_text_through_the_state_file(services: Services, field: str) -> None:
    grant = {"resource": "JG-0001", "consumer": "nn-jgsw", "items": ["brand"],
             "purpose": "统计", "until": "2027-12-31"}
    applier = parts(services).state_applier()
    with pytest.raises(StateFileError) as caught:
        applier.apply({"grants": [{**grant, field: _text(MAX_LENGTH[field] + 1)}]})
    assert any(p.endswith(_long(field)) for p in caught.value.problems), caught.value.problems
    assert applier.apply({"grants": [{**grant, field: _text(MAX_LENGTH[field])}]})


def test_the_cli_says_it_in_chinese(services: Services, env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, [
        "catalogue", "apply-for", "JG-0001", "--as", "wang.wu", "--items", "brand",
        "--until", "2099-12-31", "--purpose", "统计", "--basis", _text(2001)],
        env={**env, "LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"}, catch_exceptions=False)
    assert result.exit_code == 1
    assert result.output == "错误：申请未通过校验\n  - basis 超过 2000 个字符\n"
