"""A real OpenLDAP ``slapd`` for the directory tests: its own temporary directory,
configuration (``slapd -f``), certificates (trustme), and a tree loaded with
``slapadd`` before it starts: departments as OUs named in Chinese, 500 people, groups
that map to roles, some accounts locked (``pwdAccountLockedTime``)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from gateway.demo.slapd import SLAPD, SlapdProcess, free_port

__all__ = ["SLAPD", "Slapd", "free_port"]
BASE = "dc=gov,dc=cn"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "slapd-admin-Pw-9"
USER_PASSWORD = "Directory-Pw-2026"
PEOPLE = 500
# (OU name, govgate department code): two parents, two below them
DEPARTMENTS = (("机关事务管理局", "jgswglj", None), ("财政厅", "czt", None),
               ("办公室", "jgswglj.bgs", "机关事务管理局"), ("预算处", "czt.ysc", "财政厅"))
LOCKED = ("user0007", "user0123")
GROUPS = {"系统管理员": ("user0001",), "审计员": ("user0002",),
          "数据管理员": tuple(f"user{n:04d}" for n in range(10, 20))}


def ou_dn(name: str) -> str:
    for ou, _code, parent in DEPARTMENTS:
        if ou == name:
            return f"ou={ou},{ou_dn(parent)}" if parent else f"ou={ou},ou=部门,{BASE}"
    raise KeyError(name)


def person_dn(n: int) -> str:
    return f"uid=user{n:04d},{ou_dn(DEPARTMENTS[n % len(DEPARTMENTS)][0])}"


def tree_ldif() -> str:
    blocks = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: gov\n"
              "o: 广西壮族自治区人民政府\n",
              f"dn: ou=部门,{BASE}\nobjectClass: organizationalUnit\nou: 部门\n",
              f"dn: ou=组,{BASE}\nobjectClass: organizationalUnit\nou: 组\n"]
    for ou, code, _parent in DEPARTMENTS:
        blocks.append(f"dn: {ou_dn(ou)}\nobjectClass: organizationalUnit\nou: {ou}\n"
                      f"businessCategory: {code}\n")
    for n in range(PEOPLE):
        uid = f"user{n:04d}"
        lines = [f"dn: {person_dn(n)}", "objectClass: inetOrgPerson", f"uid: {uid}",
                 f"cn: 测试用户{n:04d}", f"sn: 用户{n:04d}", f"mail: {uid}@gxzf.gov.cn",
                 f"userPassword: {USER_PASSWORD}"]
        if uid in LOCKED:
            lines.append("pwdAccountLockedTime: 000001010000Z")
        blocks.append("\n".join(lines) + "\n")
    for cn, members in GROUPS.items():
        blocks.append(f"dn: cn={cn},ou=组,{BASE}\nobjectClass: groupOfNames\ncn: {cn}\n"
                      + "".join(f"member: {person_dn(int(m[4:]))}\n" for m in members))
    return "\n".join(blocks)


@dataclass
class Slapd:
    root: Path
    ca: trustme.CA
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    server: SlapdProcess | None = None
    extra_conf: tuple[str, ...] = ()  # global (sizelimit ...)
    database_conf: tuple[str, ...] = ()  # the database's (limits ...)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> str:
        return str(self.root / "ca.pem")

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.server.process if self.server else None

    def prepare(self, ldif: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ca.cert_pem.write_to_path(self.ca_file)
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        (self.root / "key.pem").chmod(0o600)
        self.server = SlapdProcess(
            self.root, BASE, ADMIN_DN, ADMIN_PASSWORD, urls=(self.url, self.ldaps_url),
            ports=(self.port, self.tls_port), extra_conf=(
                f"TLSCACertificateFile {self.ca_file}",
                f"TLSCertificateFile {self.root / 'cert.pem'}",
                f"TLSCertificateKeyFile {self.root / 'key.pem'}", *self.extra_conf),
            database_conf=self.database_conf)
        self.server.prepare(ldif)

    def start(self) -> None:
        assert self.server is not None, "prepare() first"
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
