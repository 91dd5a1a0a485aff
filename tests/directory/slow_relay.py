"""A TCP relay in front of the real slapd that holds back each chunk (of at most
``chunk`` bytes) the directory sends by ``delay`` seconds: a directory that answers
every read within the timeout, slowly; with small chunks, byte by byte."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _pump(source: socket.socket, target: socket.socket, delay: float,
          size: int = 65536) -> None:
    try:
        while chunk := source.recv(size):
            time.sleep(delay)
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        target.close()


@contextmanager
def slow_relay(port: int, delay: float, chunk: int = 65536) -> Iterator[str]:
    """``ldap://127.0.0.1:<its port>``, relaying to 127.0.0.1:``port``."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopped = threading.Event()

    def accept() -> None:
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", port))
            threading.Thread(target=_pump, args=(client, server, 0.0), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client, delay, chunk),
                             daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"ldap://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stopped.set()
        listener.close()
