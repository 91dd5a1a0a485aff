"""A real rsyslogd (Debian's ``rsyslog`` and ``rsyslog-gnutls``) for the shipping
tests: its own configuration, port and files under a temporary folder, in the
foreground (``-n``), never the system's service. It accepts RFC 5425 (TLS, the
certificate a ``trustme`` CA issued; on a second port only from a client with a
certificate of that CA) and plain TCP, and writes what it parsed of each govgate
message (PRI, header fields, structured data, MSG) as one JSON line."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import trustme

RSYSLOGD = shutil.which("rsyslogd") or (
    "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None)

CONFIG = """\
global(workDirectory="{work}" maxMessageSize="64k"
       defaultNetstreamDriverCAFile="{ca}"
       defaultNetstreamDriverCertFile="{cert}" defaultNetstreamDriverKeyFile="{key}")
module(load="imtcp")
input(type="imtcp" port="{port}" address="127.0.0.1" streamDriver.name="gtls"
      streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" port="{plain_port}" address="127.0.0.1")
input(type="imtcp" port="{mtls_port}" address="127.0.0.1" streamDriver.name="gtls"
      streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
template(name="parsed" type="list" option.jsonf="on") {{
  property(outname="pri" name="pri" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="time" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
if $app-name == "govgate" then {{
  action(type="omfile" file="{out}" template="parsed")
}} else {{
  action(type="omfile" file="{work}/other.log")
}}
"""

SD_PARAM = re.compile(r'([^ =\]"]+)="((?:[^"\\]|\\.)*)"')


def sd_params(sd: str) -> dict[str, str]:
    """The parameters of one SD-ELEMENT, unescaped (RFC 5424 §6.3.3)."""
    return {name: re.sub(r"\\(.)", r"\1", value) for name, value in SD_PARAM.findall(sd)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    def __init__(self, folder: Path, ca: trustme.CA) -> None:
        self.folder = folder
        self.port = free_port()  # TLS (RFC 5425)
        self.plain_port, self.mtls_port = self.port, self.port
        while len({self.port, self.plain_port, self.mtls_port}) < 3:
            self.plain_port = free_port()  # TCP (RFC 6587)
            self.mtls_port = free_port()  # TLS, a client certificate the CA issued required
        self.out = folder / "received.jsonl"
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(folder / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
        ca.cert_pem.write_to_path(str(folder / "ca.pem"))
        self.conf = folder / "rsyslog.conf"
        self.conf.write_text(CONFIG.format(
            work=folder, ca=folder / "ca.pem", cert=folder / "cert.pem",
            key=folder / "key.pem", port=self.port, plain_port=self.plain_port,
            mtls_port=self.mtls_port, out=self.out), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert RSYSLOGD is not None
        errors = self.folder / "rsyslogd.err"
        with open(errors, "ab") as err:
            self.proc = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.folder / "rsyslogd.pid")],
                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, errors.read_text(errors="replace")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("rsyslogd did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def received(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text(encoding="utf-8").splitlines()]

    def ids(self) -> set[int]:
        return {int(sd_params(m["sd"])["id"]) for m in self.received()}

    def wait_for(self, ids: set[int], seconds: float = 10) -> set[int]:
        """The ids received, once ``ids`` are among them (or the deadline passed)."""
        deadline = time.monotonic() + seconds
        while not ids <= (got := self.ids()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return got
