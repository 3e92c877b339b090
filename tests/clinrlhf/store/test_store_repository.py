"""Cases, cards, feedback and reviews in a real database: de-identification at the door,
idempotency, referential checks, and counts."""

from __future__ import annotations

import threading
from datetime import date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import (
    FeedbackEntry,
    InvalidInputError,
    NotFoundError,
    ReviewEntry,
    UnreadableRecordError,
    add_card,
    add_case,
    counts,
    deidentify_case,
    record_feedback,
    record_review,
    transaction,
)
from clinrlhf.store.models import Case, Feedback
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

KEY = b"k" * 32
TODAY = date(2026, 3, 1)


def seeded(sessions: sessionmaker[Session], world: World, seed: int = 1) -> tuple[str, list[str]]:
    """One case with one two-suggestion card; returns (card id, suggestion ids)."""
    patient = generate_patients(world, 1, seed=seed, today=TODAY)[0]
    with transaction(sessions) as session:
        case, _ = add_case(session, deidentify_case(patient.bundle, key=KEY, today=TODAY), source="cds")
        card = add_card(
            session,
            case_id=case.id,
            target=patient.targets[0],
            prompt="sex male ; treat x ->",
            model_version="m@1",
            suggestions=[("lisinopril", "lisinopril 10 mg"), ("losartan", "losartan")],
        )
        return card.id, [s.id for s in card.suggestions]


def test_a_case_holds_only_the_pseudonym_and_facts(sessions, world: World) -> None:
    patient = generate_patients(world, 1, seed=2, today=TODAY)[0]
    case = deidentify_case(patient.bundle, key=KEY, today=TODAY)
    with transaction(sessions) as session:
        row, created = add_case(session, case, source="ingest")
    assert created and len(row.patient) == 64
    raw = next(e["resource"] for e in patient.bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    stored = row.facts + str(row.deid_counts) + row.patient
    assert raw["name"][0]["family"] not in stored and raw["identifier"][0]["value"] not in stored
    assert raw["id"] not in stored and case.facts == patient.facts


def test_unreadable_records_raise_a_message_without_content(world: World) -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Patient", "id": "Okafor", "birthDate": "Okafor-1950"}}],
    }
    with pytest.raises(UnreadableRecordError) as caught:
        deidentify_case(bundle, key=KEY, today=TODAY)
    assert "Okafor" not in str(caught.value) and caught.value.__cause__ is None


def test_idempotent_cases_are_stored_once(sessions, world: World) -> None:
    case = deidentify_case(generate_patients(world, 1, seed=3, today=TODAY)[0].bundle, key=KEY, today=TODAY)
    with transaction(sessions) as session:
        first, created_first = add_case(session, case, source="ingest", idempotent=True)
        second, created_second = add_case(session, case, source="ingest", idempotent=True)
        live, _ = add_case(session, case, source="cds")  # each CDS request is its own visit
    assert (created_first, created_second) == (True, False) and first.id == second.id != live.id


def test_feedback_is_idempotent_and_checks_the_card(sessions, world: World) -> None:
    card, (s0, s1) = seeded(sessions, world)
    entry = FeedbackEntry(
        card=card, outcome="accepted", accepted_suggestions=(s1,), outcome_timestamp=datetime(2026, 3, 1, 12)
    )
    with transaction(sessions) as session:
        row, created = record_feedback(session, entry, clinician="c" * 64, actor="test")
        again, created_again = record_feedback(session, entry, clinician="c" * 64, actor="test")
        assert created and not created_again and row.id == again.id
        assert row.accepted_suggestion_id == s1
        _, other = record_feedback(session, entry, clinician="d" * 64, actor="test")
        assert other  # another clinician's identical entry is their own judgment
    with transaction(sessions) as session, pytest.raises(NotFoundError):
        record_feedback(
            session, FeedbackEntry(card="nope", outcome="overridden"), clinician="c", actor="test"
        )
    bad = [
        FeedbackEntry(card=card, outcome="accepted"),
        FeedbackEntry(card=card, outcome="accepted", accepted_suggestions=("elsewhere",)),
        FeedbackEntry(card=card, outcome="accepted", accepted_suggestions=(s0, s1)),
        FeedbackEntry(card=card, outcome="overridden", accepted_suggestions=(s0,)),
    ]
    for entry in bad:
        with transaction(sessions) as session, pytest.raises(InvalidInputError):
            record_feedback(session, entry, clinician="c", actor="test")


def test_reviews_are_idempotent_and_must_compare_two_suggestions_of_the_card(sessions, world: World) -> None:
    card, (s0, s1) = seeded(sessions, world)
    entry = ReviewEntry(
        card=card,
        suggestion_a=s0,
        suggestion_b=s1,
        choice="b",
        rating_a=2,
        rating_b=5,
        correction_drug="amlodipine",
        has_comment=True,
    )
    with transaction(sessions) as session:
        row, created = record_review(session, entry, clinician="c" * 64)
        _, created_again = record_review(session, entry, clinician="c" * 64)
    assert created and not created_again and row.has_comment and row.correction_drug == "amlodipine"
    for bad in [
        ReviewEntry(card=card, suggestion_a=s0, suggestion_b=s0, choice="a"),
        ReviewEntry(card=card, suggestion_a=s0, suggestion_b="other", choice="a"),
        ReviewEntry(card=card, suggestion_a=s0, suggestion_b=s1),
        ReviewEntry(card=card, suggestion_a=s0, suggestion_b=s1, rating_a=9),
    ]:
        with transaction(sessions) as session, pytest.raises(InvalidInputError):
            record_review(session, bad, clinician="c")
    with transaction(sessions) as session, pytest.raises(NotFoundError):
        record_review(
            session, ReviewEntry(card="nope", suggestion_a=s0, suggestion_b=s1, choice="a"), clinician="c"
        )


def test_concurrent_writers_of_the_same_feedback_store_it_once(sessions, world: World) -> None:
    card, (_, s1) = seeded(sessions, world)
    entry = FeedbackEntry(card=card, outcome="accepted", accepted_suggestions=(s1,))
    results, barrier = [], threading.Barrier(4)

    def write() -> None:
        barrier.wait()
        with transaction(sessions) as session:
            results.append(record_feedback(session, entry, clinician="c" * 64, actor="test")[1])

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    with sessions() as session:
        assert len(session.scalars(select(Feedback)).all()) == 1


def test_counts_report_every_table(sessions, world: World) -> None:
    card, (s0, s1) = seeded(sessions, world)
    with transaction(sessions) as session:
        record_feedback(session, FeedbackEntry(card=card, outcome="overridden"), clinician="c", actor="test")
        record_review(
            session, ReviewEntry(card=card, suggestion_a=s0, suggestion_b=s1, choice="a"), clinician="c"
        )
    with sessions() as session:
        result = counts(session)
        assert len(session.scalars(select(Case)).all()) == 1
    assert {k: result[k] for k in ("cases", "cards", "feedback", "reviews", "suggestions")} == {
        "cases": 1,
        "cards": 1,
        "feedback": 1,
        "reviews": 1,
        "suggestions": 2,
    }
    assert result["feedback_overridden"] == 1 and result["cases_cds"] == 1
