"""Per-client rate limiting of the review page: a token bucket for each client.

A person reviewing cases makes a request every few seconds; a script stuck in a loop, or one
scraping the queue, makes hundreds. Each client may send `burst` requests at once and then
`per_second` on average; past that it gets 429 with Retry-After, as an OperationOutcome (see
`services.web.auth.rate_limited`, which also says who counts as one client).

Buckets live in the process: with `clinrlhf serve --workers N` a client may get up to N times the
rate, as each worker counts alone.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# A reviewer makes a request every few seconds; a page load is two (the page, then its submit).
REVIEW_PER_SECOND = 2.0
REVIEW_BURST = 60


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client. Not thread-safe: call it from the event loop only (as the
    `rate_limited` dependency, an `async def`, does).

    At most `max_clients` buckets are kept; past that the least recently seen is dropped, which
    only forgives that client its debt (a new bucket starts full)."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self.per_second, self.burst, self.max_clients, self._clock = per_second, burst, max_clients, clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait(self, client: str) -> float:
        """0 if `client` may go ahead now (and counts the request); else the seconds until it may."""
        now = self._clock()
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        self._buckets[client] = bucket  # most recently seen last
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.per_second
