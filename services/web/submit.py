"""A review submitted on the page becomes a FHIR QuestionnaireResponse and is stored exactly as one
posted to `/fhir/QuestionnaireResponse`: the same parser, store function and audit event."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from clinrlhf.store import InvalidInputError, NotFoundError, ReviewEntry, record_audit, record_review
from clinrlhf.store.errors import AlreadyReviewedError, ReviewsFullError
from clinrlhf.store.models import Review
from clinrlhf.world.facts import RXNORM
from clinrlhf.world.world import World
from services.errors import APIError
from services.fhir.questionnaire import QUESTIONNAIRE_URL
from services.fhir.review import ReviewFormatError, parse_review
from services.web.comment import scrub_comment

_ID = Field(min_length=1, max_length=36)  # ids this service issued: uuid4, as their columns hold


class PageReview(BaseModel):
    """The review form, as the page's script posts it."""

    model_config = ConfigDict(extra="forbid")

    card: str = _ID
    suggestion_a: str = _ID  # shown on the left
    suggestion_b: str = _ID  # shown on the right
    choice: Literal["a", "b", "tie"] | None = None
    rating_a: int | None = Field(default=None, ge=1, le=5)
    rating_b: int | None = Field(default=None, ge=1, le=5)
    correction: str | None = Field(default=None, max_length=16)  # RxNorm code of a formulary drug
    comment: str | None = Field(default=None, max_length=4000)


def questionnaire_response(form: PageReview) -> dict[str, Any]:
    """The form as a QuestionnaireResponse; the comment is scrubbed before it is put in."""
    answers: list[tuple[str, dict[str, Any] | None]] = [
        ("card", {"valueString": form.card}),
        ("suggestion-a", {"valueString": form.suggestion_a}),
        ("suggestion-b", {"valueString": form.suggestion_b}),
        ("choice", {"valueCoding": {"code": form.choice}} if form.choice else None),
        ("rating-a", {"valueInteger": form.rating_a} if form.rating_a else None),
        ("rating-b", {"valueInteger": form.rating_b} if form.rating_b else None),
        (
            "correction",
            {"valueCoding": {"system": RXNORM, "code": form.correction}} if form.correction else None,
        ),
    ]
    comment = scrub_comment(form.comment)
    if comment:
        answers.append(("comment", {"valueString": comment}))
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "item": [{"linkId": link, "answer": [answer]} for link, answer in answers if answer is not None],
    }


def store_page_review(
    session: Session, form: PageReview, *, world: World, clinician: str, actor: str, overlap: int
) -> tuple[Review, bool]:
    """Store the review in one transaction and return (row, created).

    Raises APIError: 422 for a review that judges nothing or does not fit the card, 404 for an
    unknown card, 409 when the card already has its k reviews or this clinician reviewed it already
    (sending the very same review again is not an error: it is stored once).
    """
    try:
        entry = parse_review(questionnaire_response(form), world)
    except ReviewFormatError as err:
        raise APIError(422, str(err), code="invalid") from None
    try:
        with session.begin():
            return _store(session, entry, form.card, clinician=clinician, actor=actor, overlap=overlap)
    except NotFoundError:
        raise APIError(404, "the review names a card this service did not issue") from None
    except InvalidInputError as err:
        raise APIError(422, str(err), code="invalid") from None


def _store(
    session: Session, entry: ReviewEntry, card: str, *, clinician: str, actor: str, overlap: int
) -> tuple[Review, bool]:
    # The store keeps the rules (one review per clinician per case, k per case) for every path.
    try:
        review, created = record_review(session, entry, clinician=clinician, overlap=overlap)
    except ReviewsFullError:
        raise APIError(409, f"this case already has its {overlap} reviews; reload for the next one") from None
    except AlreadyReviewedError:
        raise APIError(409, "you have already reviewed this case; reload for the next one") from None
    if created:
        record_audit(
            session, actor=actor, action="C", entity_type="QuestionnaireResponse", entity_id=review.id
        )
    return review, created
