"""Every length the API accepts fits the column it is stored in, and malformed FHIR that trips the
FHIR library is a 4xx OperationOutcome, never a 500 (issue 20, finding 9)."""

from __future__ import annotations

import os
import types
import typing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import Column, text

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.store import make_engine
from clinrlhf.store.models import Feedback, Review
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.cds.schemas import CDSRequest, FeedbackRequest
from services.web.submit import PageReview

# Request fields whose value is stored as sent, and the column that holds it.
STORED: dict[str, Column[Any]] = {
    "FeedbackItem.card": Feedback.__table__.c.card_id,
    "AcceptedSuggestion.id": Feedback.__table__.c.accepted_suggestion_id,
    "Coding.system": Feedback.__table__.c.override_reason_system,
    "Coding.code": Feedback.__table__.c.override_reason_code,
    "PageReview.card": Review.__table__.c.card_id,
    "PageReview.suggestion_a": Review.__table__.c.suggestion_a_id,
    "PageReview.suggestion_b": Review.__table__.c.suggestion_b_id,
}
# Request fields that never reach a column as sent, and why.
NOT_STORED = {
    "Coding.display": "an override reason is stored as its system and code only",
    "PatientViewContext.userId": "stored as a pseudonym",
    "PatientViewContext.patientId": "de-identified, stored as a pseudonym",
    "PatientViewContext.encounterId": "not kept",
    "CDSRequest.hook": "checked against the one hook served",
    "CDSRequest.hookInstance": "seeds sampling only",
    "CDSRequest.fhirServer": "fetched from, never stored",
    "FHIRAuthorization.scope": "compared with the service's needs, never stored",
    "FHIRAuthorization.patient": "compared with context.patientId, never stored",
    "PageReview.correction": "an RxNorm code mapped to a formulary drug key",
    "PageReview.comment": "scrubbed, then kept only as 'a comment was given'",
}


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def string_limits(model: type[BaseModel], seen: set[type] | None = None) -> dict[str, int]:
    """'Model.field' -> max_length, for every string field of `model` and the models inside it."""
    seen = seen if seen is not None else set()
    if model in seen:
        return {}
    seen.add(model)
    limits: dict[str, int] = {}
    for name, info in model.model_fields.items():
        length = next((m.max_length for m in info.metadata if getattr(m, "max_length", None)), None)
        if length is not None and str in (typing.get_args(info.annotation) or (info.annotation,)):
            limits[f"{model.__name__}.{name}"] = length
        for inner in _models(info.annotation):
            limits |= string_limits(inner, seen)
    return limits


REQUEST_LIMITS = string_limits(FeedbackRequest) | string_limits(CDSRequest) | string_limits(PageReview)


def test_every_limited_request_string_is_either_stored_or_known_not_to_be() -> None:
    unclassified = set(REQUEST_LIMITS) - set(STORED) - set(NOT_STORED)
    assert not unclassified, f"classify these request fields in this test: {sorted(unclassified)}"
    assert set(STORED) <= set(REQUEST_LIMITS), "a stored field has no max_length"


@pytest.mark.parametrize("field", sorted(STORED))
def test_the_api_limit_of_a_stored_field_fits_its_column(field: str) -> None:
    column = STORED[field]
    assert REQUEST_LIMITS[field] <= column.type.length, (  # type: ignore[attr-defined]
        f"{field} accepts {REQUEST_LIMITS[field]} characters, {column} holds {column.type.length}"  # type: ignore[attr-defined]
    )


QUESTIONNAIRE = "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review"


@pytest.mark.parametrize(
    "contained",
    [
        [{"resourceType": "Foo"}],
        [{"resourceType": "Foo", "id": "x"}],
        [{"resourceType": 7}],
        [{"resourceType": None}],
        [{}],
        ["Patient"],
    ],
)
def test_a_questionnaire_response_containing_an_unknown_resource_is_a_4xx(
    client: httpx.Client, auth, contained: list
) -> None:
    body = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": QUESTIONNAIRE,
        "contained": contained,
        "item": [{"linkId": "card", "answer": [{"valueString": "c"}]}],
    }
    response = client.post(
        "/fhir/QuestionnaireResponse", json=body, headers=auth("clinician", "application/fhir+json")
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


POSTGRES_URL = os.environ.get("CLINRLHF_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("set CLINRLHF_TEST_POSTGRES_URL to run against PostgreSQL")
    schema = f"limits_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("length", [65, 100, 128])
def test_an_override_code_longer_than_its_column_is_a_4xx_on_postgresql(
    tmp_path: Path, policy_dir: Path, postgres_url: str, patient_view, world: World, live_server, length: int
) -> None:
    """PostgreSQL, unlike SQLite, refuses a string longer than its column: a 65-128 character code
    (the API once took 128, the column holds 64) was a 500 there."""
    settings = Settings(home=tmp_path, policy=policy_dir, database_url=postgres_url)
    cds = {"Authorization": f"Bearer {mint_token(settings, role='cds-client', sub='ehr')}"}
    with live_server(settings) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        card = next(
            cards[0]
            for patient in generate_patients(world, 20, seed=909)
            if (
                cards := client.post(
                    "/cds-services/clinrlhf-treatment", json=patient_view(patient.bundle), headers=cds
                ).json()["cards"]
            )
        )
        reason = {"system": card["overrideReasons"][0]["system"], "code": "c" * length}
        entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}
        body = {"feedback": [entry | {"overrideReason": {"reason": reason}}]}
        response = client.post("/cds-services/clinrlhf-treatment/feedback", json=body, headers=cds)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("where", ["patient", "observation"])
def test_a_prefetch_containing_an_unknown_resource_is_a_4xx(
    client: httpx.Client, auth, patient_view, world: World, where: str
) -> None:
    request = patient_view(generate_patients(world, 1, seed=606)[0].bundle)
    prefetch = request["prefetch"]
    target = prefetch["patient"] if where == "patient" else prefetch["observations"]["entry"][0]["resource"]
    target["contained"] = [{"resourceType": "Foo", "id": "x"}]
    response = client.post("/cds-services/clinrlhf-treatment", json=request, headers=auth("cds-client"))
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
