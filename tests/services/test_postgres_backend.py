"""The same API on PostgreSQL (psycopg 3): a CDS call, its feedback and a review, end to end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import counts, deployment_store, make_engine, verify_chain
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

POSTGRES_URL = os.environ.get("CLINRLHF_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason="set CLINRLHF_TEST_POSTGRES_URL to run against PostgreSQL"),
]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    assert POSTGRES_URL
    schema = f"api_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_the_api_stores_feedback_and_reviews_in_postgres(
    tmp_path: Path, policy_dir: Path, postgres_url: str, patient_view, world: World, live_server
) -> None:
    settings = Settings(home=tmp_path, policy=policy_dir, database_url=postgres_url)
    cds = {"Authorization": f"Bearer {mint_token(settings, role='cds-client', sub='ehr')}"}
    doc = {"Authorization": f"Bearer {mint_token(settings, role='clinician', sub='dr-1')}"}
    with live_server(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        card = None
        for patient in generate_patients(world, 20, seed=71):
            cards = client.post(
                "/cds-services/clinrlhf-treatment", json=patient_view(patient.bundle), headers=cds
            ).json()["cards"]
            card = next((c for c in cards if len(c["suggestions"]) == 2), None)
            if card:
                break
        assert card is not None
        entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}
        url = "/cds-services/clinrlhf-treatment/feedback"
        assert client.post(url, json={"feedback": [entry]}, headers=cds).json() == {
            "stored": 1,
            "duplicates": 0,
        }
        assert client.post(url, json={"feedback": [entry]}, headers=cds).json() == {
            "stored": 0,
            "duplicates": 1,
        }
        a, b = (s["uuid"] for s in card["suggestions"])
        items = [
            {"linkId": k, "answer": [{"valueString": v}]}
            for k, v in (("card", card["uuid"]), ("suggestion-a", a), ("suggestion-b", b))
        ]
        review = {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "questionnaire": "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review",
            "item": [*items, {"linkId": "rating-a", "answer": [{"valueInteger": 3}]}],
        }
        assert client.post("/fhir/QuestionnaireResponse", json=review, headers=doc).status_code == 201
    with deployment_store(settings)() as session:
        stored = counts(session)
        assert verify_chain(session) is None
    assert (stored["feedback"], stored["reviews"]) == (1, 1) and stored["cases"] >= 1
