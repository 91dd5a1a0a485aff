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
from tests.wiring import parts


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
    # a name the resource does not have is no refusal to share: it says so and what it
    # shares (it said "items not shareable in JG-0001: ghost" before)
    assert f"  - JG-0001 has no item ghost (its shared items: {SHARED})" in bad
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


ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"}
SHARED = ("plate_number, brand, vehicle_type, mileage_km, driver_name, driver_id_number, "
          "driver_phone")  # JG-0001's items, each shared
C = {"LANG": "C", "LC_ALL": "C"}


@pytest.fixture
def invoke_in(services: Services, env: dict[str, str]):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def call(lang: dict[str, str], *args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["catalogue", *args], env={**env, **lang},
                               catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result.output

    return call


def test_catalogue_speaks_chinese_under_a_chinese_locale(invoke_in, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Sentences and errors in Chinese; the tab-separated lines, plans and exports as
    they are in English."""
    for args in (("list",), ("grants",), ("export", "--format", "csv"), ("show", "JG-0001")):
        assert invoke_in(ZH, *args) == invoke_in(C, *args), args
    assert invoke_in(ZH, "show", "NOPE", code=1) == "错误：资源 'NOPE' 不存在\n"
    assert invoke_in(C, "show", "NOPE", code=1) == "error: no resource 'NOPE'\n"
    assert invoke_in(ZH, "overdue") == "没有超期的申请。\n"

    exported = tmp_path / "cat.csv"
    exported.write_text(invoke_in(C, "export", "--format", "csv"), encoding="utf-8")
    assert invoke_in(ZH, "import", str(exported)) == "无需变更。\n"
    assert invoke_in(C, "import", str(exported)) == "nothing to change\n"
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,provider,system,share_type,conditions,route_path,item_name,"
                   "item_title,item_level\n"
                   "X-1,资源,jgswj,vehicles,conditional,条件,/api/x,a,A,1\n"
                   "X-1,资源,jgswj,vehicles,conditional,条件,/api/x,b,B,7\n", encoding="utf-8")
    assert invoke_in(ZH, "import", str(bad), code=1) == (
        "错误：CSV 文件中有 1 处问题\n"
        "  - 第 3 行：items[1]：level 必须是 1、2、3 或 4（一般 … 核心）\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"code,name\nX-1,\xff\n")
    assert invoke_in(ZH, "import", str(latin), code=1) == f"错误：{latin}：不是 UTF-8 文本\n"
    assert invoke_in(C, "import", str(latin), code=1) == f"Error: {latin}: not UTF-8 text\n"

    new = tmp_path / "new.yaml"
    new.write_text(
        "catalogue:\n"
        "  - code: CZ-0002\n    name: 公务用车费用台账\n    provider: czt\n    system: assets\n"
        "    share_type: conditional\n    conditions: 费用核算\n    status: draft\n"
        "    route: {method: GET, path: /api/vehicle-costs, records: items}\n"
        "    items:\n      - {name: plate_number, title: 车牌号}\n", encoding="utf-8")
    assert invoke_in(ZH, "import", "--dry-run", str(new)).endswith(
        "\n+ resource CZ-0002\n（试运行：未写入任何内容）\n")
    out = invoke_in(ZH, "import", str(new))
    assert "警告：CZ-0002（czt）的信息项 plate_number 已由 jgswj 在 JG-0001 公务用车基础信息" \
           "（信息项 plate_number）中作为权威来源提供：请复用该来源，不要重复采集\n" in out
    assert invoke_in(ZH, "publish", "CZ-0002", "--as", "zhang.san", code=1) == (
        "错误：只有 czt 的数据管理员才能变更 CZ-0002\n")
    assert "作为权威来源提供" in invoke_in(ZH, "duplicates")
    assert "already provided as authoritative" in invoke_in(C, "duplicates")

    refused = invoke_in(ZH, "apply-for", "JG-0001", "--department", "nn-jgsw", "--items",
                        "ghost", "--purpose", "x", "--until", "2001-01-01", code=1)
    assert refused == ("错误：申请未通过校验\n"
                       f"  - JG-0001 没有信息项 ghost（可共享的信息项：{SHARED}）\n"
                       "  - until 是已经过去的日期\n")
    assert invoke_in(C, "apply-for", "JG-0001", "--department", "nn-jgsw", "--items",
                     "ghost", "--purpose", "x", "--until", "2001-01-01", code=1) == (
        "error: application rejected\n"
        f"  - JG-0001 has no item ghost (its shared items: {SHARED})\n"
        "  - until is in the past\n")
    app_id = invoke_in(ZH, "apply-for", "JG-0001", "--as", "wang.wu", "--items", "brand",
                       "--purpose", "车辆统计", "--until", "2099-12-31").split("\t")[0]
    assert invoke_in(ZH, "approve", app_id, "--as", "li.si", code=1) == (
        "错误：只有 jgswj 的数据管理员才能审批此申请\n")
    assert invoke_in(ZH, "approve", "999", code=1) == "错误：申请 999 不存在\n"
    assert invoke_in(ZH, "revoke", "999", "--reason", "x", code=1) == "错误：授权 999 不存在\n"


def test_approval_with_an_until_in_the_past_is_refused(invoke_in) -> None:  # type: ignore[no-untyped-def]
    app_id = invoke_in(C, "apply-for", "JG-0001", "--as", "wang.wu", "--items", "brand",
                       "--purpose", "车辆统计", "--until", "2099-12-31").split("\t")[0]
    assert invoke_in(C, "approve", app_id, "--until", "2001-01-01", code=1) == (
        "error: approval rejected\n  - until is in the past\n")
    assert invoke_in(ZH, "approve", app_id, "--until", "2001-01-01", code=1) == (
        "错误：审批未通过校验\n  - until 是已经过去的日期\n")
    assert "nn-jgsw" not in invoke_in(C, "grants")


FORMULAS = {"name": '=HYPERLINK("http://evil.example","点我")', "summary": "@SUM(A1:A2)",
            "conditions": "+1+1", "basis": "=cmd|' /C calc'!A0", "update_cycle": "-1",
            "open_attr": "'=already quoted"}


def test_csv_export_neutralises_formulas_and_reimports_unchanged(
        invoke, services: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """OWASP CSV injection: a cell starting with = + - @, tab or CR gets a leading
    apostrophe, so no spreadsheet runs it; the import takes the apostrophe off again."""
    import csv as csv_
    import io as io_

    from catalogue.service import operator

    parts(services).catalogue.save(operator("test"), {
        "code": "CZ-0009", "provider": "czt", "system": "assets", "share_type": "conditional",
        "route": {"method": "GET", "path": "/api/formulas"},
        "items": [{"name": "a", "title": "=1+1"}, {"name": "b", "title": "@x"},
                  {"name": "c", "title": "-x"}], **FORMULAS})
    out = invoke("export", "--format", "csv")
    rows = list(csv_.reader(io_.StringIO(out)))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (cell, row)
    mine = [r for r in rows if r[0] == "CZ-0009"]
    header = rows[0]
    assert mine[0][header.index("name")] == "'" + FORMULAS["name"]
    assert mine[0][header.index("open_attr")] == "''=already quoted"
    assert [r[header.index("item_title")] for r in mine] == ["'=1+1", "'@x", "'-x"]
    exported = tmp_path / "cat.csv"
    exported.write_text(out, encoding="utf-8")
    assert invoke("import", str(exported)) == "nothing to change\n"
