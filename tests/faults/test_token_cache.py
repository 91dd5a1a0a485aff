"""The proxy's cache of verified tokens stays as small as the tokens in use.

Under the load run (bench/bench_load.py) a server's memory climbed about 3 KiB with
every token it had ever verified: each refresh and client-credentials token added
an entry that nothing removed until 50,000 had piled up. Expired entries are now
swept as the cache grows.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from gateway.proxy.credentials import SWEEP_FROM, CachingAuthenticator


@dataclass
class _Principal:
    via: str = "bearer"
    token_id: str = "jti"
    session_id: str | None = None


class _Inner:
    class deny:  # the attribute the cache looks for
        @staticmethod
        def denied(kind: str, value: str | None) -> bool:
            return False

    async def authenticate(self, request: Any, *, audience: str | None = None) -> Any:
        return _Principal()


@dataclass
class _Request:
    headers: dict[str, str]


def _token(n: int, exp: float) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"iat": 0, "exp": exp, "n": n}).encode())
    return f"e30.{claims.decode().rstrip('=')}.sig"


async def test_expired_entries_do_not_pile_up() -> None:
    now = [1000.0]
    cache = CachingAuthenticator(_Inner(), clock=lambda: now[0], ttl=60.0)
    cache.monotonic = lambda: now[0]
    for n in range(20 * SWEEP_FROM):  # a token a second, each used once
        now[0] += 1
        await cache.authenticate(_Request({"authorization": f"Bearer {_token(n, now[0] + 600)}"}))
        assert len(cache._cache) <= 2 * SWEEP_FROM
    # the last minute's tokens are still answered from the cache
    latest = f"Bearer {_token(20 * SWEEP_FROM - 1, now[0] + 600)}"
    assert cache.cached(latest) is not None
