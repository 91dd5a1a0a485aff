"""gateway.request_id: the random parts come from the OS a batch at a time, and no two
ids are the same, whichever threads ask."""

from __future__ import annotations

import os
import threading

import pytest

from gateway import request_id
from gateway.request_id import new_request_id


def test_the_os_is_asked_once_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    real = os.urandom

    def urandom(n: int) -> bytes:
        asked.append(n)
        return real(n)

    monkeypatch.setattr(request_id.os, "urandom", urandom)
    request_id._random_parts.clear()
    ids = [new_request_id() for _ in range(2 * request_id.BATCH)]
    assert len(asked) == 2 and len(set(ids)) == len(ids)
    assert all(len(r) == 32 and set(r) <= set("0123456789abcdef") for r in ids)


def test_ids_made_in_several_threads_are_unique() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_request_id() for _ in range(3000))

    threads = [threading.Thread(target=make, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [r for out in made for r in out]
    assert len(set(every)) == len(every) == 12000


def test_a_forked_worker_does_not_reuse_its_parents_random_parts() -> None:
    new_request_id()  # the parent holds a batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first id, then out at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child[12:] != new_request_id()[12:]
