"""A real gateway for load and fault runs: ``govgate serve`` in its own process
against a database, in front of ``bench.upstream`` (its own process too), with a
state of departments, users, clients and catalogue resources made for the runs.
The load run (``bench.load``, ``bench/bench_load.py``) and the fault tests
(``tests/faults/``) share it; everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Load-Run-Passw0rd-2026!"  # every run user's; strong enough for the rule
LOADER = ("loader", "loader-secret-0123456789abcdef0123")  # jgswj: the system's owner
OUTSIDER = ("outsider", "outsider-secret-0123456789abcdef01")  # czt: refused
WEB = ("web", "web-secret-0123456789abcdef0123456789")  # users' code flow + refresh
WEB_CALLBACK = "http://127.0.0.1:9/cb"
SYSTEM = "api"

# what every run's gateway is started with, beside GOVGATE_HOME and the database:
# no per-client rate limit (the load is the point), and an upstream that does not
# answer within a second is given up (504) quickly
SERVE_ENV = {
    "GOVGATE_PROXY_RATE": "1000000",
    "GOVGATE_PROXY_BURST": "1000000",
    "GOVGATE_UPSTREAM_CONNECT_TIMEOUT": "2",
    "GOVGATE_UPSTREAM_READ_TIMEOUT": "1",
    "GOVGATE_AUDIT_CHECKPOINT_SECONDS": "1",
}


_TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
               "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _python_env(env: Mapping[str, str]) -> dict[str, str]:
    out = dict(env)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), out.get("PYTHONPATH")) if p)
    return out


class Upstream:
    """``bench.upstream`` in a process of its own (it answers while this one loads)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.upstream", "--port", "0"], cwd=ROOT,
            env=_python_env(os.environ), stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready "):
            self.close()
            raise RuntimeError(f"the upstream did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        """``open``: connections open to it besides the one asking; ``served``."""
        return dict(httpx.get(f"{self.url}/_stats", timeout=5).json())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def users(count: int) -> list[str]:
    return [f"user{i:03d}" for i in range(count)]


def state(upstream: str, *, user_count: int) -> dict[str, Any]:
    """The runs' state file: system ``api`` of jgswj at ``upstream``; ``loader`` (jgswj)
    may call it, ``outsider`` (czt) may not; users sign in through ``web``; the
    catalogue shapes ``/api/items`` (``phone`` withheld, ``owner`` masked) and
    ``/api/badjson`` (an upstream answer that is not JSON: refused)."""
    return {
        "regions": [{"code": "gx", "name": "某省"}],
        "departments": [{"code": "jgswj", "name": "机关事务管理局", "region": "gx"},
                        {"code": "czt", "name": "财政厅", "region": "gx"}],
        "users": [{"username": name, "name": f"用户{name[4:]}", "department": "jgswj",
                   "roles": ["staff"], "password": PASSWORD, "must_change": False}
                  for name in users(user_count)],
        "systems": [{"code": SYSTEM, "name": "接口系统", "department": "jgswj",
                     "upstream": upstream}],
        "clients": [
            {"client_id": LOADER[0], "name": "负载客户端", "department": "jgswj",
             "grant_types": ["client_credentials"], "secret": LOADER[1],
             "scope": "proxy catalogue:read"},
            {"client_id": OUTSIDER[0], "name": "外单位客户端", "department": "czt",
             "grant_types": ["client_credentials"], "secret": OUTSIDER[1],
             "scope": "proxy catalogue:read"},
            {"client_id": WEB[0], "name": "办公门户", "department": "jgswj",
             "grant_types": ["authorization_code", "refresh_token"], "secret": WEB[1],
             "scope": "openid profile proxy catalogue:read",
             "redirect_uris": [WEB_CALLBACK]},
        ],
        "catalogue": [
            {"code": "JG-0100", "name": "物品清单", "provider": "jgswj", "system": SYSTEM,
             "share_type": "unconditional", "update_cycle": "daily",
             "route": {"method": "GET", "path": "/api/items", "records": "items"},
             "items": [{"name": "id", "title": "编号", "type": "integer", "level": 1},
                       {"name": "name", "title": "名称", "level": 1},
                       {"name": "owner", "title": "保管人", "level": 2,
                        "mask": "keep_first_char"}]},
            {"code": "JG-0101", "name": "坏数据", "provider": "jgswj", "system": SYSTEM,
             "share_type": "unconditional", "update_cycle": "daily",
             "route": {"method": "GET", "path": "/api/badjson", "records": "items"},
             "items": [{"name": "id", "title": "编号", "type": "integer", "level": 1}]},
        ],
    }


def prepare(env: Mapping[str, str], upstream: str, *, user_count: int = 8) -> None:
    """Initialise the database named by ``env`` and apply :func:`state` to it, as
    ``govgate init`` and ``govgate apply`` would (in this process)."""
    from gateway.passwords import generate_password
    from gateway.root import state_applier
    from gateway.services import open_services
    from gateway.settings import load_settings
    from gateway.setup import initialise

    settings = load_settings(env)
    initialise(settings, password_factory=generate_password)
    services = open_services(settings, writer="cli", actor="os:bench")
    try:
        state_applier(services).apply(state(upstream, user_count=user_count))
    finally:
        services.close()


class GatewayProcess:
    """``python -m gateway.cli serve`` on a free port of 127.0.0.1 with ``env``."""

    def __init__(self, env: Mapping[str, str], *, port: int | None = None,
                 extra: Mapping[str, str] | None = None, workers: int = 1) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = _python_env({**env, **SERVE_ENV, "GOVGATE_ISSUER": self.url,
                                **(extra or {})})
        self.proc: subprocess.Popen[bytes] | None = None
        # its log in a file: a pipe nobody reads would fill and block the server
        self.log = Path(self.env["GOVGATE_HOME"]) / f"serve-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--port", str(self.port),
                 "--workers", str(self.workers)],
                cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"govgate serve exited: {self.stderr()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"govgate serve did not answer /healthz in {timeout:.0f} s: "
                                   f"{self.stderr()}")
            time.sleep(0.05)

    def stderr(self) -> str:
        """The end of what the server logged."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no lifespan, no flush, no lease released."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait: the exit status (None: it never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def rss_kib(self) -> int:
        """Resident memory (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def sockets_to(self, port: int) -> Counter[str]:
        """The process's TCP sockets to 127.0.0.1:``port`` by state (``ESTABLISHED``,
        ``CLOSE_WAIT``: the peer closed and the process did not, ...): its pool."""
        inodes = set()
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        found: Counter[str] = Counter()
        remote = f"0100007F:{port:04X}"
        for line in Path(f"/proc/{self.pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2] == remote and fields[9] in inodes:
                found[_TCP_STATES.get(fields[3], fields[3])] += 1
        return found

    @contextlib.contextmanager
    def running(self) -> Iterator[GatewayProcess]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def govgate(env: Mapping[str, str], *args: str, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    """A ``govgate`` command against the run's database."""
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], cwd=ROOT,
                          env=_python_env(env), capture_output=True, text=True,
                          timeout=timeout)


def audit_records(db_url: str, request_id: str, within: float = 10.0) -> list[dict[str, Any]]:
    """The audit records of one request id (``extra`` parsed), waiting up to ``within``
    seconds for the first: in journal mode (docs/audit-journal.md) the gateway's indexer
    loads them into the tables within its interval."""
    from audit.tables import records
    from gateway.storage import create_engine

    engine = create_engine(db_url)
    deadline = time.monotonic() + within
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(sa.select(records)
                                    .where(records.c.request_id == request_id)
                                    .order_by(records.c.id)).mappings().all()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        engine.dispose()
    return [{**row, "extra": json.loads(row["extra"] or "{}")} for row in rows]
