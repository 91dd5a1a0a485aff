"""Request ids: the correlation id an answer carries (``X-Request-ID``), its audit
record holds and an error page shows."""

from __future__ import annotations

import collections
import os
import time

BATCH = 256  # random parts read from the OS at once
_random_parts: collections.deque[str] = collections.deque()
# a forked worker (serve --workers) must not hand out its parent's parts again
os.register_at_fork(after_in_child=_random_parts.clear)


def new_request_id() -> str:
    """32 hex digits: UTC milliseconds (12), then 80 random bits (20).

    Time-ordered like a UUIDv7, so each audit record's request id lands at the
    right edge of the request_id index instead of a random page of it (random
    keys cost the writer more as the table grows); still unique and unguessable
    enough for a correlation id, which is not a secret. The random part is the OS's
    random bytes (what ``secrets.token_hex(10)`` returns), read 256 ids' worth at a
    time: one system call instead of one per request. ``deque.popleft`` is atomic,
    so no two requests, in any thread, get the same part."""
    try:
        part = _random_parts.popleft()
    except IndexError:
        block = os.urandom(10 * BATCH).hex()
        _random_parts.extend(block[i:i + 20] for i in range(20, 20 * BATCH, 20))
        part = block[:20]
    return f"{time.time_ns() // 1_000_000:012x}{part}"
