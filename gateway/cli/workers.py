"""``govgate serve --workers N``: uvicorn's supervisor, with the metrics directory the
workers share (prometheus-client's multiprocess mode, ``gateway.metrics``).

The directory is ``$PROMETHEUS_MULTIPROC_DIR`` when the operator set it, else
``<home>/run/metrics-<port>`` (one per listening port: two ``serve`` commands on one
home keep apart). It is emptied before the first worker starts, since values left by
an earlier run would be added to this one's; a worker that dies or is replaced is
marked dead (its gauges leave the scrape, its counters stay in the sums), and so is
every worker when the supervisor stops.
"""

from __future__ import annotations

import os
from pathlib import Path
from socket import socket

from prometheus_client.multiprocess import mark_process_dead
from uvicorn.config import Config
from uvicorn.supervisors import Multiprocess

from gateway.metrics import MULTIPROC_ENV


def metrics_directory(home: Path, port: int) -> Path:
    """Where the workers of the gateway on ``port`` share their metrics, created and
    emptied; also set in this process's environment, which the workers inherit."""
    chosen = os.environ.get(MULTIPROC_ENV)
    directory = Path(chosen) if chosen else home / "run" / f"metrics-{port}"
    directory.mkdir(parents=True, exist_ok=True)
    for left in directory.glob("*.db"):
        left.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


class Supervisor(Multiprocess):
    """uvicorn's ``Multiprocess``, marking each worker that is gone dead in the
    metrics directory."""

    def __init__(self, config: Config, sockets: list[socket], metrics: Path) -> None:
        super().__init__(config, sockets)
        self.metrics = metrics

    def _pids(self) -> set[int]:
        return {p.pid for p in self.processes if p.pid is not None}

    def _forget(self, before: set[int]) -> None:
        for pid in before - self._pids():
            mark_process_dead(pid, str(self.metrics))

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._forget(before)

    def handle_signals(self) -> None:
        before = self._pids()  # SIGHUP replaces every worker, SIGTTOU stops one
        super().handle_signals()
        self._forget(before)

    def run(self) -> None:
        try:
            super().run()
        finally:
            for pid in self._pids():
                mark_process_dead(pid, str(self.metrics))
