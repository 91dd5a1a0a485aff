"""``govgate catalogue``: through a real subprocess once, then through click's runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.services import Services
from tests.catalogue.conftest import audit_rows


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "catalogue", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_subprocess_list_and_csv_errors_by_row(services: Services, env: dict[str, str],
                                                    tmp_path: Path) -> None:
    listed = run(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].startswith(
        "JG-0001\t公务用车基础信息\tjgswj\tvehicles\tconditional\tpublished\tv1\t7 items")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,provider,system,share_type,conditions,route_path,item_name,"
                   "item_title,item_level\n"
                   "X-1,资源,jgswj,vehicles,conditional,条件,/api/x,a,A,1\n"
                   "X-1,资源,jgswj,vehicles,conditional,条件,/api/x,b,B,7\n", encoding="utf-8")
    result = run(env, "import", str(bad))
    assert result.returncode == 1
    assert "  - row 3: items[1]: level must be 1, 2, 3 or 4" in result.stderr


@pytest.fixture
def invoke(services: Services, env: dict[str, str]):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def call(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["catalogue", *args], env=env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output, result.stderr)
        return result.output  # stdout and stderr, as a terminal shows them

    return call


def test_workflow_through_the_cli(invoke, services: Services) -> None:  # type: ignore[no-untyped-def]
    out = invoke("apply-for", "JG-0001", "--as", "wang.wu", "--items",
                 "plate_number,brand,driver_phone", "--purpose", "车辆统计", "--until",
                 "2099-12-31")
    app_id = out.split("\t")[0]
    assert "\tsubmitted\t" in out
    denied = invoke("approve", app_id, "--as", "li.si", code=1)
    assert "data steward of jgswj" in denied
    out = invoke("approve", app_id, "--as", "zhang.san", "--items", "plate_number")
    grant_id = out.split("\t")[0]
    assert "\tnn-jgsw\tactive\tplate_number\t车辆统计\tuntil 2099-12-31" in out
    grants = invoke("grants", "--department", "nn-jgsw", "--active")
    assert grants.startswith(f"{grant_id}\tJG-0001\tnn-jgsw\tactive")
    out = invoke("revoke", grant_id, "--reason", "统计结束")
    assert "\trevoked\t" in out
    assert invoke("grants", "--department", "nn-jgsw", "--active") == ""
    second = invoke("apply-for", "JG-0001", "--department", "nn-jgsw", "--items", "brand",
                    "--purpose", "x", "--until", "2099-01-01").split("\t")[0]
    assert "\trejected\t" in invoke("reject", second, "--reason", "不必要")
    assert "\tescalated\t" in invoke("escalate", second, "--reason", "请协调")
    assert invoke("overdue") == "no overdue applications\n"
    bad = invoke("apply-for", "JG-0001", "--department", "nn-jgsw", "--items", "ghost",
                 "--purpose", "x", "--until", "2001-01-01", code=1)
    assert "  - items not shareable in JG-0001: ghost" in bad
    events = [r["event_type"] for r in audit_rows(services, ("application_", "grant_"))]
    assert events == [
        "application_submitted", "application_approved",
        "grant_created", "grant_revoked",
        "application_submitted", "application_rejected",
        "application_escalated",
    ]
    assert audit_rows(services, "grant_revoked")[0]["actor_user"].startswith("cli")


def test_export_import_publish_duplicates(invoke, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shown = invoke("show", "JG-0001")
    assert "code: JG-0001" in shown and "mask: keep_first_char" in shown
    assert invoke("show", "NOPE", code=1) == "error: no resource 'NOPE'\n"
    csv_text = invoke("export", "--format", "csv")
    assert csv_text.startswith("code,name,summary,provider,system,share_type")
    f = tmp_path / "cat.csv"
    f.write_text(csv_text, encoding="utf-8")
    assert invoke("import", str(f)) == "nothing to change\n"
    yaml_file = tmp_path / "cat.yaml"
    invoke("export", "--grants", "-o", str(yaml_file))
    text = yaml_file.read_text(encoding="utf-8")
    assert "grants:" in text
    yaml_file.write_text(text.replace("name: 公务用车基础信息", "name: 公务用车信息")
                         + "", encoding="utf-8")
    out = invoke("import", "--dry-run", str(yaml_file))
    assert out == "~ resource JG-0001 (name)\n(dry run: nothing written)\n"
    new = tmp_path / "new.yaml"
    new.write_text(
        "catalogue:\n"
        "  - code: CZ-0002\n    name: 公务用车费用台账\n    provider: czt\n    system: assets\n"
        "    share_type: conditional\n    conditions: 费用核算\n    status: draft\n"
        "    route: {method: GET, path: /api/vehicle-costs, records: items}\n"
        "    items:\n      - {name: plate_number, title: 车牌号}\n", encoding="utf-8")
    out = invoke("import", str(new))
    assert "+ resource CZ-0002" in out and "warning: item plate_number of CZ-0002" in out
    refused = invoke("publish", "CZ-0002", "--as", "zhang.san", code=1)
    assert refused == "error: only a data steward of czt changes CZ-0002\n"
    out = invoke("publish", "CZ-0002", "--as", "zhao.min")
    assert "published\tCZ-0002\tv1" in out and "reuse that source" in out
    assert "already provided as authoritative by jgswj in JG-0001" in invoke("duplicates")
    assert invoke("search", "--item", "车牌号").count("\n") == 2
    assert "JG-0002" in invoke("list", "--share-type", "unconditional")
