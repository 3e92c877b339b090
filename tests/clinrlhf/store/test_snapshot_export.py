"""`export_judgments`: stored reviews and feedback become Judgments, in a stable order."""

from __future__ import annotations

from datetime import date

from clinrlhf.feedback.judgment import Judgment, snapshot_sha256, to_ndjson
from clinrlhf.store import (
    FeedbackEntry,
    ReviewEntry,
    add_card,
    add_case,
    deidentify_case,
    export_judgments,
    override_reasons,
    record_feedback,
    record_review,
    transaction,
)
from clinrlhf.text.prompt import render_response
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

KEY, TODAY = b"s" * 32, date(2026, 3, 1)
TEXTS = ("lisinopril 10 mg by mouth once daily", "amlodipine 5 mg by mouth once daily", "losartan 50 mg")


def test_reviews_and_feedback_round_trip_into_judgments(sessions, world: World) -> None:
    patient = generate_patients(world, 1, seed=4, today=TODAY)[0]
    with transaction(sessions) as session:
        case, _ = add_case(session, deidentify_case(patient.bundle, key=KEY, today=TODAY), source="cds")
        card = add_card(
            session,
            case_id=case.id,
            target="hypertension",
            prompt="sex female ; treat hypertension ->",
            model_version="m@1",
            clinician="doc" * 8,
            suggestions=[("lisinopril", TEXTS[0]), ("amlodipine", TEXTS[1]), ("losartan", TEXTS[2])],
        )
        s0, s1, s2 = (s.id for s in card.suggestions)
        record_review(
            session,
            ReviewEntry(
                card=card.id,
                suggestion_a=s1,
                suggestion_b=s0,
                choice="a",
                rating_a=5,
                rating_b=None,
                correction_drug="hydrochlorothiazide",
            ),
            clinician="r1",
        )
        record_feedback(
            session,
            FeedbackEntry(card=card.id, outcome="accepted", accepted_suggestions=(s2,)),
            clinician="r2",
            actor="test",
        )
        record_review(
            session, ReviewEntry(card=card.id, suggestion_a=s0, suggestion_b=s1, choice="tie"), clinician="r3"
        )
        record_feedback(
            session,
            FeedbackEntry(card=card.id, outcome="overridden", override_reason_code="other"),
            clinician="r4",
            actor="test",
        )
    with sessions() as session:
        judgments = export_judgments(session, world)
        assert export_judgments(session, world) == judgments
    base = dict(card=card.id, patient=case.patient, prompt=card.prompt)
    assert judgments == [
        Judgment(kind="pairwise", clinician="r1", responses=(TEXTS[1], TEXTS[0]), preferred=0, **base),
        Judgment(kind="rating", clinician="r1", responses=(TEXTS[1], TEXTS[0]), ratings=(5, None), **base),
        Judgment(
            kind="correction",
            clinician="r1",
            responses=(TEXTS[1], TEXTS[0]),
            correction=render_response(world, "hydrochlorothiazide"),
            **base,
        ),
        # Feedback credits the clinician the card was shown to, whoever reports it (as the service does).
        Judgment(kind="cds", clinician="doc" * 8, responses=TEXTS, accepted=2, **base),
        Judgment(kind="pairwise", clinician="r3", responses=(TEXTS[0], TEXTS[1]), preferred=None, **base),
        Judgment(kind="cds", clinician="doc" * 8, responses=TEXTS, accepted=None, **base),
    ]
    assert len(snapshot_sha256(judgments)) == 64
    assert patient.bundle["entry"][0]["resource"]["name"][0]["family"].encode() not in to_ndjson(judgments)


def test_an_empty_store_exports_nothing(sessions, world: World) -> None:
    with sessions() as session:
        assert export_judgments(session, world) == []


def test_an_override_reason_is_exported_as_the_signal_it_gives(sessions, world: World) -> None:
    """The snapshot holds what reward training reads: the signal of the reason, from the one table
    in `clinrlhf.store.override_reasons`, never the code a client sent."""
    patient = generate_patients(world, 1, seed=5, today=TODAY)[0]
    with transaction(sessions) as session:
        case, _ = add_case(session, deidentify_case(patient.bundle, key=KEY, today=TODAY), source="cds")
        card = add_card(
            session,
            case_id=case.id,
            target="hypertension",
            prompt="sex male ; treat hypertension ->",
            model_version="m@1",
            clinician="doc" * 8,
            suggestions=[("lisinopril", TEXTS[0]), ("amlodipine", TEXTS[1])],
        )
        for code in ("patient-contraindication", "too-costly-uncovered", None):
            record_feedback(
                session,
                FeedbackEntry(
                    card=card.id,
                    outcome="overridden",
                    override_reason_system=override_reasons.SYSTEM if code else None,
                    override_reason_code=code,
                ),
                clinician="r1",
                actor="test",
            )
    with sessions() as session:
        judgments = export_judgments(session, world)
    assert sorted(str(j.override_signal) for j in judgments) == ["None", "clinical", "non-clinical"]
    unsignalled = [j for j in judgments if j.override_signal is None]
    # A judgment without a signal is written as before 3.0: older snapshots keep their digests.
    assert b"override_signal" not in to_ndjson(unsignalled)
