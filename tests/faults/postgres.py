"""A throwaway PostgreSQL cluster of the test's own (initdb in a temporary directory,
a free port on 127.0.0.1), which a test may stop and start again: never the shared
server the rest of the suite uses. As root (CI), the server runs as ``postgres``."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.gateway_world import free_port

PG_BIN = Path(os.environ.get("GOVGATE_PG_BIN", "/usr/lib/postgresql/15/bin"))


def binaries_missing() -> str | None:
    """Why no cluster can be made here, or None."""
    for name in ("initdb", "pg_ctl"):
        if not (PG_BIN / name).exists():
            return f"PostgreSQL server binaries not found in {PG_BIN} (initdb, pg_ctl)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as postgres"
    return None


class Cluster:
    def __init__(self) -> None:
        # not under pytest's tmp_path: that is root's alone, and the server runs as
        # postgres (as .ci/run's cluster does)
        self.dir = Path(tempfile.mkdtemp(prefix="govgate-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {args[-1]}: {done.stdout[-500:]} {done.stderr[-500:]}")

    def create(self) -> Cluster:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        # fsync off: this cluster is thrown away; an immediate stop is still a crash
        # for the server (no checkpoint, WAL replayed at the next start)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self.start()
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=50", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
