"""The API's outside: health, discovery, metadata, who may call what, and how errors look."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire

from clinrlhf.identity import dev_signing_key, mint_token

SERVICE = "/cds-services/clinrlhf-treatment"
SECRET_TEXT = "Maria Okafor MRN1234567 555-123-4567"


def assert_outcome(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    OperationOutcome.model_validate(body)
    assert body["issue"][0]["severity"] == "error"
    for fragment in SECRET_TEXT.split():
        assert fragment not in response.text
    return body


def test_healthz_needs_no_token(client: httpx.Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_discovery_lists_the_patient_view_service_with_its_prefetch(client: httpx.Client, auth) -> None:
    response = client.get("/cds-services", headers=auth("cds-client"))
    assert response.status_code == 200
    (service,) = response.json()["services"]
    assert service["id"] == "clinrlhf-treatment" and service["hook"] == "patient-view"
    assert service["title"] and service["description"]
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert (
        service["prefetch"]["conditions"] == "Condition?patient={{context.patientId}}&clinical-status=active"
    )
    assert "http://loinc.org|33914-3" in service["prefetch"]["observations"]
    assert (
        service["prefetch"]["medications"] == "MedicationRequest?patient={{context.patientId}}&status=active"
    )
    assert service["prefetch"]["allergies"] == "AllergyIntolerance?patient={{context.patientId}}"


def test_metadata_is_a_valid_capability_statement(client: httpx.Client, auth) -> None:
    response = client.get("/fhir/metadata", headers=auth("clinician"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    resources = {r.type: {i.code for i in r.interaction} for r in statement.rest[0].resource}
    assert resources["QuestionnaireResponse"] >= {"create"}
    assert resources["Questionnaire"] >= {"read"}


def test_review_questionnaire_has_the_expected_items(client: httpx.Client, auth) -> None:
    response = client.get("/fhir/Questionnaire/clinrlhf-review", headers=auth("clinician"))
    assert response.status_code == 200
    questionnaire = Questionnaire.model_validate(response.json())
    assert [i.linkId for i in questionnaire.item] == [
        "card",
        "suggestion-a",
        "suggestion-b",
        "choice",
        "rating-a",
        "rating-b",
        "comment",
        "correction",
    ]
    assert_outcome(client.get("/fhir/Questionnaire/other", headers=auth("clinician")), 404)


def test_openapi_document_is_served(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert "/cds-services/{service_id}" in document["paths"]
    assert "CDSRequest" not in str(document["paths"]["/healthz"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cds-services"),
        ("GET", "/fhir/metadata"),
        ("POST", SERVICE),
        ("POST", "/fhir/QuestionnaireResponse"),
        ("GET", "/model-card"),
    ],
)
def test_every_route_but_healthz_needs_a_token(client: httpx.Client, method: str, path: str) -> None:
    response = client.request(method, path, json={})
    body = assert_outcome(response, 401)
    assert body["issue"][0]["code"] == "login"
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_garbage_or_foreign_token_is_401(client: httpx.Client, api_settings) -> None:
    assert_outcome(client.get("/cds-services", headers={"Authorization": "Bearer not.a.jwt"}), 401)
    hs256 = jwt.encode(
        {
            "iss": "clinrlhf-dev",
            "aud": "clinrlhf",
            "exp": time.time() + 60,
            "iat": time.time(),
            "jti": "x",
            "sub": "x",
            "role": "compliance",
        },
        "k" * 32,
        algorithm="HS256",
    )
    assert_outcome(client.get("/cds-services", headers={"Authorization": f"Bearer {hs256}"}), 401)


def test_an_expired_token_is_401(client: httpx.Client, api_settings) -> None:
    claims = jwt.decode(
        mint_token(api_settings, role="clinician", sub="late"), options={"verify_signature": False}
    )
    key = dev_signing_key(api_settings)
    expired = jwt.encode(claims | {"exp": int(time.time()) - 120}, key, algorithm="ES256")
    body = assert_outcome(client.get("/cds-services", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert "expired" in body["issue"][0]["diagnostics"]


def test_the_wrong_role_is_403(client: httpx.Client, auth) -> None:
    body = assert_outcome(client.post(SERVICE, json={}, headers=auth("clinician")), 403)
    assert body["issue"][0]["code"] == "forbidden"
    assert_outcome(client.post("/fhir/QuestionnaireResponse", json={}, headers=auth("cds-client")), 403)
    assert_outcome(client.post(f"{SERVICE}/feedback", json={}, headers=auth("ml-engineer")), 403)
    assert_outcome(client.get("/fhir/QuestionnaireResponse/x", headers=auth("cds-client")), 403)


def test_malformed_json_is_400_and_not_echoed(client: httpx.Client, auth) -> None:
    body = b'{"hook": "patient-view", "name": "' + SECRET_TEXT.encode() + b'"'
    assert_outcome(client.post(SERVICE, content=body, headers=auth("cds-client", "application/json")), 400)
    assert_outcome(
        client.post(
            "/fhir/QuestionnaireResponse", content=body, headers=auth("clinician", "application/fhir+json")
        ),
        400,
    )


def test_a_non_json_content_type_is_415(client: httpx.Client, auth) -> None:
    response = client.post(SERVICE, content=b"{}", headers=auth("cds-client", "text/plain"))
    assert_outcome(response, 415)
    assert_outcome(client.post(SERVICE, content=b"{}", headers=auth("cds-client")), 415)  # no content type


def test_an_oversized_body_is_413_with_or_without_content_length(
    client: httpx.Client, auth, api_settings
) -> None:
    big = b'{"x": "' + b"a" * (api_settings.max_body_bytes + 10) + b'"}'
    assert_outcome(client.post(SERVICE, content=big, headers=auth("cds-client", "application/json")), 413)

    def chunks():
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    response = client.post(SERVICE, content=chunks(), headers=auth("cds-client", "application/json"))
    assert "content-length" not in response.request.headers
    assert_outcome(response, 413)


def test_missing_fields_are_422_naming_the_field_not_the_value(client: httpx.Client, auth) -> None:
    request = {"hook": "patient-view", "hookInstance": "h", "context": {"userId": SECRET_TEXT}}
    body = assert_outcome(client.post(SERVICE, json=request, headers=auth("cds-client")), 422)
    assert "context.patientId" in body["issue"][0]["diagnostics"]
    assert_outcome(client.post(SERVICE, json=[1, 2], headers=auth("cds-client")), 422)
    assert_outcome(
        client.post(SERVICE, json={"hook": 5, "context": SECRET_TEXT}, headers=auth("cds-client")), 422
    )


def test_unknown_routes_and_methods_are_operation_outcomes(client: httpx.Client, auth) -> None:
    assert_outcome(client.get("/nowhere", headers=auth("clinician")), 404)
    assert_outcome(client.delete("/healthz"), 405)
    assert_outcome(client.post("/cds-services/other-service", json={}, headers=auth("cds-client")), 404)


def test_model_card_names_the_served_model(client: httpx.Client, auth, policy_dir) -> None:
    card = client.get("/model-card", headers=auth("ml-engineer")).json()
    assert card["model_version"].startswith(policy_dir.name)
    assert card["world"]["name"] == "clinrlhf-outpatient-world"
