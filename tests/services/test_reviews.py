"""Clinician reviews over FHIR: QuestionnaireResponse create and read, idempotency, validation, and
the judgments the store exports from them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from clinrlhf.feedback.judgment import snapshot_sha256
from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import deployment_store, export_judgments
from clinrlhf.text.prompt import render_response
from clinrlhf.world.facts import RXNORM
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

QUESTIONNAIRE = "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review"
COMMENT = "Spoke with Maria Okafor (MRN1234567) about this"


def review(
    card: str,
    a: str,
    b: str,
    *,
    choice: str | None = "a",
    ratings: tuple[int, int] | None = (4, 2),
    correction: str | None = None,
    comment: str | None = COMMENT,
) -> dict[str, Any]:
    items: list[dict[str, Any]] = [
        {"linkId": "card", "answer": [{"valueString": card}]},
        {"linkId": "suggestion-a", "answer": [{"valueString": a}]},
        {"linkId": "suggestion-b", "answer": [{"valueString": b}]},
    ]
    if choice:
        items.append({"linkId": "choice", "answer": [{"valueCoding": {"code": choice}}]})
    if ratings:
        items += [
            {"linkId": "rating-a", "answer": [{"valueInteger": ratings[0]}]},
            {"linkId": "rating-b", "answer": [{"valueInteger": ratings[1]}]},
        ]
    if comment:
        items.append({"linkId": "comment", "answer": [{"valueString": comment}]})
    if correction:
        items.append(
            {"linkId": "correction", "answer": [{"valueCoding": {"system": RXNORM, "code": correction}}]}
        )
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": QUESTIONNAIRE,
        "item": items,
    }


@pytest.fixture(scope="module")
def card(server, auth, patient_view, world: World) -> dict:
    """A card with two suggestions, from a real CDS call."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for patient in generate_patients(world, 20, seed=31):
            response = client.post(
                "/cds-services/clinrlhf-treatment",
                json=patient_view(patient.bundle),
                headers=auth("cds-client", "application/json"),
            )
            cards = [c for c in response.json()["cards"] if len(c["suggestions"]) == 2]
            if cards:
                return cards[0]
    raise AssertionError("no two-suggestion card")


def post(client: httpx.Client, auth, body: dict, role: str = "clinician") -> httpx.Response:
    return client.post("/fhir/QuestionnaireResponse", json=body, headers=auth(role, "application/fhir+json"))


def post_as(client: httpx.Client, settings: Settings, sub: str, body: dict) -> httpx.Response:
    """Post as clinician `sub`: a clinician reviews a case once, so each test reviews as its own."""
    token = mint_token(settings, role="clinician", sub=sub)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    return client.post("/fhir/QuestionnaireResponse", json=body, headers=headers)


def test_a_review_is_created_with_a_location_and_reads_back_without_its_comment(
    client, auth, card, api_settings: Settings
) -> None:
    a, b = (s["uuid"] for s in card["suggestions"])
    response = post_as(client, api_settings, "reviewer-1", review(card["uuid"], a, b))
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    stored = QuestionnaireResponse.model_validate(response.json())
    assert response.headers["location"].endswith(f"/fhir/QuestionnaireResponse/{stored.id}")
    assert "Okafor" not in response.text and "comment" not in {i.linkId for i in stored.item}
    again = client.get(response.headers["location"], headers=auth("ml-engineer"))
    assert again.status_code == 200 and again.json()["id"] == stored.id
    answers = {i["linkId"]: i["answer"][0] for i in again.json()["item"]}
    assert answers["choice"]["valueCoding"]["code"] == "a" and answers["rating-b"]["valueInteger"] == 2


def test_the_same_review_posted_twice_is_stored_once(client, card, api_settings: Settings) -> None:
    a, b = (s["uuid"] for s in card["suggestions"])
    body = review(card["uuid"], a, b, choice="tie", ratings=(3, 3), comment=None)
    first, second = (post_as(client, api_settings, "reviewer-2", body) for _ in range(2))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


def test_a_review_of_an_unknown_card_is_404(client, auth, card) -> None:
    a, b = (s["uuid"] for s in card["suggestions"])
    response = post(client, auth, review(str(uuid.uuid4()), a, b))
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "make",
    [
        lambda c, a, b: review(c, a, str(uuid.uuid4())),  # suggestion of another card
        lambda c, a, b: review(c, a, a),  # the same suggestion twice
        lambda c, a, b: review(c, a, b, choice=None, ratings=None),  # judges nothing
        lambda c, a, b: review(c, a, b, choice="maybe"),
        lambda c, a, b: review(c, a, b, ratings=(0, 6)),
        lambda c, a, b: review(c, a, b, correction="999999"),  # not a formulary drug
        lambda c, a, b: review(c, a, b) | {"questionnaire": "https://example.org/Questionnaire/other"},
        lambda c, a, b: review(c, a, b) | {"status": "in-progress"},
        lambda c, a, b: (
            review(c, a, b) | {"item": [{"linkId": "name", "answer": [{"valueString": COMMENT}]}]}
        ),
        lambda c, a, b: review(c, a, b) | {"item": "not a list"},
        lambda c, a, b: {"resourceType": "Patient", "name": [{"family": "Okafor"}]},
        lambda c, a, b: review(c, a, b) | {"Maria Okafor": "MRN1234567"},
    ],
    ids=[
        "foreign-suggestion",
        "same-suggestion",
        "no-judgment",
        "bad-choice",
        "bad-rating",
        "bad-correction",
        "other-questionnaire",
        "in-progress",
        "unknown-item",
        "invalid-fhir",
        "not-a-response",
        "unknown-field-named-like-phi",
    ],
)
def test_invalid_reviews_are_422_and_never_echo_their_content(client, auth, card, make) -> None:
    a, b = (s["uuid"] for s in card["suggestions"])
    response = post(client, auth, make(card["uuid"], a, b))
    assert response.status_code == 422, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "Okafor" not in response.text and "MRN" not in response.text


def test_exported_judgments_match_what_was_posted(
    client, auth, card, world: World, api_settings: Settings
) -> None:
    a, b = card["suggestions"]
    statin = world.drugs["atorvastatin"]
    posted = post_as(
        client,
        api_settings,
        "reviewer-3",
        review(card["uuid"], b["uuid"], a["uuid"], choice="b", ratings=(1, 5), correction=statin.rxnorm),
    )
    assert posted.status_code == 201
    # reviewer-1's review: stored by the first test already (200), or now when run alone (201)
    assert post_as(
        client, api_settings, "reviewer-1", review(card["uuid"], a["uuid"], b["uuid"])
    ).status_code in (
        200,
        201,
    )
    with deployment_store(api_settings)() as session:
        judgments = export_judgments(session)
        assert snapshot_sha256(export_judgments(session)) == snapshot_sha256(judgments)  # deterministic
    mine = [j for j in judgments if j.card == card["uuid"] and j.kind != "cds"]
    pairwise = [j for j in mine if j.kind == "pairwise" and j.preferred == 1]
    (rating,) = [j for j in mine if j.kind == "rating" and j.ratings == (1, 5)]
    (correction,) = [j for j in mine if j.kind == "correction"]
    assert len(pairwise) == 1 and pairwise[0].responses == rating.responses == correction.responses
    assert correction.correction == render_response(world, "atorvastatin")
    first = next(j for j in mine if j.kind == "pairwise" and j.preferred == 0)
    assert first.responses == tuple(reversed(pairwise[0].responses))
    assert pairwise[0].prompt.startswith("sex ") and len(pairwise[0].clinician) == 64
