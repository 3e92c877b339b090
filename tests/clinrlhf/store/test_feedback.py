"""Feedback's one write path, in batches without the ORM: each entry stored once however often and
however it arrives (a batch, or one entry in an ORM session), and create events that the audit
verification accepts (and that still expose an edited row)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from clinrlhf.store import (
    FeedbackEntry,
    InvalidInputError,
    NotFoundError,
    consistent_read,
    record_audit,
    record_feedback,
    transaction,
    verify_audit,
)
from clinrlhf.store.feedback import FeedbackCounts, FeedbackJob, feedback_writer
from clinrlhf.store.models import AuditEvent, Feedback

DOCTOR, EHR = "d" * 64, "e" * 64


def overridden(card: str, minute: int = 0) -> FeedbackEntry:
    return FeedbackEntry(card=card, outcome="overridden", outcome_timestamp=datetime(2026, 3, 1, 12, minute))


def job(*entries: FeedbackEntry) -> FeedbackJob:
    return FeedbackJob(entries=entries, actor="cds-client:ehr", clinician=EHR)


def stored(sessions: sessionmaker[Session]) -> list[Feedback]:
    with sessions() as session:
        return list(session.scalars(select(Feedback)))


def test_idempotency_keys_do_not_change_between_versions() -> None:
    entry = FeedbackEntry(
        card="card-1",
        outcome="accepted",
        accepted_suggestions=("s-2",),
        outcome_timestamp=datetime(2026, 3, 1, 12, 30, 0, 250),
    )
    # Keys already stored must keep matching: this is the digest the first release computed.
    assert (
        entry.idempotency_key("c" * 64) == "c53a43f2719a21b9ec610930a1ba217c795521b3bdf451d2a7d3b51cd73802f4"
    )


def test_a_batch_stores_each_entry_once_and_counts_the_rest_as_duplicates(
    engine: Engine, sessions, cards
) -> None:
    card, _ = cards()
    first, second, third = (overridden(card, m) for m in (1, 2, 3))
    writer = feedback_writer(engine)
    jobs = [job(first, second), job(first), job(third, third)]
    assert writer.write_batch(jobs) == [FeedbackCounts(2, 0), FeedbackCounts(0, 1), FeedbackCounts(1, 1)]
    assert writer.write_batch(jobs) == [FeedbackCounts(0, 2), FeedbackCounts(0, 1), FeedbackCounts(0, 2)]
    assert len(stored(sessions)) == 3


def test_an_entry_recorded_in_a_session_takes_the_batch_path_and_is_audited(engine, sessions, cards) -> None:
    """`record_feedback` is the batch path for one entry in the caller's ORM transaction: the same
    keys, the same crediting, and the create event the service's writes get."""
    card, (_, s1) = cards(clinician=DOCTOR)
    entry = FeedbackEntry(card=card, outcome="accepted", accepted_suggestions=(s1,))
    with transaction(sessions) as session:
        row, created = record_feedback(session, entry, clinician=EHR, actor="cds-client:ehr")
        again, created_again = record_feedback(session, entry, clinician=EHR, actor="cds-client:ehr")
        # An ORM event after it links to the event the batch path appended, in the same transaction.
        record_audit(session, actor="test", action="R", entity_type="Feedback", entity_id=row.id)
    assert created and not created_again and again.id == row.id
    assert (row.clinician, row.accepted_suggestion_id) == (DOCTOR, s1)  # the card's clinician is credited
    assert feedback_writer(engine).write_batch([job(entry)]) == [FeedbackCounts(0, 1)]
    with sessions() as session:
        created_events = session.scalars(
            select(AuditEvent).where(AuditEvent.entity_type == "Feedback", AuditEvent.action == "C")
        ).all()
    assert [(e.entity_id, e.actor) for e in created_events] == [(row.id, "cds-client:ehr")]
    with consistent_read(sessions) as session:
        report = verify_audit(session)
    assert report.ok, report.problem


def test_a_job_that_does_not_fit_its_cards_fails_alone_and_stores_nothing(
    engine: Engine, sessions, cards
) -> None:
    card, (s0, _) = cards()
    good, later = overridden(card, 1), overridden(card, 2)
    unknown = overridden("no-such-card")
    foreign = FeedbackEntry(card=card, outcome="accepted", accepted_suggestions=("elsewhere",))
    both = FeedbackEntry(card=card, outcome="overridden", accepted_suggestions=(s0,))
    results = feedback_writer(engine).write_batch(
        [job(good), job(later, unknown), job(foreign), job(both), job(later)]
    )
    assert results[0] == results[4] == FeedbackCounts(1, 0)
    assert isinstance(results[1], NotFoundError)
    assert isinstance(results[2], InvalidInputError) and isinstance(results[3], InvalidInputError)
    assert len(stored(sessions)) == 2  # `later` once, from the last job: the second stored nothing


def test_a_card_shown_to_a_clinician_credits_them_and_otherwise_the_caller(
    engine: Engine, sessions, cards
) -> None:
    shown, _ = cards(clinician=DOCTOR)
    anonymous, _ = cards()
    feedback_writer(engine).write_batch([job(overridden(shown)), job(overridden(anonymous))])
    assert {(row.card_id, row.clinician) for row in stored(sessions)} == {(shown, DOCTOR), (anonymous, EHR)}


def test_the_trail_vouches_for_every_row_and_exposes_an_edited_one(engine: Engine, sessions, cards) -> None:
    card, (_, s1) = cards()
    accepted = FeedbackEntry(
        card=card,
        outcome="accepted",
        accepted_suggestions=(s1,),
        override_reason_system="https://clinrlhf.dev/fhir/CodeSystem/override-reason",
        override_reason_code="other",  # only reasons the cards offer are stored
        has_comment=True,
        outcome_timestamp=datetime(2026, 3, 1, 12, 0, 0, 123456),
    )
    writer = feedback_writer(engine)
    writer.write_batch([job(accepted, overridden(card, 1)), job(overridden(card, 2))])
    writer.write_batch([job(overridden(card, 3))])
    with sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.entity_type == "Feedback")).all()
    assert len(events) == 4 and {e.actor for e in events} == {"cds-client:ehr"}
    with consistent_read(sessions) as session:
        report = verify_audit(session)
    assert report.ok, report.problem
    assert report.rows == 4 + 2  # the feedback, and the case and card it refers to
    with engine.begin() as conn:  # someone edits a stored judgment behind the service's back
        conn.execute(text("UPDATE feedback SET outcome = 'accepted' WHERE outcome = 'overridden'"))
    with consistent_read(sessions) as session:
        report = verify_audit(session)
    assert not report.ok and "Feedback" in (report.problem or "") and "was changed" in (report.problem or "")


def test_a_reason_the_cards_do_not_offer_stores_nothing_on_either_path(
    engine: Engine, sessions, cards
) -> None:
    """Both write paths refuse a made-up override reason: a client's string never becomes a column."""
    card, _ = cards()
    made_up = [
        FeedbackEntry(card=card, outcome="overridden", override_reason_code="Jane Roe 123-45-6789"),
        FeedbackEntry(
            card=card, outcome="overridden", override_reason_system="Jane Roe", override_reason_code="other"
        ),
        FeedbackEntry(card=card, outcome="overridden", override_reason_system="https://clinrlhf.dev/fhir/x"),
    ]
    for entry in made_up:
        [result] = feedback_writer(engine).write_batch([job(entry)])
        assert isinstance(result, InvalidInputError)
        with transaction(sessions) as session, pytest.raises(InvalidInputError):
            record_feedback(session, entry, clinician=EHR, actor="cds-client:ehr")
    assert stored(sessions) == []
