"""Feedback under concurrent load, as the ingestion benchmark sends it: requests share transactions
(group commit), yet each entry is stored once, each stored entry has its audit event, and a database
failure is an OperationOutcome that acknowledges nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store, verify_audit
from clinrlhf.store.feedback import FeedbackJob
from clinrlhf.store.group_commit import GroupCommit
from clinrlhf.store.models import AuditEvent, Feedback
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
START = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.fixture
def card(client: httpx.Client, auth, patient_view, world: World) -> str:
    for patient in generate_patients(world, 20, seed=91):
        response = client.post(SERVICE, json=patient_view(patient.bundle), headers=auth("cds-client"))
        if cards := response.json()["cards"]:
            return str(cards[0]["uuid"])
    raise AssertionError("no card in 20 patients")


def post_all(url: str, headers: dict[str, str], bodies: Sequence[dict]) -> list[httpx.Response]:
    def post(body: dict) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=60) as c:
            return c.post(f"{SERVICE}/feedback", json=body, headers=headers)

    with ThreadPoolExecutor(12) as pool:
        return list(pool.map(post, bodies))


def overridden(card: str, i: int) -> dict:
    when = (START + timedelta(seconds=i)).isoformat()
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": when}]}


def stored(settings: Settings) -> tuple[int, int]:
    """(feedback rows, Feedback create events)."""
    with consistent_read(deployment_store(settings)) as session:
        rows = session.scalar(select(func.count()).select_from(Feedback)) or 0
        events = select(func.count()).where(AuditEvent.entity_type == "Feedback", AuditEvent.action == "C")
        return rows, session.scalar(events) or 0


def test_the_same_entry_posted_at_once_by_many_is_stored_once(server, auth, card, api_settings) -> None:
    before = stored(api_settings)
    replies = post_all(server.url, auth("cds-client"), [overridden(card, 0)] * 24)
    assert {r.status_code for r in replies} == {200}
    assert sorted(r.json()["stored"] for r in replies) == [0] * 23 + [1]
    assert sum(r.json()["duplicates"] for r in replies) == 23
    assert stored(api_settings) == (before[0] + 1, before[1] + 1)


def test_a_burst_of_feedback_is_all_stored_and_the_trail_verifies(server, auth, card, api_settings) -> None:
    before = stored(api_settings)
    replies = post_all(server.url, auth("cds-client"), [overridden(card, i) for i in range(1, 121)])
    assert [r.json() for r in replies] == [{"stored": 1, "duplicates": 0}] * 120
    assert stored(api_settings) == (before[0] + 120, before[1] + 120)
    with consistent_read(deployment_store(api_settings)) as session:
        report = verify_audit(session)
    assert report.ok, report.problem


# A database error that is an outage (the store is down, locked or full) is the service's trouble and
# passes: 503 with Retry-After. Any other (a constraint, a bad statement) is a bug: 500.
FAILURES = {
    "outage": (OperationalError("INSERT", {}, Exception("disk I/O error")), 503),
    "bug": (IntegrityError("INSERT", {}, Exception("disk constraint failed")), 500),
}


@pytest.fixture(params=list(FAILURES))
def failing_database(server, request: pytest.FixtureRequest) -> Iterator[int]:
    """The service's feedback writer failing with one of FAILURES; yields the status expected."""
    state = server.server.config.app.state.clinrlhf
    working = state.feedback_writer
    error, status = FAILURES[request.param]

    def refuse(_connection: Connection, _jobs: Sequence[FeedbackJob]) -> list:
        raise error

    state.feedback_writer = GroupCommit(working.engine, refuse)
    yield status
    state.feedback_writer = working


def test_a_database_failure_is_an_operation_outcome_and_stores_nothing(
    server, auth, card, api_settings, failing_database: int
) -> None:
    before = stored(api_settings)
    replies = post_all(server.url, auth("cds-client"), [overridden(card, i) for i in range(200, 206)])
    for reply in replies:
        assert reply.status_code == failing_database and reply.json()["resourceType"] == "OperationOutcome"
        assert ("retry-after" in reply.headers) == (failing_database == 503)
        assert "disk" not in reply.text
    assert stored(api_settings) == before
