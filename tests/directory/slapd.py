"""A real OpenLDAP ``slapd`` for the directory tests: its own temporary directory,
configuration (``slapd -f``), certificates (trustme), and a tree loaded with
``slapadd`` before it starts: departments as OUs named in Chinese, 500 people, groups
that map to roles, some accounts locked (``pwdAccountLockedTime``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import trustme

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> str:
        return str(self.root / "ca.pem")

    def prepare(self, ldif: str) -> None:
        (self.root / "data").mkdir(parents=True)
        self.ca.cert_pem.write_to_path(self.ca_file)
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        (self.root / "key.pem").chmod(0o600)
        conf = "\n".join([
            *(f"include {SCHEMA / s}.schema" for s in ("core", "cosine", "inetorgperson")),
            f"modulepath {MODULES}", "moduleload back_mdb", "moduleload ppolicy",
            f"pidfile {self.root / 'slapd.pid'}",
            f"TLSCACertificateFile {self.ca_file}",
            f"TLSCertificateFile {self.root / 'cert.pem'}",
            f"TLSCertificateKeyFile {self.root / 'key.pem'}",
            "database mdb", f'suffix "{BASE}"', f'rootdn "{ADMIN_DN}"',
            f"rootpw {ADMIN_PASSWORD}", f"directory {self.root / 'data'}",
            "maxsize 104857600", "index uid,member eq", "overlay ppolicy", ""])
        (self.root / "slapd.conf").write_text(conf, encoding="utf-8")
        (self.root / "tree.ldif").write_text(ldif, encoding="utf-8")
        subprocess.run([SLAPADD, "-q", "-f", str(self.root / "slapd.conf"),
                        "-l", str(self.root / "tree.ldif")],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        with open(self.root / "slapd.log", "ab") as log:
            self.process = subprocess.Popen(
                [SLAPD, "-d", "0", "-f", str(self.root / "slapd.conf"),
                 "-h", f"{self.url}/ {self.ldaps_url}/"],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("slapd did not start: " + (self.root / "slapd.log")
                                   .read_text(errors="replace")[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", self.tls_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
