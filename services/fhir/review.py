"""QuestionnaireResponse <-> stored review. Parsing keeps only coded answers and ids; the comment
is reduced to "present or not", and rendering never has a comment to give back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from clinrlhf.store import ReviewEntry
from clinrlhf.store.models import Review
from clinrlhf.world.facts import RXNORM
from clinrlhf.world.world import World
from services.errors import describe_errors
from services.fhir.questionnaire import CHOICE_SYSTEM, CHOICES, LINK_IDS, QUESTIONNAIRE_URL

_ACCEPTED_STATUS = ("completed", "amended")


class ReviewFormatError(ValueError):
    """The QuestionnaireResponse does not answer the review Questionnaire. Fixed-text messages only."""


def _answers(resource: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    answers: dict[str, Mapping[str, Any]] = {}
    for item in resource.get("item") or []:
        link = item.get("linkId")
        if link not in LINK_IDS:
            raise ReviewFormatError("item linkIds must be among: " + ", ".join(LINK_IDS))
        if link in answers:
            raise ReviewFormatError(f"item {link} appears more than once")
        if item.get("item"):
            raise ReviewFormatError("review items are not nested")
        given = item.get("answer") or []
        if len(given) > 1:
            raise ReviewFormatError(f"item {link} has more than one answer")
        if given:
            answers[link] = given[0]
    return answers


def _string(answers: Mapping[str, Mapping[str, Any]], link: str) -> str:
    value = answers.get(link, {}).get("valueString")
    if not isinstance(value, str) or not value.strip():
        raise ReviewFormatError(f"item {link} needs a valueString answer")
    return value.strip()


def _rating(answers: Mapping[str, Mapping[str, Any]], link: str) -> int | None:
    if link not in answers:
        return None
    value = answers[link].get("valueInteger")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
        raise ReviewFormatError(f"item {link} needs a valueInteger from 1 to 5")
    return value


def _choice(answers: Mapping[str, Mapping[str, Any]]) -> str | None:
    if "choice" not in answers:
        return None
    coding = answers["choice"].get("valueCoding") or {}
    if coding.get("code") not in CHOICES or coding.get("system") not in (None, CHOICE_SYSTEM):
        raise ReviewFormatError("item choice needs a valueCoding with code a, b or tie")
    return str(coding["code"])


def _correction(answers: Mapping[str, Mapping[str, Any]], world: World) -> str | None:
    if "correction" not in answers:
        return None
    coding = answers["correction"].get("valueCoding") or {}
    drug = world.drug_by_rxnorm(str(coding.get("code"))) if coding.get("system") == RXNORM else None
    if drug is None:
        raise ReviewFormatError("item correction needs an RxNorm valueCoding of a formulary drug")
    return drug.key


def parse_review(resource: Any, world: World) -> ReviewEntry:
    """Validate a QuestionnaireResponse (FHIR R4B) answering the review Questionnaire."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "QuestionnaireResponse":
        raise ReviewFormatError("the body must be a QuestionnaireResponse resource")
    try:
        QuestionnaireResponse.model_validate(resource)
    except ValidationError as err:
        raise ReviewFormatError(f"invalid QuestionnaireResponse: {describe_errors(err.errors())}") from None
    except (ValueError, TypeError, LookupError, AttributeError, RecursionError):
        # fhir.resources raises KeyError for a resource type it does not know (`contained: [{
        # "resourceType": "Foo"}]`), and others for shapes it does not expect: all of them are the
        # client's malformed resource, a 422, never a 500.
        raise ReviewFormatError("invalid QuestionnaireResponse") from None
    if str(resource.get("questionnaire", "")).split("|", 1)[0] != QUESTIONNAIRE_URL:
        raise ReviewFormatError(f"questionnaire must be {QUESTIONNAIRE_URL}")
    if resource.get("status") not in _ACCEPTED_STATUS:
        raise ReviewFormatError("status must be completed or amended")
    answers = _answers(resource)
    comment = answers.get("comment", {}).get("valueString")
    return ReviewEntry(
        card=_string(answers, "card"),
        suggestion_a=_string(answers, "suggestion-a"),
        suggestion_b=_string(answers, "suggestion-b"),
        choice=_choice(answers),  # type: ignore[arg-type]
        rating_a=_rating(answers, "rating-a"),
        rating_b=_rating(answers, "rating-b"),
        correction_drug=_correction(answers, world),
        has_comment=isinstance(comment, str) and bool(comment.strip()),
    )


def render_review(review: Review, world: World) -> dict[str, Any]:
    """The stored review as a QuestionnaireResponse: what was kept, and nothing else."""
    items: list[dict[str, Any]] = [
        {"linkId": "card", "answer": [{"valueString": review.card_id}]},
        {"linkId": "suggestion-a", "answer": [{"valueString": review.suggestion_a_id}]},
        {"linkId": "suggestion-b", "answer": [{"valueString": review.suggestion_b_id}]},
    ]
    if review.choice:
        items.append(
            {
                "linkId": "choice",
                "answer": [
                    {
                        "valueCoding": {
                            "system": CHOICE_SYSTEM,
                            "code": review.choice,
                            "display": CHOICES[review.choice],
                        }
                    }
                ],
            }
        )
    for link, rating in (("rating-a", review.rating_a), ("rating-b", review.rating_b)):
        if rating is not None:
            items.append({"linkId": link, "answer": [{"valueInteger": rating}]})
    if review.correction_drug:
        drug = world.drugs[review.correction_drug]
        items.append(
            {
                "linkId": "correction",
                "answer": [
                    {
                        "valueCoding": {
                            "system": RXNORM,
                            "code": drug.rxnorm,
                            "display": drug.key.replace("_", " "),
                        }
                    }
                ],
            }
        )
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": review.id,
        "meta": {"lastUpdated": review.created_at.isoformat() + "Z"},
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "authored": review.created_at.isoformat() + "Z",
        "item": items,
    }
    QuestionnaireResponse.model_validate(resource)
    return resource
