"""``govgate audit`` through click's runner, on the database the env names."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from audit import AuditLog
from gateway.cli.audit_cmd import audit
from gateway.services import key_service, master_key
from gateway.settings import Settings
from keys import FileMasterKey
from tests.audit.conftest import rec


@pytest.fixture
def setup(settings: Settings, audit_engine: sa.Engine, env: dict[str, str]) -> dict[str, Any]:
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, audit_engine, master_key(settings, env))
    ks.bootstrap()
    log = AuditLog(audit_engine, keys=ks, writer_id="gw-1", checkpoint_every=5)
    log.append_many_sync([rec(i, reason="=HYPERLINK(\"http://x\")" if i == 2 else f"r{i}")
                          for i in range(12)])
    log.close_sync()
    return {"env": env, "engine": audit_engine}


def run(setup: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(audit, list(args), env=setup["env"], catch_exceptions=False)


def test_verify_intact_then_tampered(setup: dict[str, Any]) -> None:
    r = run(setup, "verify")
    assert r.exit_code == 0, r.output
    assert r.output.count("\n") == 1 and "intact: 12 records, 1 chains" in r.output
    with setup["engine"].begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET outcome='deny' WHERE seq=4"))
    r = run(setup, "verify")
    assert r.exit_code == 1
    assert r.output.startswith("first bad: record chain=") and "seq=4" in r.output


def test_query_formats_and_audit(setup: dict[str, Any]) -> None:
    r = run(setup, "query", "--format", "csv", "--user", "user2")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [row["request_id"] for row in rows] == ["req-11", "req-8", "req-5", "req-2"]
    assert rows[-1]["reason"].startswith("'=HYPERLINK")
    r = run(setup, "query", "--format", "jsonl", "--event-type", "audit_query")
    logged = [json.loads(line) for line in r.output.splitlines()]
    assert logged[0]["extra"]["filters"] == {"user": "user2"}
    r = run(setup, "query", "--all", "--limit", "5")
    assert r.exit_code == 0 and r.output.count("\n") == 1 + 12 + 2
    r = run(setup, "verify")
    assert r.exit_code == 0, r.output


def test_bad_usage_is_exit_2(setup: dict[str, Any]) -> None:
    assert run(setup, "query", "--since", "soon").exit_code == 2
    assert run(setup, "query", "--outcome", "maybe").exit_code == 2
    assert run(setup, "stats", "--by", "password").exit_code == 2
    assert run(setup, "nonsense").exit_code == 2


def test_export_verify_archive_purge(setup: dict[str, Any], tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    r = run(setup, "export", "--until", "2999-01-01", "--to", str(arc))
    assert r.exit_code == 0, r.output
    assert "exported 12 records" in r.output
    r = run(setup, "verify", "--archive", str(arc), "--gateway-keys")
    assert r.exit_code == 0 and "intact: 12 records" in r.output
    r = run(setup, "purge", "--until", "2999-01-01", "--archive", str(arc))
    assert r.exit_code == 1 and "retention" in r.output
    (arc / "checkpoints.jsonl").write_text("")
    assert run(setup, "verify", "--archive", str(arc)).exit_code == 1


def test_stats(setup: dict[str, Any]) -> None:
    r = run(setup, "stats", "--by", "system,department", "--format", "jsonl")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"system": "vehicles", "department": "czt", "count": 12}


def test_export_to_a_folder_it_cannot_create_is_one_line(setup: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """An OSError from creating or writing the archive folder was a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = CliRunner().invoke(audit, ["export", "--until", "2999-01-01",
                                   "--to", str(blocker / "archive")], env=setup["env"])
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert f"{blocker / 'archive'}: Not a directory" in r.output
    assert "Traceback" not in r.output


def test_stats_with_no_dimensions(setup: dict[str, Any]) -> None:
    r = run(setup, "stats", "--by", "")
    assert r.exit_code == 0, r.output
    assert r.output.split() == ["count", "12"]
    r = run(setup, "stats", "--by", "", "--event-type", "no_such_event")
    assert r.exit_code == 0, r.output  # was a TypeError: the sum of no rows is NULL
    assert r.output.split() == ["count", "0"]


def test_verify_a_missing_archive_is_an_input_error_not_tampering(setup: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    """A path with no archive said "audit log TAMPERED" and exit 1, as a tampered
    archive does; it is one line in the error style and exit 2 (bad input)."""
    nowhere = tmp_path / "nowhere"
    r = run(setup, "verify", "--archive", str(nowhere))
    assert r.exit_code == 2, r.output
    assert r.stderr == f"error: {nowhere}: no such audit archive\n"
    assert "TAMPERED" not in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run(setup, "verify", "--archive", str(empty))
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(f"error: {empty}: not an audit archive (it holds none of ")
    assert r.stderr.count("\n") == 1 and "TAMPERED" not in r.output
    r = CliRunner().invoke(audit, ["verify", "--archive", str(nowhere)],
                           env={**setup["env"], "LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"})
    assert r.exit_code == 2
    assert r.stderr == f"错误：审计归档目录不存在：{nowhere}\n"
    # purge takes the same --archive
    r = run(setup, "purge", "--until", "2000-01-01", "--archive", str(nowhere))
    assert r.exit_code == 2 and r.stderr == f"error: {nowhere}: no such audit archive\n"


def test_verify_an_unreadable_archive_is_an_input_error(setup: dict[str, Any], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that is there but cannot be read proves nothing either way (the tests run
    as root, where chmod 000 does not stop a read: the refusal is simulated)."""
    arc = tmp_path / "arc"
    assert run(setup, "export", "--until", "2999-01-01", "--to", str(arc)).exit_code == 0
    read_bytes = Path.read_bytes

    def refuse(self: Path) -> bytes:
        if self.name == "manifest.json":
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    r = run(setup, "verify", "--archive", str(arc))
    assert r.exit_code == 2, r.output
    assert r.stderr == (f"error: {arc}: cannot read the audit archive: "
                        f"{arc / 'manifest.json'}: Permission denied\n")
    assert "TAMPERED" not in r.output


def test_verify_a_tampered_archive_still_says_tampered(setup: dict[str, Any],
                                                       tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    assert run(setup, "export", "--until", "2999-01-01", "--to", str(arc)).exit_code == 0
    lines = (arc / "records.jsonl").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("allow", "deny")
    (arc / "records.jsonl").write_text("".join(lines))
    r = run(setup, "verify", "--archive", str(arc))
    assert r.exit_code == 1, r.output
    assert "TAMPERED" in r.output and "records.jsonl" in r.output
    assert r.stderr == ""
    (arc / "records.jsonl").unlink()  # one file gone from a real archive: tampering too
    r = run(setup, "verify", "--archive", str(arc))
    assert r.exit_code == 1 and "TAMPERED" in r.output


def test_a_reversed_time_range_is_refused(setup: dict[str, Any]) -> None:
    """``verify --since`` after ``--until`` checked nothing and said "intact" (exit 0);
    ``stats`` counted nothing."""
    r = run(setup, "verify", "--since", "2026-02-01", "--until", "2026-01-01")
    assert r.exit_code == 2
    assert "Invalid value for --until: must be after --since" in r.stderr
    assert "intact" not in r.output
    r = run(setup, "stats", "--since", "2026-02-01", "--until", "2026-01-01")
    assert r.exit_code == 2
    assert "Invalid value for --until: 2026-01-01 is before since (2026-02-01)" in r.stderr
    r = run(setup, "query", "--since", "2026-02-01", "--until", "2026-01-01")
    assert r.exit_code == 2 and "Invalid value for --until: must be after since" in r.stderr
    # one day, both ends inclusive, is a range for stats
    assert run(setup, "stats", "--since", "2026-01-01", "--until", "2026-01-01").exit_code == 0


def test_stats_errors_name_the_option_as_typed(setup: dict[str, Any]) -> None:
    """The message named ``--group_by``, an option that does not exist: it is ``--by``."""
    r = run(setup, "stats", "--by", "day,password")
    assert r.exit_code == 2
    assert ("Invalid value for --by: 'password' is not one of day, system, resource, "
            "department, event_type, outcome") in r.stderr
    assert "group_by" not in r.stderr
    r = run(setup, "stats", "--since", "yesterday")
    assert r.exit_code == 2 and "Invalid value for --since: a day as YYYY-MM-DD" in r.stderr


def test_an_unknown_outcome_is_refused_with_the_valid_ones(setup: dict[str, Any]) -> None:
    """outcome is the one closed filter (event types, users, systems are open-ended)."""
    r = run(setup, "query", "--outcome", "maybe")
    assert r.exit_code == 2 and r.stdout == ""
    assert ("Invalid value for --outcome: 'maybe' is not one of allow, deny, error, failure, "
            "success") in r.stderr


ZH = {"LANG": "zh_CN.UTF-8", "LC_ALL": "zh_CN.UTF-8"}
C = {"LANG": "C", "LC_ALL": "C"}


def run_in(setup: dict[str, Any], lang: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(audit, list(args), env={**setup["env"], **lang},
                              catch_exceptions=False)


def test_verify_speaks_chinese_under_a_chinese_locale(setup: dict[str, Any]) -> None:
    r = run_in(setup, ZH, "verify")
    assert r.exit_code == 0 and r.output.startswith("审计日志完好：12 条记录，1 条哈希链，")
    assert "个检查点，" in r.output and " .. " in r.output  # the time span as it is
    assert run_in(setup, C, "verify").output.startswith("audit log intact: 12 records, 1 chains")
    with setup["engine"].begin() as conn:
        conn.execute(sa.text("UPDATE audit_records SET outcome='deny' WHERE seq=4"))
        chain = conn.execute(sa.text("SELECT chain_id FROM audit_records LIMIT 1")).scalar()
    r = run_in(setup, ZH, "verify")
    assert r.exit_code == 1
    first, *_, last = r.output.splitlines()
    assert first == f"首个异常：记录 chain={chain} seq=4：内容与其哈希值不符（有字段被修改）"
    assert last.startswith("审计日志已被篡改：") and " 条记录，1 条哈希链，" in last
    r = run_in(setup, C, "verify")
    first, *_, last = r.output.splitlines()
    assert first == (f"first bad: record chain={chain} seq=4: content does not match its hash "
                     "(a field was changed)")
    assert last.startswith("audit log TAMPERED: ") and " records, 1 chains, " in last


def test_export_purge_and_filters_speak_chinese(setup: dict[str, Any], tmp_path: Path) -> None:
    arc = tmp_path / "arc"
    r = run_in(setup, ZH, "export", "--until", "2999-01-01", "--to", str(arc))
    assert r.exit_code == 0, r.output
    assert r.output.startswith("已将 1 条哈希链的 12 条记录和 ")
    assert f"个检查点导出到 {arc}（归档 " in r.output
    r = run_in(setup, ZH, "verify", "--archive", str(arc), "--gateway-keys")
    assert r.exit_code == 0 and r.output.startswith("审计日志完好：12 条记录")
    r = run_in(setup, ZH, "export", "--until", "2999-01-01", "--to", str(arc))
    assert r.exit_code == 1 and r.stderr == f"错误：{arc}：目录不为空\n"
    r = run_in(setup, C, "export", "--until", "2999-01-01", "--to", str(arc))
    assert r.stderr == f"error: {arc}: not empty\n"
    r = run_in(setup, ZH, "purge", "--until", "2999-01-01", "--archive", str(arc))
    assert r.exit_code == 1
    assert r.stderr.startswith("错误：保留期（180 天）内的记录不能清理：--until 不得晚于 ")
    r = run_in(setup, ZH, "purge", "--until", "2000-01-01", "--archive", str(arc))
    assert r.exit_code == 0 and r.output == "没有需要清理的记录。\n"
    assert run_in(setup, C, "purge", "--until", "2000-01-01", "--archive", str(arc)).output == (
        "nothing to purge\n")
    (arc / "checkpoints.jsonl").write_text("")
    r = run_in(setup, ZH, "verify", "--archive", str(arc))
    assert r.exit_code == 1
    assert r.output.splitlines()[0] == (f"首个异常：{arc}：{arc}/checkpoints.jsonl："
                                        "自归档写出后已被修改或缺失")
    # filters: click's frame stays, the reason is in Chinese
    r = run_in(setup, ZH, "query", "--since", "soon")
    assert r.exit_code == 2
    assert "--since: 不是时间：'soon'（应为 ISO 8601 或毫秒时间戳）" in r.stderr
    r = run_in(setup, ZH, "verify", "--since", "2026-02-01", "--until", "2026-01-01")
    assert r.exit_code == 2 and "--until: 须晚于 --since" in r.stderr
    r = run_in(setup, ZH, "stats", "--by", "day,password")
    assert "--by: 'password' 无效（可选：day, system, resource, department" in r.stderr
    r = run_in(setup, C, "query", "--since", "soon")
    assert "--since: not a time: 'soon' (ISO 8601 or epoch ms)" in r.stderr
    # the machine-readable outputs are the same in both languages
    for args in (("query", "--format", "jsonl", "--event-type", "proxy_request"),
                 ("stats", "--format", "csv"), ("query", "--format", "csv", "--user", "user1")):
        assert run_in(setup, ZH, *args).output == run_in(setup, C, *args).output, args


FORMULAS = ['=HYPERLINK("http://evil.example","x")', "@SUM(A1:A2)", "+1+1",
            "=cmd|' /C calc'!A0", "-2+3", "\t=1", "\r=1"]


@pytest.fixture
def formula_setup(settings: Settings, audit_engine: sa.Engine, env: dict[str, str]
                  ) -> dict[str, Any]:
    FileMasterKey.create(settings.master_key_path)
    ks = key_service(settings, audit_engine, master_key(settings, env))
    ks.bootstrap()
    log = AuditLog(audit_engine, keys=ks, writer_id="gw-1")
    log.append_many_sync([rec(i, reason=f, actor_user=f[:60], system=f[:60], department=f[:60])
                          for i, f in enumerate(FORMULAS)])
    log.close_sync()
    return {"env": env, "engine": audit_engine}


def _no_formula_cell(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (cell, row)
    return rows


def test_query_csv_export_neutralises_formulas(formula_setup: dict[str, Any]) -> None:
    r = run(formula_setup, "query", "--format", "csv", "--all")
    assert r.exit_code == 0, r.output
    rows = _no_formula_cell(r.output)
    reasons = {row[rows[0].index("reason")] for row in rows[1:]}
    assert {"'" + f for f in FORMULAS} <= reasons


def test_stats_csv_export_neutralises_formulas(formula_setup: dict[str, Any]) -> None:
    r = run(formula_setup, "stats", "--by", "system,department", "--format", "csv")
    assert r.exit_code == 0, r.output
    rows = _no_formula_cell(r.output)
    assert {row[0] for row in rows[1:]} == {"'" + f[:60] for f in FORMULAS}


def test_a_command_writes_to_the_database_in_journal_mode(
        setup: dict[str, Any], settings: Settings) -> None:
    """The embedded SQLite's default is journal mode (docs/audit-journal.md); a command's
    own records still reach the tables at once, and leave no chain in the journal."""
    if settings.db_url.startswith("sqlite"):
        assert settings.audit_path == "journal"
    r = run(setup, "query", "--user", "user2")
    assert r.exit_code == 0, r.output
    with setup["engine"].connect() as conn:
        logged = conn.execute(sa.text(
            "SELECT count(*) FROM audit_records WHERE event_type = 'audit_query'")).scalar()
    assert logged == 1
    folder = settings.home / settings.audit_journal_dir
    assert not folder.exists() or not any(folder.iterdir())


def test_export_without_until_takes_every_record_up_to_now(setup: dict[str, Any],
                                                           tmp_path: Path) -> None:
    """``--until`` was required; without it the archive ends now (said on stderr), and
    ``--help`` says so and why there is no ``--since``."""
    help_text = run(setup, "export", "--help").output
    assert "default: now" in help_text and "no --since" in help_text
    arc = tmp_path / "arc"
    r = run(setup, "export", "--to", str(arc))
    assert r.exit_code == 0, r.output
    assert "no --until: exporting the records up to now (" in r.output
    assert "exported 12 records" in r.output
    r = run(setup, "verify", "--archive", str(arc), "--gateway-keys")
    assert r.exit_code == 0 and "intact: 12 records" in r.output
