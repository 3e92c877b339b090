"""Clinician reviews: a pairwise choice, ratings and a corrected drug for two suggestions of a card."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clinrlhf.store.cards import get_card
from clinrlhf.store.errors import AlreadyReviewedError, InvalidInputError, ReviewsFullError
from clinrlhf.store.models import Review


@dataclass(frozen=True)
class ReviewEntry:
    """One parsed review; the free-text comment is reduced to a flag."""

    card: str
    suggestion_a: str
    suggestion_b: str
    choice: Literal["a", "b", "tie"] | None = None
    rating_a: int | None = None
    rating_b: int | None = None
    correction_drug: str | None = None  # world drug key
    has_comment: bool = False

    def idempotency_key(self, clinician: str) -> str:
        content = asdict(self) | {"clinician": clinician}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def record_review(
    session: Session, entry: ReviewEntry, *, clinician: str, overlap: int | None = None
) -> tuple[Review, bool]:
    """Store one review (at most once) and return (row, created).

    The review rules hold whichever path calls this (the review page, FHIR, the CLI): a clinician
    reviews a case once, and a case takes at most `overlap` (k) clinicians; None sets no k, for
    library use. The database keeps both (UNIQUE indexes on the case and clinician, and on the case
    and seat), so concurrent writers cannot break them either.

    Raises NotFoundError for an unknown card; InvalidInputError when the two suggestions are not two
    different suggestions of that card, when it judges nothing, or when a rating is outside 1-5;
    AlreadyReviewedError and ReviewsFullError (ConflictErrors) when a rule refuses it. Sending the
    very same review again is not an error: the stored row comes back with created False.
    """
    card = get_card(session, entry.card)
    ids = {s.id for s in card.suggestions}
    if entry.suggestion_a == entry.suggestion_b or not {entry.suggestion_a, entry.suggestion_b} <= ids:
        raise InvalidInputError("the review must compare two different suggestions of the card")
    if (
        entry.choice is None
        and entry.rating_a is None
        and entry.rating_b is None
        and entry.correction_drug is None
    ):
        raise InvalidInputError("a review needs a choice, a rating or a correction")
    for rating in (entry.rating_a, entry.rating_b):
        if rating is not None and not 1 <= rating <= 5:
            raise InvalidInputError("ratings are integers from 1 to 5")
    key = entry.idempotency_key(clinician)
    # A writer that loses a race for a seat re-reads and tries the next one; each retry follows a
    # review someone else stored, so there are at most k + 1 tries before the case is full.
    for _ in range((overlap or 0) + 2):
        found = session.scalars(select(Review).where(Review.idempotency_key == key)).first()
        if found is not None:
            return found, False
        row = _seated_review(session, entry, card.id, clinician, key, overlap)
        if _inserted(session, row):
            return row, True
    raise ReviewsFullError("this case has no review place left")


def _seated_review(
    session: Session, entry: ReviewEntry, card: str, clinician: str, key: str, overlap: int | None
) -> Review:
    """The review in the next seat: seat n, where n counts the case's reviewers so far (reviews
    stored before seats existed have none, yet count)."""
    reviewers = set(session.scalars(select(Review.clinician).where(Review.card_id == card).distinct()))
    if clinician in reviewers:
        raise AlreadyReviewedError("this clinician has already reviewed this case")
    if overlap is not None and len(reviewers) >= overlap:
        raise ReviewsFullError("this case already has all the reviews it takes")
    return Review(
        card_id=card,
        clinician=clinician,
        suggestion_a_id=entry.suggestion_a,
        suggestion_b_id=entry.suggestion_b,
        choice=entry.choice,
        rating_a=entry.rating_a,
        rating_b=entry.rating_b,
        correction_drug=entry.correction_drug,
        has_comment=entry.has_comment,
        idempotency_key=key,
        seat=len(reviewers),
    )


def _inserted(session: Session, row: Review) -> bool:
    """Insert `row`; False when a concurrent writer took its seat, its clinician's place or its key."""
    if session.get_bind().dialect.name == "sqlite":
        # Our SQLite transactions begin IMMEDIATE: no other writer can insert between the reads
        # above and this insert, so the constraints can only fail on a bug, which should raise.
        session.add(row)
        session.flush()
        return True
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return False
    return True
