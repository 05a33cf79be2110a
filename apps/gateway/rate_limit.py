"""Token buckets in the gateway's process: requests per key, and wrong-key requests per client address.

Each bucket holds up to `burst` tokens and gains `per_second` of them each second; a request takes one, and
when there is none the gateway answers 429 with Retry-After: the seconds until the next token. Buckets live in
one process: N gateways behind a balancer allow N times the rate (docs/security.md). The table is bounded:
past `max_buckets` the least recently used bucket is forgotten (a forgotten bucket is a full one).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._max = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def _bucket(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second)
            bucket.at = now
        return bucket

    def take(self, key: str) -> int:
        """Take a token: 0 when there was one, else the whole seconds to wait for the next (Retry-After)."""
        if not self.enabled:
            return 0
        bucket = self._bucket(key, self._clock())
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.per_second))

    def empty(self, key: str) -> int:
        """The wait a request from `key` would meet now, without taking a token (0: there is one)."""
        if not self.enabled:
            return 0
        bucket = self._bucket(key, self._clock())
        return 0 if bucket.tokens >= 1 else max(1, math.ceil((1 - bucket.tokens) / self.per_second))
