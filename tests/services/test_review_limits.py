"""The red-team's floods of `POST /fhir/QuestionnaireResponse`, against a real server: one clinician
posting 21 reviews of one card, and six clinicians racing to review a card whose overlap limit is 3.
The FHIR path keeps the review page's rules (issue 20, finding 2)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import consistent_read, deployment_store
from clinrlhf.store.models import Review
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

QUESTIONNAIRE = "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review"
OVERLAP = 3


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path) -> Settings:
    home = tmp_path_factory.mktemp("limits")
    return Settings(home=home, policy=policy_dir, database_url=None, review_overlap=OVERLAP)


@pytest.fixture(scope="module")
def live(settings: Settings, live_server) -> Iterator[str]:
    with live_server(settings) as server:
        yield server.url


def new_card(url: str, settings: Settings, patient_view, world: World, seed: int) -> tuple[str, str, str]:
    cds = {"Authorization": f"Bearer {mint_token(settings, role='cds-client', sub='ehr')}"}
    with httpx.Client(base_url=url, timeout=60) as client:
        for patient in generate_patients(world, 20, seed=seed):
            response = client.post(
                "/cds-services/clinrlhf-treatment", json=patient_view(patient.bundle), headers=cds
            )
            for card in response.json()["cards"]:
                if len(card["suggestions"]) == 2:
                    a, b = (s["uuid"] for s in card["suggestions"])
                    return card["uuid"], a, b
    raise AssertionError("no two-suggestion card")


def review(card: tuple[str, str, str], rating_a: int, rating_b: int) -> dict:
    ids = dict(zip(("card", "suggestion-a", "suggestion-b"), card, strict=True))
    items = [{"linkId": k, "answer": [{"valueString": v}]} for k, v in ids.items()]
    items += [
        {"linkId": "rating-a", "answer": [{"valueInteger": rating_a}]},
        {"linkId": "rating-b", "answer": [{"valueInteger": rating_b}]},
    ]
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": QUESTIONNAIRE,
        "item": items,
    }


def post_all(url: str, posts: list[tuple[str, dict]]) -> list[httpx.Response]:
    def post(item: tuple[str, dict]) -> httpx.Response:
        token, body = item
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
        with httpx.Client(base_url=url, timeout=60) as client:
            return client.post("/fhir/QuestionnaireResponse", json=body, headers=headers)

    with ThreadPoolExecutor(len(posts)) as pool:
        return list(pool.map(post, posts))


def stored(settings: Settings, card: str) -> list[str]:
    with consistent_read(deployment_store(settings)) as session:
        return list(session.scalars(select(Review.clinician).where(Review.card_id == card)))


def test_one_clinician_posting_21_reviews_of_one_card_stores_one(live, settings, patient_view, world) -> None:
    card = new_card(live, settings, patient_view, world, seed=2001)
    token = mint_token(settings, role="clinician", sub="dr-flood")
    bodies = [review(card, a, b) for a in range(1, 6) for b in range(1, 6)][:21]
    responses = post_all(live, [(token, body) for body in bodies])
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 20, codes
    assert all(r.json()["resourceType"] == "OperationOutcome" for r in responses if r.status_code == 409)
    assert len(stored(settings, card[0])) == 1
    again = post_all(live, [(token, bodies[[r.status_code for r in responses].index(201)])])[0]
    assert again.status_code == 200  # re-sending the stored review is not an error: it is stored once


def test_six_clinicians_racing_for_a_card_with_overlap_3_store_three(
    live, settings, patient_view, world
) -> None:
    card = new_card(live, settings, patient_view, world, seed=2002)
    posts = [
        (mint_token(settings, role="clinician", sub=f"dr-race-{i}"), review(card, 4, 2)) for i in range(6)
    ]
    codes = sorted(r.status_code for r in post_all(live, posts))
    assert codes == [201] * OVERLAP + [409] * (6 - OVERLAP), codes
    assert len(set(stored(settings, card[0]))) == OVERLAP == len(stored(settings, card[0]))
