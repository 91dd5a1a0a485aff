"""A real OpenLDAP ``slapd`` of its own: a configuration file (``slapd -f``, no system
configuration touched), a tree loaded with ``slapadd`` before it starts, listening on
127.0.0.1 only. The demo's directory-backed department runs one when Debian's
``slapd`` is installed; the directory tests run one with TLS and 500 people."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")


def installed() -> bool:
    """Whether Debian's ``slapd`` (and its ``slapadd``) are here."""
    return Path(SLAPD).exists() and Path(SLAPADD).exists()


def _die_with_parent() -> None:
    # Linux's PR_SET_PDEATHSIG: slapd ends with the demo however the demo ends (kill -9
    # too), so no stray directory keeps a port after it
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SlapdProcess:
    """One ``slapd`` under ``root``; ``ports`` are checked for listening at start."""

    root: Path
    base: str
    admin_dn: str
    admin_password: str
    urls: Sequence[str]
    ports: Sequence[int]
    extra_conf: Sequence[str] = ()
    database_conf: Sequence[str] = ()  # the database's own (limits ...)
    die_with_parent: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def prepare(self, ldif: str) -> None:
        """Write the configuration and load ``ldif`` (slapd is not running yet)."""
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        conf = "\n".join([
            *(f"include {SCHEMA / s}.schema" for s in ("core", "cosine", "inetorgperson")),
            f"modulepath {MODULES}", "moduleload back_mdb", "moduleload ppolicy",
            f"pidfile {self.root / 'slapd.pid'}", *self.extra_conf,
            "database mdb", f'suffix "{self.base}"', f'rootdn "{self.admin_dn}"',
            f"rootpw {self.admin_password}", f"directory {self.root / 'data'}",
            *self.database_conf,
            "maxsize 104857600", "index uid,member eq", "overlay ppolicy", ""])
        (self.root / "slapd.conf").write_text(conf, encoding="utf-8")
        (self.root / "tree.ldif").write_text(ldif, encoding="utf-8")
        subprocess.run([SLAPADD, "-q", "-f", str(self.root / "slapd.conf"),
                        "-l", str(self.root / "tree.ldif")],
                       check=True, capture_output=True, timeout=60)

    def start(self, timeout: float = 10.0) -> None:
        with open(self.root / "slapd.log", "ab") as log:
            self.process = subprocess.Popen(
                [SLAPD, "-d", "0", "-f", str(self.root / "slapd.conf"),
                 "-h", " ".join(f"{url}/" for url in self.urls)],
                stdout=subprocess.DEVNULL, stderr=log,
                preexec_fn=_die_with_parent if self.die_with_parent else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("slapd did not start: " + (self.root / "slapd.log")
                                   .read_text(errors="replace")[-2000:])
            try:
                for port in self.ports:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"slapd did not listen within {timeout:g} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
