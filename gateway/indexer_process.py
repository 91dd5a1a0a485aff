"""The audit journal's indexer in a process of its own (``audit_indexer = "process"``).

In a thread (the default) the indexer shares the server's GIL: SQLite lets the GIL go
around each row it inserts, and every hand-back to the event loop is a switch between
threads; measured over the wire that costs a proxied request about 30 µs of the
server's CPU for 14 µs of loading (docs/BENCHMARKS.md). Here the rounds run in a child
(``python -m gateway.indexer_process``), with the same :class:`audit.indexer.Indexer`,
and the server only tells it, once per round, how far its writer has fsynced.

The parent speaks to the child over its stdin/stdout, one JSON line each way: first
the database URL and the journal's folder (on stdin, so no password shows in ``ps``),
then per round ``{"own": [chain, segment, durable bytes], "paced": bool}``, answered by
``{"loaded": n, "checkpoint": seq}`` or ``{"error": "..."}``. A child that dies is
started again for the next round; loads are idempotent (``Indexer.load``), so a round
cut by a crash is simply done again. The child ends when its stdin closes: when its
parent ends it, or however the parent ends (``kill -9`` too: the kernel closes the
parent's end of the pipe). Not PR_SET_PDEATHSIG: that follows the thread that started
the child, and the rounds' thread ends before the last round.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from audit.indexer import Indexer, Own, Rounds
from audit.journal import Journal
from gateway.storage import create_engine

log = logging.getLogger("govgate.audit.indexer")


class IndexerProcess(Rounds):
    """The parent's side: :meth:`run_once`, :meth:`start` and :meth:`stop` as
    :class:`audit.indexer.Indexer` has them, the rounds done by the child."""

    def __init__(self, url: str, folder: Path, *, own: Own, interval: float = 0.5,
                 on_checkpoint: Callable[[int], None] | None = None) -> None:
        self.url = url
        self.folder = folder
        self.own = own
        self.interval = interval
        self.on_checkpoint = on_checkpoint
        self._child: subprocess.Popen[bytes] | None = None
        self._round = threading.Lock()  # one round at a time over the pipe
        super().__init__()
        # stopped: a round asked afterwards (the writer's last, after its checkpoint)
        # ends the child when done, so none is left behind
        self._stopped = False

    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first round)."""
        return self._child.pid if self._child is not None else None

    def start(self) -> None:
        self._stopped = False
        super().start()

    def stop(self) -> None:
        """Stop the rounds after a last one (what is durable now gets loaded), and the
        child."""
        self._stopped = True
        super().stop()

    def run_once(self, *, paced: bool = False) -> int:
        """One round in the child; the number of records it loaded. A child found dead
        is started again and the round asked once more."""
        with self._round:
            position = self.own()
            ask = {"own": None if position is None else
                   [position[0], None if position[1] is None else str(position[1]),
                    position[2]], "paced": paced}
            try:
                try:
                    answer = self._ask(ask)
                except (OSError, EOFError, ValueError) as exc:
                    log.warning("audit indexer process lost (%s): starting it again", exc)
                    self._end_child()
                    answer = self._ask(ask)
            finally:
                if self._stopped:
                    self._end_child()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        if answer.get("checkpoint") is not None and self.on_checkpoint is not None:
            self.on_checkpoint(int(answer["checkpoint"]))
        return int(answer["loaded"])

    def _ask(self, ask: dict[str, Any]) -> dict[str, Any]:
        child = self._child
        if child is None or child.poll() is not None:
            self._end_child()  # a dead one's pipes
            child = self._child = self._spawn()
        assert child.stdin is not None and child.stdout is not None
        _send(child.stdin, ask)
        line = child.stdout.readline()
        if not line:
            raise EOFError("the indexer process ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _spawn(self) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(
            [sys.executable, "-m", "gateway.indexer_process"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        assert child.stdin is not None
        _send(child.stdin, {"url": self.url, "folder": str(self.folder)})
        return child

    def _end_child(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            with contextlib.suppress(OSError):  # a dead child's pipe: closed all the same
                child.stdin.close()  # the child's loop ends at the end of its input
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _send(stream: IO[bytes], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def serve_rounds(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's side: the rounds its parent asks for, until its input ends."""
    first = stdin.readline()
    if not first:
        return
    opening = json.loads(first)
    engine = create_engine(opening["url"])
    position: list[tuple[str, Path | None, int] | None] = [None]
    newest: list[int | None] = [None]

    def noted(seq: int) -> None:
        newest[0] = seq
    indexer = Indexer(engine, Journal(opening["folder"]), own=lambda: position[0],
                      on_checkpoint=noted)
    try:
        for line in iter(stdin.readline, b""):
            ask = json.loads(line)
            own = ask.get("own")
            position[0] = None if own is None else (
                own[0], None if own[1] is None else Path(own[1]), int(own[2]))
            newest[0] = None
            try:
                loaded = indexer.run_once(paced=bool(ask.get("paced")))
                answer: dict[str, Any] = {"loaded": loaded, "checkpoint": newest[0]}
            except Exception as exc:  # told to the parent, which logs it
                answer = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            _send(stdout, answer)
    finally:
        engine.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    serve_rounds(sys.stdin.buffer, sys.stdout.buffer)
