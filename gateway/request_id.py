"""Request ids: the correlation id an answer carries (``X-Request-ID``), its audit
record holds and an error page shows."""

from __future__ import annotations

import secrets
import time


def new_request_id() -> str:
    """32 hex digits: UTC milliseconds (12), then 80 random bits (20).

    Time-ordered like a UUIDv7, so each audit record's request id lands at the
    right edge of the request_id index instead of a random page of it (random
    keys cost the writer more as the table grows); still unique and unguessable
    enough for a correlation id, which is not a secret."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"
