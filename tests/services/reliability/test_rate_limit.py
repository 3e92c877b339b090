"""The review page limits each client's rate: a burst, then 429 with Retry-After (an
OperationOutcome) until its bucket refills, while other clients go on unhindered."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.web.ratelimit import REVIEW_BURST, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=2.0, burst=3, clock=clock)
    assert [limiter.wait("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.wait("a") == pytest.approx(0.5)  # one token back in half a second
    assert limiter.wait("b") == 0.0  # another client has its own bucket
    clock.now = 0.5
    assert limiter.wait("a") == 0.0
    clock.now = 100.0  # a long pause refills the bucket, but never beyond the burst
    assert [limiter.wait("a") for _ in range(4)][-1] > 0


def test_buckets_are_bounded_and_the_oldest_is_forgotten() -> None:
    limiter = RateLimiter(per_second=1.0, burst=1, max_clients=2, clock=Clock())
    for client in ("a", "b", "c"):
        assert limiter.wait(client) == 0.0
    assert limiter.wait("c") > 0  # remembered: over its rate
    assert limiter.wait("a") == 0.0  # forgotten when c came: a fresh bucket


@pytest.fixture
def tight_limit(server) -> Iterator[None]:
    state = server.server.config.app.state.clinrlhf
    normal = state.review_limiter
    state.review_limiter = RateLimiter(per_second=0.01, burst=3)
    try:
        yield
    finally:
        state.review_limiter = normal


def test_the_review_page_answers_429_past_a_clients_burst(client: httpx.Client, auth, tight_limit) -> None:
    statuses = [client.get("/review/login").status_code for _ in range(3)]
    refused = client.get("/review/login")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    issue = refused.json()["issue"][0]
    assert (refused.json()["resourceType"], issue["code"]) == ("OperationOutcome", "throttled")
    # A clinician with a token is another client than the address that used up its burst.
    assert client.get("/review", headers=auth("clinician")).status_code == 200
    # The API beside the page is not limited by the page's buckets.
    assert client.get("/healthz").status_code == 200


def test_the_default_limit_lets_a_reviewer_work(client: httpx.Client, auth) -> None:
    """A reviewer's page loads stay far below the burst; the limit is for runaway scripts."""
    assert REVIEW_BURST >= 30
    assert all(client.get("/review", headers=auth("clinician")).status_code == 200 for _ in range(10))
