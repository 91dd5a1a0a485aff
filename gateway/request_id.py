"""Request ids: the correlation id an answer carries (``X-Request-ID``), its audit
record holds and an error page shows."""

from __future__ import annotations

import os
import time


def new_request_id() -> str:
    """32 hex digits: UTC milliseconds (12), then 80 random bits (20).

    Time-ordered like a UUIDv7, so each audit record's request id lands at the
    right edge of the request_id index instead of a random page of it (random
    keys cost the writer more as the table grows); still unique and unguessable
    enough for a correlation id, which is not a secret. The random part is what
    ``secrets.token_hex(10)`` returns (the OS's random bytes), without its two calls."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
