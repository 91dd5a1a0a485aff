"""The `govgate` command: exit codes, languages, role rules.

What only a process shows (start-up, signals, workers, the master key file's mode, a
storage error before anything is imported) runs ``govgate`` as a subprocess (``run``);
the rest runs the same entry point in process (``here``: click's runner, with the
environment and locale a subprocess would get), a second each saved a hundred times."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.demo import DEMO_STATE

GOVGATE = [sys.executable, "-m", "gateway.cli"]


def run(env: dict[str, str], *args: str, lang: str = "C.UTF-8") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOVGATE, *args],
        env={**env, "LANG": lang},
        capture_output=True,
        text=True,
        timeout=60,
    )


def here(env: dict[str, str], *args: str, lang: str = "C.UTF-8"
         ) -> subprocess.CompletedProcess[str]:
    """``run``'s result from ``gateway.cli.main.main`` in this process."""
    environ: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GOVGATE_")}
    environ.update({**env, "LANG": lang})
    result = CliRunner().invoke(cli, list(args), env=environ, prog_name="govgate")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess([*GOVGATE, *args], result.exit_code, result.stdout,
                                       result.stderr)


@pytest.fixture
def initialised(env: dict[str, str]) -> dict[str, str]:
    result = here(env, "init")
    assert result.returncode == 0, result.stderr
    return env


def test_help_on_every_command() -> None:
    runner = CliRunner()
    for args in (
        [],
        ["init"],
        ["serve"],
        ["demo"],
        ["apply"],
        ["export"],
        ["user"],
        ["user", "add"],
        ["user", "list"],
        ["user", "disable"],
        ["user", "unlock"],
        ["user", "clear-delay"],
        ["user", "reset-password"],
        ["dept"],
        ["dept", "add"],
        ["dept", "list"],
    ):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
        assert "Usage:" in result.output


def test_usage_error_exits_2(env: dict[str, str]) -> None:
    assert run(env, "no-such-command").returncode == 2
    assert run(env, "apply").returncode == 2  # -f missing


def test_init_is_idempotent_and_prints_admins_once(env: dict[str, str]) -> None:
    first = run(env, "init")
    assert first.returncode == 0, first.stderr
    assert all(name in first.stdout for name in ("sysadmin", "secadmin", "auditor"))
    second = run(env, "init")
    assert second.returncode == 0
    assert "sysadmin" not in second.stdout
    key = Path(env["GOVGATE_HOME"]) / "master.key"
    assert key.stat().st_mode & 0o077 == 0


def test_apply_twice_then_nothing_to_change_in_both_languages(initialised: dict[str, str]) -> None:
    first = here(initialised, "apply", "-f", str(DEMO_STATE))
    assert first.returncode == 0, first.stderr
    assert "+ user zhang.san" in first.stdout
    again = here(initialised, "apply", "-f", str(DEMO_STATE))
    assert again.returncode == 0 and "nothing to change" in again.stdout
    zh = here(initialised, "apply", "-f", str(DEMO_STATE), lang="zh_CN.UTF-8")
    assert "无需变更" in zh.stdout


def test_invalid_state_file_exits_1_with_every_problem(
    initialised: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "departments:\n  - {code: x, name: 某部门, region: nowhere}\n"
        "users:\n  - {username: a.b, name: 甲, department: x, roles: [sysadmin, secadmin]}\n",
        encoding="utf-8",
    )
    result = here(initialised, "apply", "-f", str(bad))
    assert result.returncode == 1
    assert "unknown region 'nowhere'" in result.stderr
    assert "三员分立" in result.stderr
    zh = here(initialised, "apply", "-f", str(bad), lang="zh_CN.UTF-8")
    assert "状态文件" in zh.stderr or "错误" in zh.stderr


def test_role_exclusivity_from_the_cli(initialised: dict[str, str]) -> None:
    result = here(
        initialised,
        "user",
        "add",
        "x.y",
        "--name",
        "某人",
        "--department",
        "platform",
        "--role",
        "sysadmin",
        "--role",
        "auditor",
    )
    assert result.returncode == 1
    assert "三员分立" in result.stderr
    result = here(initialised, "user", "add-role", "auditor", "secadmin")
    assert result.returncode == 1 and "mutually exclusive" in result.stderr


def test_user_and_dept_commands(initialised: dict[str, str]) -> None:
    assert here(initialised, "apply", "-f", str(DEMO_STATE)).returncode == 0
    added = here(initialised, "dept", "add", "sft", "--name", "司法厅", "--region", "gx")
    assert added.returncode == 0, added.stderr
    assert "sft\t司法厅\tgx" in here(initialised, "dept", "list").stdout
    add = here(initialised, "user", "add", "qian.qi", "--name", "钱七", "--department", "sft")
    assert add.returncode == 0 and "temporary password" in add.stdout
    assert here(initialised, "user", "disable", "qian.qi").returncode == 0
    listing = here(initialised, "user", "list", "--department", "sft").stdout
    assert "qian.qi\t钱七\tsft\tstaff\tdisabled" in listing
    reset = here(initialised, "user", "reset-password", "qian.qi")
    assert reset.returncode == 0 and "shown once" in reset.stdout
    assert here(initialised, "user", "unlock", "qian.qi").returncode == 0
    missing = here(initialised, "user", "disable", "nobody")
    assert missing.returncode == 1 and "unknown user" in missing.stderr


def test_user_contact_for_the_email_and_phone_scopes(initialised: dict[str, str]) -> None:
    assert here(initialised, "apply", "-f", str(DEMO_STATE)).returncode == 0
    bad = here(initialised, "user", "add", "zhou.ba", "--name", "周八", "--department", "czt",
              "--email", "not an address")
    assert bad.returncode == 1 and "email must be an address" in bad.stderr
    assert "zhou.ba" not in here(initialised, "user", "list").stdout  # nothing half-done
    add = here(initialised, "user", "add", "zhou.ba", "--name", "周八", "--department", "czt",
              "--email", "zhou.ba@czt.gov.example", "--phone", "+86 771 7654321")
    assert add.returncode == 0, add.stderr
    exported = here(initialised, "export").stdout
    assert "email: zhou.ba@czt.gov.example" in exported
    assert "phone_number: +86 771 7654321" in exported


def test_export_has_no_secrets(initialised: dict[str, str]) -> None:
    here(initialised, "apply", "-f", str(DEMO_STATE))
    out = here(initialised, "export")
    assert out.returncode == 0
    assert "zhang.san" in out.stdout
    assert "Demo-Passw0rd" not in out.stdout and "demo-finance-secret" not in out.stdout


def test_uninitialised_database_is_one_line_error(env: dict[str, str]) -> None:
    result = run(env, "user", "list")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "govgate init" in result.stderr


def test_group_readable_master_key_refuses_to_start(initialised: dict[str, str]) -> None:
    key = Path(initialised["GOVGATE_HOME"]) / "master.key"
    key.chmod(0o640)
    result = run(initialised, "user", "list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "master" in result.stderr.lower()


def test_unreachable_database_is_one_line_error(env: dict[str, str]) -> None:
    env = {**env, "GOVGATE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    result = run(env, "init")
    assert result.returncode == 1
    assert "database unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0


def _check_head_rules(port: int) -> None:
    """The server under ``govgate serve`` is gateway.web.http_server's: a head over
    ``max_header_bytes`` is refused (431) on any route, and a head still incomplete
    after ``header_timeout_seconds`` (1 s here) is answered 408 and closed."""
    import socket
    import time

    import httpx

    r = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Big": "a" * 40_000},
                  timeout=5)
    assert r.status_code == 431
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 5


# third-party packages a server imports on first use only (docs/BENCHMARKS.md, "idle
# worker memory"): SAML, SCIM, the directory, passkeys, password strength, migrations,
# TOTP's QR code; playwright never
HEAVY = {"saml2", "xmlschema", "scim2_models", "pydantic", "lark", "ldap3", "pyasn1",
         "webauthn", "cbor2", "zxcvbn", "alembic", "mako", "segno", "playwright"}
IDLE_TARGET_BYTES = 150 * 10**6  # issue #17: one idle worker under 150 MB


def _imported(log: Path) -> set[str]:
    """The top-level packages a ``PYTHONPROFILEIMPORTTIME`` log shows imported so far
    (Python writes a line as each import completes)."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in log.read_text(encoding="utf-8").splitlines()
            if line.startswith("import time:") and "|" in line}


def _resident_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return next(int(line.split()[1]) * 1024 for line in status.splitlines()
                if line.startswith("VmRSS:"))


def test_serve_answers_health_and_stops_on_sigterm(initialised: dict[str, str],
                                                   tmp_path: Path) -> None:
    """...and, idle, has imported none of the heavy optional packages (and stays under
    the memory target), yet answers the first SAML request, pysaml2 imported then."""
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    imports = tmp_path / "imports.log"
    with imports.open("w") as log, subprocess.Popen(
        [*GOVGATE, "serve", "--port", str(port)],
        env={**initialised, "GOVGATE_HEADER_TIMEOUT_SECONDS": "1",
             "PYTHONPROFILEIMPORTTIME": "1"},
        stdout=subprocess.PIPE, stderr=log, text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.1)
            assert ready.json() == {"status": "ready"}
            assert "starlette" in _imported(imports)  # the log is what the server imports
            assert _imported(imports) & HEAVY == set()
            assert _resident_bytes(proc.pid) < IDLE_TARGET_BYTES
            _check_head_rules(port)
            metadata = httpx.get(f"http://127.0.0.1:{port}/saml/metadata", timeout=30)
            assert metadata.status_code == 200
            assert metadata.headers["content-type"].startswith("application/samlmetadata+xml")
            assert "IDPSSODescriptor" in metadata.text
            assert re.search(r'entityID="http://[^"]+/saml/metadata"', metadata.text)
            assert "saml2" in _imported(imports)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_admin_changes_are_audited_with_the_operator(initialised: dict[str, str]) -> None:
    import json

    import sqlalchemy as sa

    from audit.tables import records
    from gateway.storage import create_engine

    assert here(initialised, "apply", "-f", str(DEMO_STATE)).returncode == 0
    assert here(initialised, "user", "disable", "li.si").returncode == 0
    assert here(initialised, "keys", "rotate", "--use", "token").returncode == 0
    engine = create_engine(initialised["GOVGATE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(records.c.reason, records.c.actor_user, records.c.extra)
                .where(records.c.event_type == "admin_change")
                .order_by(records.c.id)
            ).all()
    finally:
        engine.dispose()
    reasons = [r.reason for r in rows]
    assert "state_applied" in reasons
    assert reasons[-3:] == ["user_disabled", "sessions_revoked", "key_rotated"]
    assert json.loads(rows[-3].extra)["user"] == "li.si"
    assert json.loads(rows[-1].extra)["use"] == "token"
    assert all(r.actor_user and r.actor_user.startswith("os:") for r in rows)
    assert not any("Demo-Passw0rd" in (r.extra or "") for r in rows)
    verify = here(initialised, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_serve_with_two_workers_shares_the_port_and_stops_cleanly(
    initialised: dict[str, str],
) -> None:
    import signal
    import socket
    import time

    import httpx

    if initialised["GOVGATE_DATABASE_URL"].startswith("sqlite"):
        # one writer at a time: refused with the reason before anything listens
        refused = run(initialised, "serve", "--workers", "2")
        assert refused.returncode == 1, refused.stderr
        assert "--workers above 1 needs PostgreSQL" in refused.stderr
        return
    assert run(initialised, "apply", "-f", str(DEMO_STATE)).returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with subprocess.Popen(
        [*GOVGATE, "serve", "--port", str(port), "--workers", "2"],
        env={**initialised, "GOVGATE_HEADER_TIMEOUT_SECONDS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).is_success:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.2)
            # tokens from fresh connections land on either worker; each audits durably
            for _ in range(20):
                r = httpx.post(
                    f"http://127.0.0.1:{port}/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=("finance-system", "demo-finance-secret-0123456789abcdef"),
                    timeout=10,
                )
                assert r.status_code == 200, r.text
            _check_head_rules(port)  # the workers run the gateway's protocol too
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    verify = run(initialised, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    issued = run(initialised, "audit", "query", "--event-type", "token_issued", "--format", "jsonl")
    assert issued.stdout.count('"token_issued"') >= 20, issued.stdout[-500:]


def test_bad_input_sweep_is_one_line_and_writes_nothing(
    initialised: dict[str, str], tmp_path: Path
) -> None:
    """Inputs an operator types by mistake, each of which printed a traceback or
    stored something that points nowhere: one localised line (exit 1) and no change."""
    assert here(initialised, "apply", "-f", str(DEMO_STATE)).returncode == 0
    not_json = tmp_path / "jwks.json"
    not_json.write_bytes(b"\xff\xfe not json")
    missing_dir = tmp_path / "no" / "such" / "dir"
    before = here(initialised, "export").stdout
    cases = [
        # (arguments, what the message names)
        (["export", "-o", str(missing_dir / "state.yaml")], "：没有这个文件或目录"),
        (["catalogue", "export", "-o", str(missing_dir / "cat.yaml")], "：没有这个文件或目录"),
        (["client", "add", "sync", "--name", "同步", "-d", "czt", "--grant-type",
          "client_credentials", "--jwks-file", str(not_json)], f"{not_json}：不是 JSON 文件（"),
        (["policy", "add", "role:staff", "nodept", "/s/assets/api/*", "GET"],
         "部门 'nodept' 不存在"),
        (["policy", "add", "dept:nodept", "czt", "/s/assets/api/*", "GET"],
         "主体 'dept:nodept' 中的部门不存在"),
        (["catalogue", "apply-for", "JG-0001", "--department", "nodept", "--items",
          "plate_number", "--purpose", "统计", "--until", "2099-12-31"],
         "错误：部门 'nodept' 不存在"),
        (["catalogue", "approve", "9" * 24], f"申请 {'9' * 24} 不存在"),
        (["user", "add", "no.name", "--name", " ", "-d", "czt"], "错误：用户姓名为空\n"),
    ]
    for args, says in cases:
        result = here(initialised, *args, lang="zh_CN.UTF-8")
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
        assert result.stderr.startswith("错误：") and says in result.stderr, (args, result.stderr)
    assert here(initialised, "export").stdout == before
    assert here(initialised, "policy", "list").stdout.count("\n") == 1  # the header only
    assert here(initialised, "catalogue", "grants").stdout.count("\n") == 1  # demo's grant
    import sqlalchemy as sa

    from catalogue.tables import applications

    engine = sa.create_engine(initialised["GOVGATE_DATABASE_URL"])
    with engine.connect() as conn:  # no application for a department that does not exist
        assert conn.execute(sa.select(sa.func.count()).select_from(applications)).scalar() == 0
    engine.dispose()
    assert not missing_dir.exists()


@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_a_port_outside_1_to_65535_is_a_usage_error(env: dict[str, str], tmp_path: Path,
                                                    command: str, port: str) -> None:
    """``serve --port 99999`` started and printed "listening on http://127.0.0.1:99999"
    (0: a random port the banner calls 0); refused before anything starts."""
    args = [command, "--port", port]
    if command == "demo":
        args += ["--home", str(tmp_path / "demo")]
    result = run(env, *args)
    assert result.returncode == 2, result.stderr
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535." in (
        result.stderr)
    assert "listening" not in result.stdout and result.stdout == ""
    assert not (tmp_path / "demo").exists()


# -- the CLI's languages: library texts under a Chinese locale ------------------------------


def test_every_message_has_the_same_placeholders_in_both_languages() -> None:
    import string

    from gateway.i18n import MESSAGES

    def names(text: str) -> set[str]:
        return {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}

    for key, (zh, en) in MESSAGES.items():
        assert names(zh) == names(en), key
        assert zh != en, key


def test_library_texts_are_rendered_by_their_key_and_the_rest_left_alone() -> None:
    import errno

    from gateway.i18n import render
    from texts import Text, joined, os_reason, where

    text = Text("storage.no_schema", "database has no govgate schema: run `govgate init`")
    assert render(text, "en") == text  # English is never touched
    assert render(text, "zh") == "数据库中没有 govgate 的表结构：请先运行 `govgate init`"
    # a place, then a nested reason; a list, each part by its own key
    missing = os_reason(FileNotFoundError(errno.ENOENT, "No such file or directory"))
    assert render(where("/x/y", missing), "zh") == "/x/y：没有这个文件或目录"
    denied = where("/a", os_reason(PermissionError(errno.EACCES, "Permission denied")))
    not_dir = where("/b", os_reason(NotADirectoryError(errno.ENOTDIR, "Not a directory")))
    both = joined([denied, not_dir])
    assert both == "/a: Permission denied; /b: Not a directory"
    assert render(both, "zh") == "/a：权限不足；/b：不是目录"
    # a part without a key keeps its words; the parts with one are still translated
    assert render(joined([denied, "something new"]), "zh") == "/a：权限不足；something new"
    unreachable = Text("storage.unreachable", "database unreachable: {detail}",
                       detail="connection refused")
    assert render(unreachable, "zh") == "无法连接数据库：connection refused"  # the driver's
    # a plain string is never read, even when it looks like a known text
    assert render("database has no govgate schema: run `govgate init`", "zh") == (
        "database has no govgate schema: run `govgate init`")


def test_a_storage_error_in_both_languages(env: dict[str, str], empty_db_url: str) -> None:
    env = {**env, "GOVGATE_DATABASE_URL": empty_db_url}
    en = run(env, "user", "list")
    assert en.returncode == 1
    assert en.stderr == "error: database has no govgate schema: run `govgate init`\n"
    zh = run(env, "user", "list", lang="zh_CN.UTF-8")
    assert zh.returncode == 1
    assert zh.stderr == "错误：数据库中没有 govgate 的表结构：请先运行 `govgate init`\n"


def test_user_dept_and_system_commands_in_both_languages(initialised: dict[str, str]) -> None:
    """Sentences and errors in Chinese under zh_CN, as before under C; the
    tab-separated listings are the same in both."""
    assert here(initialised, "apply", "-f", str(DEMO_STATE)).returncode == 0

    def both(*args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
        return here(initialised, *args, lang="zh_CN.UTF-8"), here(initialised, *args)

    zh, en = both("user", "add-role", "zhang.san", "auditor")
    assert zh.returncode == 0 and zh.stdout == "已为用户 zhang.san 添加角色 auditor。\n"
    assert en.returncode == 0 and en.stdout == "zhang.san: +auditor\n"
    zh, en = both("user", "add-role", "auditor", "secadmin")
    assert zh.returncode == en.returncode == 1
    assert zh.stderr == ("错误：同一账号不能同时拥有 auditor 和 secadmin 角色（三员分立："
                         "sysadmin、secadmin、auditor 三者互斥）\n")
    assert en.stderr == ("error: roles auditor and secadmin cannot be held by one account "
                         "(三员分立: sysadmin, secadmin and auditor are mutually exclusive)\n")
    zh, en = both("user", "disable", "nobody")
    assert zh.stderr == "错误：用户 'nobody' 不存在\n"
    assert en.stderr == "error: unknown user 'nobody'\n"
    zh, en = both("user", "add", "x.y", "--name", "某人", "-d", "czt", "--role", "boss",
                  "--password", "short")
    assert zh.stderr == "错误：角色 'boss' 不存在\n  - 角色 'boss' 不存在\n"
    assert en.stderr == "error: unknown role 'boss'\n  - unknown role 'boss'\n"
    zh, en = both("user", "add", "x.y", "--name", "某人", "-d", "czt", "--password", "x.y")
    assert zh.stderr == (
        "错误：密码太短：至少 12 位；密码不得与用户名相同\n"
        "  - 密码太短：至少 12 位\n"
        "  - 密码不得与用户名相同\n")
    assert en.stderr.startswith("error: password too short: needs at least 12 characters")
    assert en.stderr.endswith("\n  - password must not be the username\n")
    zh, en = both("dept", "add", "Bad!", "--name", "某部门", "--region", "gx")
    assert zh.stderr == "错误：部门代码 'Bad!' 无效（只能含小写字母、数字和 ._-）\n"
    assert en.stderr == "error: bad department code 'Bad!' (lower-case letters, digits, ._-)\n"
    zh, en = both("dept", "add", "czt", "--name", "财政厅", "--region", "gx")
    assert zh.stderr == "错误：部门 'czt' 已存在\n"
    assert en.stderr == "error: department 'czt' exists\n"
    zh, en = both("dept", "add", "sft", "--name", "司法厅", "--region", "nowhere")
    assert zh.stderr == "错误：区域 'nowhere' 不存在\n"
    assert en.stderr == "error: unknown region 'nowhere'\n"
    zh, en = both("user", "list", "-d", "czt")
    assert zh.stdout == en.stdout and zh.stdout.startswith("username\tname\tdepartment\t")
    # system add|update validate the options as a state-file entry; the refusal names
    # the command's system, not a file (it was "1 problem(s) in the state file" and
    # "systems[0]: ..." before)
    zh, en = both("system", "add", "fleet", "--name", "公务用车", "-d", "nowhere",
                  "--upstream", "ftp://10.0.0.9")
    assert zh.returncode == en.returncode == 1
    assert zh.stderr == ("错误：未登记系统 fleet\n  - 部门 'nowhere' 不存在\n"
                         "  - upstream：URL 'ftp://10.0.0.9' 无效（须以 http:// 或 https:// "
                         "开头，并含主机名）\n")
    assert en.stderr == ("error: system fleet not registered\n  - unknown department 'nowhere'\n"
                         "  - upstream: bad URL 'ftp://10.0.0.9' (needs http:// or https:// "
                         "and a host)\n")
    zh, en = both("system", "update", "vehicles", "--upstream", "gopher://x")
    assert zh.stderr == ("错误：未修改系统 vehicles\n  - upstream：URL 'gopher://x' 无效"
                         "（须以 http:// 或 https:// 开头，并含主机名）\n")
    assert en.stderr.startswith("error: system vehicles not changed\n  - upstream: bad URL")
    assert "state file" not in en.stderr + zh.stderr and "状态文件" not in zh.stderr
    # a header-trusting system from the CLI alone (docs/integration.md): the options
    # the state file and the console have (--remote-user was missing)
    zh, en = both("system", "add", "fleet", "--name", "公务用车", "-d", "jgswj",
                  "--upstream", "http://10.0.0.9:8080", "--identity-headers", "plain",
                  "--remote-user")
    assert zh.returncode == 0 and zh.stdout == "已添加系统 fleet。\n"
    assert en.returncode == 1 and en.stderr == "error: system 'fleet' exists\n"
    exported = here(initialised, "export").stdout
    assert "remote_user: true" in exported[exported.index("code: fleet"):].split("\n- ")[0]
    assert here(initialised, "system", "update", "fleet", "--portal-path", "/index.do",
                "--no-remote-user").returncode == 0
    exported = here(initialised, "export").stdout
    fleet = exported[exported.index("code: fleet"):].split("\n- ")[0]
    assert "identity_headers: plain" in fleet and "portal_path: /index.do" in fleet
    assert "remote_user" not in fleet  # false, the default
    zh, en = both("dept", "list")
    assert zh.stdout == en.stdout and zh.stdout.startswith("code\tname\tregion\tparent\n")


def test_state_file_problems_in_both_languages(initialised: dict[str, str],
                                               tmp_path: Path) -> None:
    """apply's problems: each place and problem in Chinese under zh_CN, as before under C."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "departments:\n"
        "  - {code: x, name: 某部门, region: nowhere}\n"
        "users:\n"
        "  - {username: a.b, name: 甲, department: x, roles: [sysadmin, secadmin]}\n"
        "systems:\n"
        "  - {code: s1, name: 系统, department: x, upstream: 'ftp://x', portal_path: p}\n"
        "bogus: []\n", encoding="utf-8")
    zh = here(initialised, "apply", "-f", str(bad), lang="zh_CN.UTF-8")
    assert zh.returncode == 1 and zh.stdout == ""
    assert zh.stderr == (
        "错误：状态文件中有 5 处问题\n"
        "  - 未知的部分 'bogus'（第 1 行）；可用的部分：calendar, catalogue, clients, departments, "
        "grants, policies, regions, systems, users\n"
        "  - departments[0]（第 2 行）：区域 'nowhere' 不存在\n"
        "  - users[0]（第 4 行）：同一账号不能同时拥有 secadmin 和 sysadmin 角色（三员分立："
        "sysadmin、secadmin、auditor 三者互斥）\n"
        "  - systems[0]（第 6 行）：upstream：URL 'ftp://x' 无效（须以 http:// 或 https:// 开头，"
        "并含主机名）\n"
        "  - systems[0]（第 6 行）：portal_path 必须以 / 开头\n")
    en = here(initialised, "apply", "-f", str(bad))
    assert en.stderr == (
        "error: 5 problem(s) in the state file\n"
        "  - unknown section 'bogus' (line 1); known: calendar, catalogue, clients, departments, "
        "grants, policies, regions, systems, users\n"
        "  - departments[0] (line 2): unknown region 'nowhere'\n"
        "  - users[0] (line 4): roles secadmin and sysadmin cannot be held by one account "
        "(三员分立: sysadmin, secadmin and auditor are mutually exclusive)\n"
        "  - systems[0] (line 6): upstream: bad URL 'ftp://x' (needs http:// or https:// and a "
        "host)\n"
        "  - systems[0] (line 6): portal_path must start with /\n")
    missing = tmp_path / "missing.yaml"
    zh = here(initialised, "apply", "-f", str(missing), lang="zh_CN.UTF-8")
    assert zh.stderr == f"错误：{missing}：没有这个文件或目录\n"
    assert here(initialised, "apply", "-f", str(missing)).stderr == (
        f"error: {missing}: No such file or directory\n")


def test_demo_refuses_a_foreign_home_in_both_languages(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    home = tmp_path / "mine"
    home.mkdir()
    (home / "keep.txt").write_text("x")
    zh = run(env, "demo", "--home", str(home), lang="zh_CN.UTF-8")
    assert zh.returncode == 1
    assert zh.stderr == f"错误：{home} 已存在且不是演示目录；请换一个 --home\n"
    en = run(env, "demo", "--home", str(home))
    assert en.returncode == 1
    assert en.stderr == f"Error: {home} exists and is not a demo directory; choose another --home\n"
    assert (home / "keep.txt").exists()


def test_weak_passwords_are_refused_by_user_add_and_apply(initialised: dict[str, str],
                                                          tmp_path: Path) -> None:
    """The one rule behind the portal, the CLI and the state file, in both languages."""
    for password, zh, en in (
        ("123456789012", "密码太容易猜到", "password too easy to guess"),
        ("Password1", "密码太短：至少 12 位", "password too short: needs at least 12"),
        (" " * 12, "密码不得全为空白字符", "password must not be only whitespace"),
    ):
        args = ("user", "add", "x.y", "--name", "某人", "-d", "platform", "--password", password)
        result = here(initialised, *args, lang="zh_CN.UTF-8")
        assert result.returncode == 1 and zh in result.stderr, result.stderr
        result = here(initialised, *args)
        assert result.returncode == 1 and en in result.stderr, result.stderr
    state = tmp_path / "weak.yaml"
    state.write_text("users:\n  - {username: x.y, name: 某人, department: platform, "
                     "password: \"short1A!\"}\n", encoding="utf-8")
    result = here(initialised, "apply", "-f", str(state), lang="zh_CN.UTF-8")
    assert result.returncode == 1 and "密码太短：至少 12 位" in result.stderr, result.stderr
    good = here(initialised, "user", "add", "x.y", "--name", "某人", "-d", "platform",
               "--password", "Tb7#kq9!Lm2x-Vr")
    assert good.returncode == 0, good.stderr
