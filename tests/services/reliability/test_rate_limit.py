"""The review page limits each client's rate: a burst, then 429 with Retry-After (an
OperationOutcome) until its bucket refills, while other clients go on unhindered. The limits are
settings, and the buckets live in the database, so every worker and replica shares one budget per
client (the buckets themselves: tests/clinrlhf/store/test_rate_limit.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError

from clinrlhf.settings import Settings
from clinrlhf.store import deployment_store
from clinrlhf.store.models import RateBucket
from clinrlhf.store.rate_limit import DatabaseRateLimiter
from services.api.app import create_app
from services.web.ratelimit import RateLimiter, SharedRateLimiter


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


def test_the_limits_are_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.review_rate_per_second, defaults.review_rate_burst) == (2.0, 60)
    monkeypatch.setenv("CLINRLHF_REVIEW_RATE_PER_SECOND", "0.5")
    monkeypatch.setenv("CLINRLHF_REVIEW_RATE_BURST", "10")
    settings = Settings()
    assert (settings.review_rate_per_second, settings.review_rate_burst) == (0.5, 10)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CLINRLHF_REVIEW_RATE_PER_SECOND", "0"),
        ("CLINRLHF_REVIEW_RATE_PER_SECOND", "-2"),
        ("CLINRLHF_REVIEW_RATE_PER_SECOND", "nan"),
        ("CLINRLHF_REVIEW_RATE_PER_SECOND", "inf"),
        ("CLINRLHF_REVIEW_RATE_PER_SECOND", "fast"),
        ("CLINRLHF_REVIEW_RATE_BURST", "0"),
        ("CLINRLHF_REVIEW_RATE_BURST", "-1"),
        ("CLINRLHF_REVIEW_RATE_BURST", "2.5"),
    ],
)
def test_invalid_limits_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("CLINRLHF_").lower()):
        Settings()


def test_a_refusal_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="CLINRLHF_REVIEW_RATE_BURST must be at least 1"):
        Settings(review_rate_burst=0)
    with pytest.raises(ValidationError, match="CLINRLHF_REVIEW_RATE_PER_SECOND must be a positive"):
        Settings(review_rate_per_second=0)


def test_workers_of_one_service_share_each_clients_budget(tmp_path: Path, policy_dir: Path) -> None:
    """Two apps on one database stand for two workers of `clinrlhf serve --workers 2` (or two
    replicas): the burst spent through one is refused through the other."""
    settings = Settings(
        home=tmp_path / "home", policy=policy_dir, review_rate_per_second=0.01, review_rate_burst=3
    )
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        assert [one.get("/review/login").status_code for _ in range(2)] == [200, 200]
        assert two.get("/review/login").status_code == 200
        refused = two.get("/review/login")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert one.get("/review/login").status_code == 429
    with deployment_store(settings)() as session:
        keys = session.scalars(select(RateBucket.client_key)).all()
    assert len(keys) == 1 and "testclient" not in keys[0]  # the client, by keyed hash only


class DownDatabase(DatabaseRateLimiter):
    def __init__(self) -> None:
        super().__init__(None, 0.01, 2, key=b"k")  # type: ignore[arg-type]  # never reached

    def wait(self, client: str) -> float:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("the database is down"))


def test_without_the_database_each_process_counts_alone() -> None:
    """An outage neither lifts the limit nor turns requests into errors: the process's own buckets
    count until the database is back."""
    limiter = SharedRateLimiter(DownDatabase())

    async def checks() -> list[float]:
        return [await limiter.check("address:10.0.0.7") for _ in range(3)]

    waits = asyncio.run(checks())
    assert waits[:2] == [0.0, 0.0] and waits[2] > 0


def test_a_database_error_that_is_not_an_outage_is_not_hidden() -> None:
    class Broken(DownDatabase):
        def wait(self, client: str) -> float:  # a bad statement: a bug, which answers 500
            raise ProgrammingError("SELECT", {}, Exception("a bug"))

    with pytest.raises(ProgrammingError, match="a bug"):
        asyncio.run(SharedRateLimiter(Broken()).check("c"))


@pytest.fixture
def tight_limit(server) -> Iterator[None]:
    """The running server's limit made tight, still counted in its database (under a key of its own,
    so that the buckets of the normal limit, and the tests that use it, are untouched)."""
    state = server.server.config.app.state.clinrlhf
    normal = state.review_limiter
    state.review_limiter = SharedRateLimiter(
        DatabaseRateLimiter(state.sessions, per_second=0.01, burst=3, key=b"tight-limit test")
    )
    try:
        yield
    finally:
        state.review_limiter = normal


def test_the_review_page_answers_429_past_a_clients_burst(client: httpx.Client, auth, tight_limit) -> None:
    assert client.get("/cds-services", headers=auth("clinician")).status_code == 200  # token verified
    statuses = [client.get("/review/login").status_code for _ in range(3)]
    refused = client.get("/review/login")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    issue = refused.json()["issue"][0]
    assert (refused.json()["resourceType"], issue["code"]) == ("OperationOutcome", "throttled")
    # A clinician whose token the service has verified is another client than the address that
    # used up its burst (an unverified token is not: tests/services/test_review_rate_limit_keys.py).
    assert client.get("/review", headers=auth("clinician")).status_code == 200
    # The API beside the page is not limited by the page's buckets.
    assert client.get("/healthz").status_code == 200


def test_the_default_limit_lets_a_reviewer_work(client: httpx.Client, auth) -> None:
    """A reviewer's page loads stay far below the burst; the limit is for runaway scripts."""
    assert Settings().review_rate_burst >= 30
    assert all(client.get("/review", headers=auth("clinician")).status_code == 200 for _ in range(10))
