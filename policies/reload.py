"""Hot reload: every process sees a committed policy change within one second.

A daemon thread polls the one-row version counter (``policy_version``) every
``interval`` seconds (default 0.25 s) and, when it moved, loads the lines and
swaps in a new index. Polling works the same on SQLite and PostgreSQL, needs
no LISTEN/NOTIFY and no shared memory, and costs one indexed primary-key read.
The thread holds only a weak reference to what it refreshes, so it ends when
that is garbage collected or closed.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Protocol

log = logging.getLogger("govgate.policies")

DEFAULT_INTERVAL = 0.25


class Refreshable(Protocol):
    def refresh(self) -> bool: ...


class PolicyWatcher:
    """Calls ``target.refresh()`` every ``interval`` seconds on a daemon thread."""

    def __init__(self, target: Refreshable, interval: float = DEFAULT_INTERVAL) -> None:
        if not 0 < interval <= 0.5:
            raise ValueError("interval must be in (0, 0.5] seconds")
        self._target = weakref.ref(target)
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="govgate-policy-watch",
                                        daemon=True)
        self.errors = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            target = self._target()
            if target is None:
                return
            try:
                target.refresh()
            except Exception as exc:  # keep serving the last good index
                self.errors += 1
                if self.errors == 1 or self.errors % 100 == 0:
                    log.warning("policy reload failed (%d times): %s", self.errors, exc)
            del target
