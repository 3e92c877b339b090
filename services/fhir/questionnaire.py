"""The review Questionnaire clinicians answer: two suggestions of one card, side by side."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.questionnaire import Questionnaire

from clinrlhf.world.facts import RXNORM
from clinrlhf.world.world import World

QUESTIONNAIRE_ID = "clinrlhf-review"
QUESTIONNAIRE_URL = f"https://clinrlhf.dev/fhir/Questionnaire/{QUESTIONNAIRE_ID}"
QUESTIONNAIRE_VERSION = "1"
CHOICE_SYSTEM = "https://clinrlhf.dev/fhir/CodeSystem/review-choice"
CHOICES = {"a": "Suggestion A is better", "b": "Suggestion B is better", "tie": "Equally good"}
LINK_IDS = ("card", "suggestion-a", "suggestion-b", "choice", "rating-a", "rating-b", "comment", "correction")
_MIN, _MAX = (
    "http://hl7.org/fhir/StructureDefinition/minValue",
    "http://hl7.org/fhir/StructureDefinition/maxValue",
)


def _rating(link_id: str, which: str) -> dict[str, Any]:
    return {
        "linkId": link_id,
        "text": f"Rate suggestion {which} from 1 (harmful) to 5 (ideal)",
        "type": "integer",
        "extension": [{"url": _MIN, "valueInteger": 1}, {"url": _MAX, "valueInteger": 5}],
    }


def review_questionnaire(world: World) -> dict[str, Any]:
    """The Questionnaire resource, validated against FHIR R4B. A correction is one of the world's
    drugs (R4 has no `coding` item type, so it is a `choice` over RxNorm answer options)."""
    resource = {
        "resourceType": "Questionnaire",
        "id": QUESTIONNAIRE_ID,
        "url": QUESTIONNAIRE_URL,
        "version": QUESTIONNAIRE_VERSION,
        "name": "ClinrlhfReview",
        "title": "Compare two treatment suggestions",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Pairwise choice, 1-5 ratings, an optional corrected drug and an optional comment. Comments "
        "are free text and are never stored; only whether one was given is kept.",
        "item": [
            {"linkId": "card", "text": "CDS card uuid", "type": "string", "required": True},
            {"linkId": "suggestion-a", "text": "Suggestion A (uuid)", "type": "string", "required": True},
            {"linkId": "suggestion-b", "text": "Suggestion B (uuid)", "type": "string", "required": True},
            {
                "linkId": "choice",
                "text": "Which suggestion is better?",
                "type": "choice",
                "answerOption": [
                    {"valueCoding": {"system": CHOICE_SYSTEM, "code": c, "display": d}}
                    for c, d in CHOICES.items()
                ],
            },
            _rating("rating-a", "A"),
            _rating("rating-b", "B"),
            {"linkId": "comment", "text": "Comment (not stored)", "type": "text"},
            {
                "linkId": "correction",
                "text": "What would you prescribe instead?",
                "type": "choice",
                "answerOption": [
                    {"valueCoding": {"system": RXNORM, "code": d.rxnorm, "display": d.key.replace("_", " ")}}
                    for d in world.drugs.values()
                ],
            },
        ],
    }
    Questionnaire.model_validate(resource)
    return resource
