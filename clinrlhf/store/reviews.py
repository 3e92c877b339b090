"""Clinician reviews: a pairwise choice, ratings and a corrected drug for two suggestions of a card."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from sqlalchemy.orm import Session

from clinrlhf.store.cards import get_card
from clinrlhf.store.errors import InvalidInputError
from clinrlhf.store.models import Review
from clinrlhf.store.once import insert_once


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


def record_review(session: Session, entry: ReviewEntry, *, clinician: str) -> tuple[Review, bool]:
    """Store one review (at most once) and return (row, created).

    Raises NotFoundError for an unknown card, InvalidInputError when the two suggestions are not two
    different suggestions of that card, when it judges nothing, or when a rating is outside 1-5.
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
    row = Review(
        card_id=card.id,
        clinician=clinician,
        suggestion_a_id=entry.suggestion_a,
        suggestion_b_id=entry.suggestion_b,
        choice=entry.choice,
        rating_a=entry.rating_a,
        rating_b=entry.rating_b,
        correction_drug=entry.correction_drug,
        has_comment=entry.has_comment,
        idempotency_key=key,
    )
    return insert_once(session, row, Review, key)
