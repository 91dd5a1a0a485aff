"""The demo's printout, from the demo's own file, in both languages."""

from __future__ import annotations

from gateway.cli.demo_guide import account_lines, try_lines
from gateway.demo import DEMO_STATE
from gateway.statefile import load_file

DOC = load_file(DEMO_STATE)
ADMINS = [("sysadmin", "pw-1"), ("secadmin", "pw-2"), ("auditor", "pw-3")]


def test_accounts_name_roles_and_admin_duties_in_chinese() -> None:
    lines = account_lines(DOC, ADMINS, password="P", lang="zh")
    zhang = next(line for line in lines if "zhang.san" in line)
    assert "机关事务管理局 (jgswj)" in zhang and "工作人员、数据管理员" in zhang
    assert any("auditor" in line and "审计管理员：查阅审计日志" in line for line in lines)
    assert any("三员分立" in line for line in lines)
    assert not any("staff" in line or "steward" in line for line in lines)


def test_try_names_an_applicant_without_a_grant_and_the_steward() -> None:
    lines = try_lines(DOC, gateway="http://g", sso={"offices": "http://o"}, home=".d",
                      lang="en")
    text = "\n".join(lines)
    assert "sign in as wang.wu at http://g/portal and apply for JG-0001" in text
    assert "data steward zhang.san" in text and "open http://o/login" in text
