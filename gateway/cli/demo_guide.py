"""What ``govgate demo`` prints: the addresses, each account with its department and
roles (who is a data steward, who is an admin and what that admin does), and what to
try. Pure: the demo's state document and the admins' first passwords in, lines out.

Its texts are in the CLI's table (``demo.*`` in gateway/messages.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.i18n import t

# role → its line in the printout (gateway/messages.py)
ROLE_KEYS: dict[str, str] = {
    "staff": "demo.role_staff",
    "data_steward": "demo.role_data_steward",
    "dept_head": "demo.role_dept_head",
    "sysadmin": "demo.role_sysadmin",
    "secadmin": "demo.role_secadmin",
    "auditor": "demo.role_auditor",
}


def role_names(roles: Sequence[str], lang: str) -> str:
    sep = "、" if lang == "zh" else ", "
    return sep.join(t(ROLE_KEYS[r], lang) if r in ROLE_KEYS else r for r in roles)


def account_lines(doc: Mapping[str, Any], admins: Sequence[tuple[str, str]], *,
                  password: str, lang: str) -> list[str]:
    """The demo's business accounts, then the admins with their first passwords."""
    depts = {d["code"]: d["name"] for d in doc.get("departments", [])}
    lines = ["  " + t("demo.staff_accounts", lang, password=password)]
    for user in doc.get("users", []):
        dept = depts.get(user["department"], user["department"])
        lines.append(f"    {user['username']:<10} {user['name']}  {dept} ({user['department']})"
                     f"  {role_names(user.get('roles') or ['staff'], lang)}")
    if admins:
        lines.append("  " + t("demo.admin_accounts", lang))
        for username, first_password in admins:
            lines.append(f"    {username:<10} {first_password}  {role_names([username], lang)}")
    return lines


def try_lines(doc: Mapping[str, Any], *, gateway: str, sso: Mapping[str, str],
              home: str, lang: str, cas: Mapping[str, str] | None = None) -> list[str]:
    """Numbered things to try, from the demo's own accounts, resources and systems.
    ``sso``: system code → its address, for systems that sign users in themselves by
    OpenID Connect; ``cas``: the same, by CAS."""
    users = doc.get("users", [])
    resources = doc.get("catalogue", [])
    conditional = next((r for r in resources if r.get("share_type") == "conditional"), None)
    lines = ["  " + t("demo.try", lang)]
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
            steps.append(t("demo.try_portal", lang, user=applicant["username"], url=gateway,
                              resource=conditional["code"]))
        if steward is not None:
            steps.append(t("demo.try_review", lang, user=steward["username"]))
    names = {s["code"]: s["name"] for s in doc.get("systems", [])}
    for code, url in sso.items():
        steps.append(t("demo.try_sso", lang, name=names.get(code, code), url=url))
    departments = {s["code"]: s["department"] for s in doc.get("systems", [])}
    for code, url in (cas or {}).items():
        # a user of the system's department: the launcher lists the system for them
        user = next((u["username"] for u in users if u["department"] == departments.get(code)),
                    users[0]["username"] if users else "")
        steps.append(t("demo.try_cas", lang, name=names.get(code, code), user=user, url=url))
    steps.append(t("demo.try_api", lang))
    steps.append(t("demo.try_audit", lang,
                      command=f".venv/bin/govgate --home {home} audit query --limit 10"))
    lines += [f"    {n}. {step}" for n, step in enumerate(steps, 1)]
    return lines
