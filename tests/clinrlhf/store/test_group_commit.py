"""Group commit: concurrent jobs share transactions, each job is answered only after its transaction
commits, and a failure in a batch neither loses nor wrongly acknowledges anyone else's job."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, event, func, select
from sqlalchemy.exc import OperationalError

from clinrlhf.store import FeedbackEntry, consistent_read, verify_audit
from clinrlhf.store.feedback import FeedbackCounts, FeedbackJob, feedback_writer
from clinrlhf.store.group_commit import GroupCommit
from clinrlhf.store.models import Feedback

J, R = TypeVar("J"), TypeVar("R")
POISON = -1  # a job whose write makes the database refuse the whole transaction


@pytest.fixture
def jobs_table(engine: Engine) -> Table:
    table = Table(
        "group_commit_jobs", MetaData(), Column("job", Integer, primary_key=True), Column("note", String)
    )
    table.create(engine)
    return table


class Recorder:
    """A `write` that inserts one row per job and returns the job doubled; it remembers its batches."""

    def __init__(self, table: Table, transient_failures: int = 0) -> None:
        self.table, self.batches, self.transient_failures = table, [], transient_failures

    def __call__(self, connection: Connection, jobs: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(jobs))
        rows = [{"job": j, "note": "x"} for j in jobs if j != POISON]
        if rows:
            connection.execute(self.table.insert(), rows)
        if POISON in jobs:
            raise OperationalError("INSERT", {}, Exception("the database refused the batch"))
        if self.transient_failures and len(jobs) > 1:
            self.transient_failures -= 1
            raise OperationalError("COMMIT", {}, Exception("the batch failed as a whole"))
        return [ValueError(f"job {j} is odd") if j % 2 else j * 2 for j in jobs]


def committed(engine: Engine, table: Table) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(table.c.job)))


async def submit_all(writer: GroupCommit[J, R], jobs: Sequence[J]) -> list[R | BaseException]:
    return await asyncio.gather(*(writer.submit(j) for j in jobs), return_exceptions=True)


def test_concurrent_jobs_share_a_transaction_and_each_gets_its_own_result(engine: Engine, jobs_table) -> None:
    commits = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    write = Recorder(jobs_table)
    results = asyncio.run(submit_all(GroupCommit(engine, write), range(64)))
    assert [r if isinstance(r, int) else "odd" for r in results] == [
        j * 2 if j % 2 == 0 else "odd" for j in range(64)
    ]
    assert all(isinstance(r, ValueError) for r in results[1::2])  # a job's own error goes to it alone
    assert len(write.batches) < 64 and len(commits) == len(write.batches)
    assert committed(engine, jobs_table) == list(range(64))  # the failed jobs' writes are `write`'s to undo


def test_a_batch_the_database_refuses_is_retried_job_by_job(engine: Engine, jobs_table) -> None:
    write = Recorder(jobs_table)
    results = asyncio.run(submit_all(GroupCommit(engine, write), [0, 2, POISON, 4]))
    assert results[:2] == [0, 4] and results[3] == 8
    assert isinstance(results[2], OperationalError)
    assert write.batches[0] == [0, 2, POISON, 4] and write.batches[1:] == [[0], [2], [POISON], [4]]
    assert committed(engine, jobs_table) == [0, 2, 4]  # the batch's own inserts were rolled back


def test_a_transient_failure_of_a_batch_loses_nothing(engine: Engine, jobs_table) -> None:
    write = Recorder(jobs_table, transient_failures=1)
    assert asyncio.run(submit_all(GroupCommit(engine, write), [0, 2, 4])) == [0, 4, 8]
    assert committed(engine, jobs_table) == [0, 2, 4]


def test_when_nothing_commits_nothing_is_acknowledged(engine: Engine, jobs_table) -> None:
    def refuse(connection: Connection, jobs: Sequence[int]) -> list[int | Exception]:
        Recorder(jobs_table)(connection, jobs)
        raise OperationalError("COMMIT", {}, Exception("disk full"))

    results = asyncio.run(submit_all(GroupCommit(engine, refuse), [0, 2, 4]))
    assert all(isinstance(r, OperationalError) for r in results), results
    assert committed(engine, jobs_table) == []


class Unreachable:
    """An engine whose transactions cannot begin (the server is down, the writer queue timed out)."""

    def __init__(self) -> None:
        self.attempts = 0

    def begin(self) -> Any:
        self.attempts += 1
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("timed out waiting for the writer queue"))


def test_a_transaction_that_cannot_begin_fails_the_batch_without_retries(jobs_table) -> None:
    engine, write = Unreachable(), Recorder(jobs_table)
    results = asyncio.run(submit_all(GroupCommit(engine, write), [0, 2, 4]))  # type: ignore[arg-type]
    assert all(isinstance(r, OperationalError) for r in results)
    assert engine.attempts == 1 and write.batches == []


def test_a_commit_that_fails_or_seems_to_stores_feedback_once(engine, sessions, cards) -> None:
    card, _ = cards()
    failures = [OperationalError("COMMIT", {}, Exception("connection lost during COMMIT"))]

    # On SQLite this runs after our COMMIT (the reply was lost); on PostgreSQL, before it (it failed).
    def lose_the_reply(_connection: Any) -> None:
        if failures:
            raise failures.pop()

    event.listen(engine, "commit", lose_the_reply)
    entries = [
        FeedbackEntry(card=card, outcome="overridden", outcome_timestamp=datetime(2026, 1, 1, 0, m))
        for m in range(3)
    ]
    writer = feedback_writer(engine)
    jobs = [FeedbackJob((e,), actor="cds-client:x", clinician="c" * 64) for e in entries]
    results = asyncio.run(submit_all(writer, jobs))
    event.remove(engine, "commit", lose_the_reply)
    # Retried alone, each entry is stored now or found stored already; either way, once.
    assert all(isinstance(r, FeedbackCounts) and r.stored + r.duplicates == 1 for r in results), results
    with consistent_read(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Feedback)) == 3
        assert verify_audit(session).ok


def test_a_batch_is_capped_by_the_weight_of_its_jobs(engine: Engine, jobs_table) -> None:
    write = Recorder(jobs_table)
    writer = GroupCommit(engine, write, size=lambda job: 400, max_size=1000)
    asyncio.run(submit_all(writer, [0, 2, 4, 6, 8]))
    assert [len(b) for b in write.batches] == [2, 2, 1]


def test_a_caller_that_goes_away_does_not_disturb_the_others(engine: Engine, jobs_table) -> None:
    writer = GroupCommit(engine, Recorder(jobs_table))

    async def scenario() -> list[int | BaseException]:
        tasks = [asyncio.ensure_future(writer.submit(j)) for j in (0, 2, 4)]
        await asyncio.sleep(0)
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())
    assert results[0] == 0 and results[2] == 8 and isinstance(results[1], asyncio.CancelledError)
    assert committed(engine, jobs_table) == [0, 2, 4]  # its write stands; retried, it is a duplicate


def test_feedback_is_acknowledged_only_once_another_connection_can_read_it(engine, sessions, cards) -> None:
    card, _ = cards()
    writer = feedback_writer(engine)

    async def post(minute: int) -> tuple[FeedbackCounts, int]:
        entry = FeedbackEntry(
            card=card, outcome="overridden", outcome_timestamp=datetime(2026, 1, 1, 0, minute)
        )
        counts = await writer.submit(FeedbackJob((entry,), actor="cds-client:x", clinician="c" * 64))
        with consistent_read(sessions) as session:  # a separate connection: sees only what was committed
            key = entry.idempotency_key("c" * 64)
            seen = session.scalar(select(func.count()).where(Feedback.idempotency_key == key))
        return counts, seen or 0

    async def scenario() -> list[tuple[FeedbackCounts, int]]:
        return await asyncio.gather(*(post(m % 30) for m in range(60)))

    results = asyncio.run(scenario())
    assert all(seen == 1 for _, seen in results)
    assert sum(c.stored for c, _ in results) == 30 and sum(c.duplicates for c, _ in results) == 30
