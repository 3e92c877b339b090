"""The store itself keeps the review rules, whichever path a review arrives by (the review page or
FHIR): one review per clinician per case, and at most k clinicians per case. Both hold under
concurrent writers because constraints keep them, not a check before the insert (issue 20,
finding 2). Runs on SQLite, and on PostgreSQL where CLINRLHF_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import ReviewEntry, record_review, transaction
from clinrlhf.store.errors import AlreadyReviewedError, ReviewsFullError
from clinrlhf.store.models import Review

OVERLAP = 3


def entry(card: str, suggestions: list[str], rating: int = 4) -> ReviewEntry:
    return ReviewEntry(card=card, suggestion_a=suggestions[0], suggestion_b=suggestions[1], rating_a=rating)


def reviews_of(sessions: sessionmaker[Session], card: str) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Review.clinician).where(Review.card_id == card)))


def race(writers: list[Callable[[], object]]) -> list[object]:
    """Run every writer at once (a barrier releases them together); each result or exception, in order."""
    results: list[object] = [None] * len(writers)
    barrier = threading.Barrier(len(writers))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = writers[i]()
        except Exception as err:  # noqa: BLE001 -- the test inspects what each writer raised
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def write(sessions: sessionmaker[Session], review: ReviewEntry, clinician: str) -> Callable[[], object]:
    def go() -> object:
        with transaction(sessions) as session:
            return record_review(session, review, clinician=clinician, overlap=OVERLAP)[1]

    return go


def test_a_clinician_reviews_a_case_once_however_many_different_reviews_they_send(sessions, cards) -> None:
    card, suggestions = cards()
    assert write(sessions, entry(card, suggestions, 1), "c1")() is True
    for rating in (2, 3, 4, 5):
        with pytest.raises(AlreadyReviewedError):
            write(sessions, entry(card, suggestions, rating), "c1")()
    assert write(sessions, entry(card, suggestions, 1), "c1")() is False  # the same review again: stored once
    assert reviews_of(sessions, card) == ["c1"]


def test_a_case_takes_at_most_k_clinicians(sessions, cards) -> None:
    card, suggestions = cards()
    for i in range(OVERLAP):
        assert write(sessions, entry(card, suggestions), f"c{i}")() is True
    with pytest.raises(ReviewsFullError):
        write(sessions, entry(card, suggestions), "late")()
    assert len(reviews_of(sessions, card)) == OVERLAP


def test_six_clinicians_racing_for_three_places_leave_three_reviews(sessions, cards) -> None:
    card, suggestions = cards()
    results = race([write(sessions, entry(card, suggestions), f"dr-{i}") for i in range(6)])
    assert results.count(True) == OVERLAP, results
    assert all(isinstance(r, ReviewsFullError) for r in results if r is not True), results
    assert len(set(reviews_of(sessions, card))) == OVERLAP == len(reviews_of(sessions, card))


def test_one_clinician_racing_different_reviews_of_one_case_leaves_one(sessions, cards) -> None:
    card, suggestions = cards()
    results = race([write(sessions, entry(card, suggestions, r), "dr-x") for r in (1, 2, 3, 4, 5)])
    assert results.count(True) == 1, results
    assert all(isinstance(r, AlreadyReviewedError) for r in results if r is not True), results
    assert reviews_of(sessions, card) == ["dr-x"]


def test_the_constraints_hold_against_a_writer_that_skips_record_review(
    engine: Engine, sessions, cards
) -> None:
    """A raw insert of a second review by the same clinician, or into a taken seat, is refused by the
    database: the rules do not depend on every writer calling record_review."""
    card, suggestions = cards()
    write(sessions, entry(card, suggestions), "c1")()
    columns = "id, card_id, clinician, suggestion_a_id, suggestion_b_id, has_comment, idempotency_key, created_at, seat"
    insert = text(
        f"INSERT INTO reviews ({columns}) VALUES (:id, :card, :who, :a, :b, false, :key, :at, :seat)"
    )
    with sessions() as session:
        seat = session.scalar(select(Review.seat).where(Review.card_id == card))
        at = session.scalar(select(func.max(Review.created_at)))
    for i, (who, taken) in enumerate((("c1", 1), ("c2", seat))):
        values = {"id": f"raw-{i}", "card": card, "who": who, "a": suggestions[0], "b": suggestions[1]}
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(insert, values | {"key": f"k{i}", "at": at, "seat": taken})
