"""The review page's token buckets in the database: one budget per client, whichever worker or
replica counts the request (on SQLite, and on PostgreSQL where CLINRLHF_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import make_session_factory
from clinrlhf.store.models import RateBucket
from clinrlhf.store.rate_limit import DatabaseRateLimiter

KEY = b"k" * 32


class Clock:
    """Wall-clock seconds the test sets (the limiter reads time.time in production)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(sessions: sessionmaker[Session], clock: Clock, **kwargs: object) -> DatabaseRateLimiter:
    options: dict = {"per_second": 2.0, "burst": 3, "key": KEY, "clock": clock} | kwargs
    return DatabaseRateLimiter(sessions, **options)


def stored_keys(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(RateBucket.client_key)))


def test_a_burst_then_refusal_with_the_time_to_wait(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    buckets = limiter(sessions, clock)
    assert [buckets.wait("address:10.0.0.7") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.wait("address:10.0.0.7") == pytest.approx(0.5)  # one token back in half a second
    assert buckets.wait("address:10.0.0.7") == pytest.approx(0.5)  # a refusal spends nothing
    assert buckets.wait("address:10.0.0.8") == 0.0  # another client has its own bucket


def test_the_bucket_refills_with_time_but_never_beyond_the_burst(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    buckets = limiter(sessions, clock)
    for _ in range(3):
        buckets.wait("c")
    assert buckets.wait("c") > 0
    clock.now += 0.5
    assert buckets.wait("c") == 0.0  # one token back
    assert buckets.wait("c") == pytest.approx(0.5)
    clock.now += 1000  # a long pause fills the bucket, to the burst only
    assert [buckets.wait("c") for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(0.5)]


def test_a_clock_that_steps_back_refills_nothing(sessions: sessionmaker[Session]) -> None:
    """Replicas' clocks differ a little: a worker whose clock is behind must not drain the bucket."""
    clock = Clock()
    buckets = limiter(sessions, clock)
    for _ in range(3):
        buckets.wait("c")
    clock.now -= 5
    assert buckets.wait("c") == pytest.approx(0.5)


def test_two_workers_share_one_budget(engine: Engine) -> None:
    """Two limiters on separate session factories stand for two `serve --workers` processes (or two
    replicas): what one spent, the other cannot spend again."""
    clock = Clock()
    first = limiter(make_session_factory(engine), clock)
    second = limiter(make_session_factory(engine), clock)
    assert [first.wait("session:abc") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert second.wait("session:abc") == pytest.approx(0.5)
    clock.now += 0.5
    assert second.wait("session:abc") == 0.0
    assert first.wait("session:abc") > 0


def test_concurrent_requests_never_spend_more_than_the_burst(engine: Engine) -> None:
    """Workers racing on one client, its first request included (the row does not exist yet)."""
    clock = Clock()
    workers = [limiter(make_session_factory(engine), clock, burst=10) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda i: workers[i % 4].wait("token:race"), range(40)))
    assert sum(w == 0.0 for w in waits) == 10


def test_clients_are_stored_only_as_keyed_hashes(sessions: sessionmaker[Session]) -> None:
    buckets = limiter(sessions, Clock())
    clients = ["address:192.0.2.41", "session:s3cr3t-sid", "token:0123456789abcdef"]
    for client in clients:
        buckets.wait(client)
    keys = stored_keys(sessions)
    assert keys == sorted(buckets.client_key(c) for c in clients)
    for key in keys:
        assert len(key) == 64 and set(key) <= set("0123456789abcdef")
        assert not any(client.split(":", 1)[1] in key for client in clients)
    other = DatabaseRateLimiter(sessions, 2.0, 3, key=b"another key")
    assert other.client_key(clients[0]) != buckets.client_key(clients[0])  # keyed, not a bare digest


def test_buckets_full_again_are_purged(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    buckets = limiter(sessions, clock, purge_every=3)  # full again after burst / rate = 1.5 s idle
    buckets.wait("old")  # call 1
    clock.now += 1.0
    buckets.wait("recent")  # call 2
    clock.now += 1.0  # "old" idle 2 s: full again; "recent" idle 1 s: not yet
    buckets.wait("now")  # call 3 purges
    assert stored_keys(sessions) == sorted(buckets.client_key(c) for c in ("recent", "now"))
    # A purged bucket was full: the client starts again with its whole burst, as it would have.
    assert [buckets.wait("old") for _ in range(3)] == [0.0, 0.0, 0.0]


def test_invalid_limits_are_refused(sessions: sessionmaker[Session]) -> None:
    for per_second, burst in ((0.0, 3), (-1.0, 3), (float("nan"), 3), (2.0, 0)):
        with pytest.raises(ValueError, match="positive"):
            DatabaseRateLimiter(sessions, per_second, burst, key=KEY)
