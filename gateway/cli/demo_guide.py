"""What ``govgate demo`` prints: the addresses, each account with its department and
roles (who is a data steward, who is an admin and what that admin does), and what to
try. Pure: the demo's state document and the admins' first passwords in, lines out.

Its texts are keyed here, in both languages, beside the one function that uses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TEXTS: dict[str, tuple[str, str]] = {
    "role.staff": ("工作人员", "staff"),
    "role.data_steward": ("数据管理员（审核本部门资源的共享申请）",
                          "data steward (reviews applications for the department's data)"),
    "role.sysadmin": ("系统管理员：账号、部门、系统的运维（命令行）",
                      "system admin: accounts, departments, systems (CLI)"),
    "role.secadmin": ("安全管理员：决定协商中的共享申请",
                      "security admin: decides escalated applications"),
    "role.auditor": ("审计管理员：查阅审计日志", "auditor: reads the audit log"),
    "staff_accounts": ("业务账号（密码 {password}）：", "business accounts (password {password}):"),
    "admin_accounts": (
        "管理员账号（三员分立：不能使用业务系统，也不能申请数据；首次登录须修改密码并绑定身份验证器）：",
        "admin accounts (separation of duties: no business systems, no data applications; "
        "change the password and set up an authenticator at first sign-in):"),
    "try": ("可以试试：", "things to try:"),
    "try.portal": ("以 {user} 登录门户 {url}/portal，在“共享目录”中申请 {resource}",
                   "sign in as {user} at {url}/portal and apply for {resource} in the catalogue"),
    "try.review": ("以数据管理员 {user} 登录，在“共享申请”中审核该申请",
                   "sign in as the data steward {user} and review it under Applications"),
    "try.sso": ("单点登录到 {name}：打开 {url}/login",
                "single sign-on into {name}: open {url}/login"),
    "try.api": ("财务系统通过网关读取数据（README“Try the data-sharing flow”）",
                "the finance system reads data through the gateway "
                "(README, \"Try the data-sharing flow\")"),
    "try.audit": ("查看审计记录：{command}", "read the audit log: {command}"),
}


def text(key: str, lang: str, **kwargs: Any) -> str:
    zh, en = TEXTS[key]
    return (zh if lang == "zh" else en).format(**kwargs)


def role_names(roles: Sequence[str], lang: str) -> str:
    sep = "、" if lang == "zh" else ", "
    return sep.join(text(f"role.{r}", lang) if f"role.{r}" in TEXTS else r for r in roles)


def account_lines(doc: Mapping[str, Any], admins: Sequence[tuple[str, str]], *,
                  password: str, lang: str) -> list[str]:
    """The demo's business accounts, then the admins with their first passwords."""
    depts = {d["code"]: d["name"] for d in doc.get("departments", [])}
    lines = ["  " + text("staff_accounts", lang, password=password)]
    for user in doc.get("users", []):
        dept = depts.get(user["department"], user["department"])
        lines.append(f"    {user['username']:<10} {user['name']}  {dept} ({user['department']})"
                     f"  {role_names(user.get('roles') or ['staff'], lang)}")
    if admins:
        lines.append("  " + text("admin_accounts", lang))
        for username, first_password in admins:
            lines.append(f"    {username:<10} {first_password}  {role_names([username], lang)}")
    return lines


def try_lines(doc: Mapping[str, Any], *, gateway: str, sso: Mapping[str, str],
              home: str, lang: str) -> list[str]:
    """Numbered things to try, from the demo's own accounts, resources and systems.
    ``sso``: system code → its address, for systems that sign users in themselves."""
    users = doc.get("users", [])
    resources = doc.get("catalogue", [])
    conditional = next((r for r in resources if r.get("share_type") == "conditional"), None)
    lines = ["  " + text("try", lang)]
    steps: list[str] = []
    if conditional is not None:
        provider = conditional["provider"]
        granted = {g["consumer"] for g in doc.get("grants", [])
                   if g.get("resource") == conditional["code"]}
        applicant = next((u for u in users
                          if u["department"] not in granted | {provider}), None)
        steward = next((u for u in users if u["department"] == provider
                        and "data_steward" in (u.get("roles") or [])), None)
        if applicant is not None:
            steps.append(text("try.portal", lang, user=applicant["username"], url=gateway,
                              resource=conditional["code"]))
        if steward is not None:
            steps.append(text("try.review", lang, user=steward["username"]))
    names = {s["code"]: s["name"] for s in doc.get("systems", [])}
    for code, url in sso.items():
        steps.append(text("try.sso", lang, name=names.get(code, code), url=url))
    steps.append(text("try.api", lang))
    steps.append(text("try.audit", lang,
                      command=f".venv/bin/govgate --home {home} audit query --limit 10"))
    lines += [f"    {n}. {step}" for n, step in enumerate(steps, 1)]
    return lines
