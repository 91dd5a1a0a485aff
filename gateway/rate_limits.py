"""Per-client rate limit: a token bucket per client key (client id, else subject).

Each bucket holds at most ``burst`` tokens and refills at ``rate`` per second; a
request takes one token or is refused with the seconds until one is available
(for ``Retry-After``, RFC 9110 section 10.2.3). Buckets unused for a minute are
dropped so the table stays small.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class TokenBucketLimiter:
    def __init__(self, rate: float, burst: float, *,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last]

    def take(self, key: str) -> float:
        """0.0 when allowed; otherwise the seconds to wait (> 0)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        return str(max(1, math.ceil(wait)))

    def _sweep(self, now: float) -> None:
        idle = [k for k, (_t, last) in self._buckets.items() if now - last > 60]
        for k in idle:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
