"""The demo's directory-backed department: 办公厅 (``bgt``) and its people live in an
OpenLDAP ``slapd`` the demo starts in its home, not in the demo's state file. The
demo syncs them in (``govgate directory sync``), and they sign in with the directory's
password by LDAP bind (docs/directory.md). Without Debian's ``slapd`` the demo runs
without this department and says so."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from gateway.demo.slapd import SlapdProcess, free_port, installed

BASE = "dc=demo,dc=gov,dc=cn"
ADMIN_DN = f"cn=admin,{BASE}"
DEPARTMENT = ("办公厅", "bgt")
# uid, name, group: the demo's password, as the state file's people have
PEOPLE = (("sun.li", "孙丽", "数据管理员"), ("qian.jin", "钱进", ""), ("he.fang", "何芳", ""))
LOCKED = ("he.fang",)  # a locked directory account arrives disabled
GROUP_ROLES = ("数据管理员=data_steward",)


def tree_ldif(password: str) -> str:
    ou, code = DEPARTMENT
    unit = f"ou={ou},ou=部门,{BASE}"
    blocks = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: demo\n"
              "o: 机关事务演示\n",
              f"dn: ou=部门,{BASE}\nobjectClass: organizationalUnit\nou: 部门\n",
              f"dn: ou=组,{BASE}\nobjectClass: organizationalUnit\nou: 组\n",
              f"dn: {unit}\nobjectClass: organizationalUnit\nou: {ou}\n"
              f"businessCategory: {code}\n"]
    for uid, name, _group in PEOPLE:
        lines = [f"dn: uid={uid},{unit}", "objectClass: inetOrgPerson", f"uid: {uid}",
                 f"cn: {name}", f"sn: {name[0]}", f"mail: {uid}@bgt.example.gov.cn",
                 f"userPassword: {password}"]
        if uid in LOCKED:
            lines.append("pwdAccountLockedTime: 000001010000Z")
        blocks.append("\n".join(lines) + "\n")
    for group in sorted({g for _u, _n, g in PEOPLE if g}):
        blocks.append(f"dn: cn={group},ou=组,{BASE}\nobjectClass: groupOfNames\ncn: {group}\n"
                      + "".join(f"member: uid={uid},{unit}\n"
                                for uid, _n, g in PEOPLE if g == group))
    return "\n".join(blocks)


@dataclass
class DemoDirectory:
    server: SlapdProcess
    settings: dict[str, str | int | list[str]]
    password: str = ""  # the people's (the demo's staff password), for the printout

    @property
    def url(self) -> str:
        return str(self.server.urls[0])

    def stop(self) -> None:
        self.server.stop()


def start_directory(home: Path, *, password: str, region: str) -> DemoDirectory | None:
    """A running slapd under ``home/directory`` with the department's tree, and the
    settings that name it; None when slapd is not installed."""
    if not installed():
        return None
    root = home / "directory"
    root.mkdir()
    port = free_port()
    admin_password = secrets.token_urlsafe(18)
    (root / "bind-password").write_text(admin_password + "\n", encoding="utf-8")
    (root / "bind-password").chmod(0o600)
    url = f"ldap://127.0.0.1:{port}"
    server = SlapdProcess(root, BASE, ADMIN_DN, admin_password, urls=(url,), ports=(port,),
                          die_with_parent=True)
    server.prepare(tree_ldif(password))
    server.start()
    return DemoDirectory(server, {
        "directory_url": url, "directory_base_dn": BASE, "directory_bind_dn": ADMIN_DN,
        "directory_bind_password_file": str((root / "bind-password").resolve()),
        "directory_region": region, "directory_group_roles": list(GROUP_ROLES)}, password)
