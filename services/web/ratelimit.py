"""Per-client rate limiting of the review page: a token bucket for each client.

A person reviewing cases makes a request every few seconds; a script stuck in a loop, or one
scraping the queue, makes hundreds. Each client may send a burst of requests at once
(`CLINRLHF_REVIEW_RATE_BURST`, default 60) and then `CLINRLHF_REVIEW_RATE_PER_SECOND` (default 2)
on average; past that it gets 429 with Retry-After, as an OperationOutcome (see
`services.web.auth.rate_limited`, which also says who counts as one client).

The service keeps the buckets in the database (`SharedRateLimiter`, over
`clinrlhf.store.rate_limit.DatabaseRateLimiter`), so every worker of `clinrlhf serve --workers N`
and every replica on the same database spends from one bucket per client. `RateLimiter` keeps
buckets in the process: the fallback while the database is out, and a limiter for tests.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from clinrlhf.store.outage import outage_of
from clinrlhf.store.rate_limit import DatabaseRateLimiter

log = logging.getLogger("services.web.ratelimit")


class ReviewLimiter(Protocol):
    """What the `rate_limited` dependency needs: counts `client`'s request, on the event loop."""

    async def check(self, client: str) -> float:
        """0 if `client` may go ahead now (and counts the request); else the seconds until it may."""
        ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client, in this process. Not thread-safe: call it from the event loop
    only (as the `rate_limited` dependency, an `async def`, does).

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
        if not per_second > 0 or burst < 1:
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

    async def check(self, client: str) -> float:
        return self.wait(client)  # no I/O: stays on the event loop


class SharedRateLimiter:
    """The service's limiter: buckets in the database, shared by every worker and replica.

    Each check is one short transaction, run in the thread pool so that the event loop never waits
    on the database. While the database is out (`clinrlhf.store.outage`: down, locked past its busy
    timeout, or full), requests are counted in this process's own buckets instead. Rate limiting
    fails open to the per-process limit, never to no limit and never to an error: it guards against
    runaway clients, not for the data, so it must not turn requests into 503s by itself. A page
    that needs the database still answers 503 with Retry-After on its own (`services.errors`),
    and one that does not (the login form) goes on working. Any other database error is a bug and
    propagates (a 500)."""

    def __init__(self, store: DatabaseRateLimiter, fallback: RateLimiter | None = None) -> None:
        self.store = store
        self.fallback = fallback or RateLimiter(store.per_second, store.burst)
        self._degraded = False  # read and written on the event loop only

    async def check(self, client: str) -> float:
        try:
            wait = await run_in_threadpool(self.store.wait, client)
        except SQLAlchemyError as err:
            outage = outage_of(err)
            if outage is None:
                raise
            if not self._degraded:  # once per outage, not once per request
                self._degraded = True
                log.warning(
                    "database %s (%s): review page rate limits counted per process until it is back",
                    outage.value,
                    type(getattr(err, "orig", None) or err).__name__,
                )
            return self.fallback.wait(client)
        if self._degraded:
            self._degraded = False
            log.warning("database back: review page rate limits shared again")
        return wait
