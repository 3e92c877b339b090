"""The review page's queue: each card with two suggestions goes to k clinicians, oldest first."""

from __future__ import annotations

from datetime import date

from clinrlhf.store import (
    ReviewEntry,
    add_card,
    add_case,
    deidentify_case,
    get_card,
    record_review,
    transaction,
)
from clinrlhf.store.review_queue import card_status, next_card, progress
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

KEY, TODAY = b"q" * 32, date(2026, 3, 1)


def make_cards(sessions, world: World, suggestions_per_card: list[int]) -> list[str]:
    ids = []
    patient = generate_patients(world, 1, seed=2, today=TODAY)[0]
    with transaction(sessions) as session:
        case, _ = add_case(session, deidentify_case(patient.bundle, key=KEY, today=TODAY), source="cds")
        for n in suggestions_per_card:
            drugs = ["lisinopril", "amlodipine", "losartan"][:n]
            card = add_card(
                session,
                case_id=case.id,
                target="hypertension",
                prompt="p",
                model_version="m",
                suggestions=[(d, d) for d in drugs],
            )
            ids.append(card.id)
    return ids


def review(sessions, card: str, clinician: str) -> None:
    with transaction(sessions) as session:
        a, b = (s.id for s in get_card(session, card).suggestions[:2])
        entry = ReviewEntry(card=card, suggestion_a=a, suggestion_b=b, choice="a")
        record_review(session, entry, clinician=clinician)


def test_the_queue_holds_pairable_cards_oldest_first(sessions, world: World) -> None:
    first, single, second = make_cards(sessions, world, [2, 1, 3])
    with sessions() as session:
        assert next_card(session, "c1", overlap=2).id == first
        assert progress(session, "c1", overlap=2).waiting == 2  # the one-suggestion card is not shown
    assert single not in (first, second)


def test_a_card_leaves_a_queue_once_reviewed_and_the_pool_after_k(sessions, world: World) -> None:
    first, second = make_cards(sessions, world, [2, 2])
    review(sessions, first, "c1")
    with sessions() as session:
        assert next_card(session, "c1", overlap=2).id == second
        assert next_card(session, "c2", overlap=2).id == first
        assert card_status(session, first, "c1", overlap=2) == "reviewed"
        assert card_status(session, first, "c2", overlap=2) == "open"
    review(sessions, first, "c2")
    with sessions() as session:
        assert next_card(session, "c3", overlap=2).id == second
        assert card_status(session, first, "c3", overlap=2) == "full"
        assert progress(session, "c1", overlap=2) == progress(session, "c2", overlap=2)
        assert (progress(session, "c1", 2).reviewed, progress(session, "c3", 2).waiting) == (1, 1)


def test_an_empty_queue(sessions) -> None:
    with sessions() as session:
        assert next_card(session, "c1", overlap=3) is None
        assert progress(session, "c1", overlap=3).waiting == 0
