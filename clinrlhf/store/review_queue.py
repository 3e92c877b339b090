"""The review page's queue: every card with two suggestions goes to `overlap` (k) clinicians.

A card leaves a clinician's queue once they have reviewed it, and leaves the pool once k different
clinicians have, so that each judged pair has k judgments to measure agreement on. Reviews posted
as FHIR QuestionnaireResponses count too: it is one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from clinrlhf.store.models import Card, Review, Suggestion

CardStatus = Literal["open", "reviewed", "full"]


@dataclass(frozen=True)
class Progress:
    reviewed: int  # cards this clinician has reviewed
    waiting: int  # cards still in their queue, the one on screen included
    overlap: int  # k


def _reviewers() -> Any:
    return (
        select(func.count(func.distinct(Review.clinician))).where(Review.card_id == Card.id).scalar_subquery()
    )


def _waiting_for(clinician: str, overlap: int) -> list[Any]:
    """WHERE clauses of the cards in `clinician`'s queue."""
    pairable = exists(select(Suggestion.id).where(Suggestion.card_id == Card.id, Suggestion.rank == 1))
    mine = exists(select(Review.id).where(Review.card_id == Card.id, Review.clinician == clinician))
    return [pairable, ~mine, _reviewers() < overlap]


def next_card(session: Session, clinician: str, overlap: int) -> Card | None:
    """The oldest card in the clinician's queue, with its case and suggestions loaded."""
    query = (
        select(Card)
        .where(*_waiting_for(clinician, overlap))
        .order_by(Card.created_at, Card.id)
        .limit(1)
        .options(selectinload(Card.case), selectinload(Card.suggestions))
    )
    return session.scalars(query).first()


def progress(session: Session, clinician: str, overlap: int) -> Progress:
    reviewed = session.scalar(
        select(func.count(func.distinct(Review.card_id))).where(Review.clinician == clinician)
    )
    waiting = session.scalar(select(func.count()).select_from(Card).where(*_waiting_for(clinician, overlap)))
    return Progress(reviewed=int(reviewed or 0), waiting=int(waiting or 0), overlap=overlap)


def card_status(session: Session, card_id: str, clinician: str, overlap: int) -> CardStatus:
    """Whether `clinician` may review the card now; call inside the transaction that stores the review.

    On PostgreSQL the card's row is locked, so two clinicians racing for the last of k places are
    served one after the other (SQLite's write transactions are serialised already). An unknown card
    is "open": storing the review then fails with NotFoundError.
    """
    session.execute(select(Card.id).where(Card.id == card_id).with_for_update())
    reviewers = set(session.scalars(select(Review.clinician).where(Review.card_id == card_id).distinct()))
    if clinician in reviewers:
        return "reviewed"
    return "full" if len(reviewers) >= overlap else "open"
