"""Who may call what: every route of the app × every role, against the expected-access table below.

| route                                      | clinician | cds-client | ml-engineer | compliance | deidentifier | no token |
|--------------------------------------------|-----------|------------|-------------|------------|--------------|----------|
| GET  /healthz, /readyz, /openapi.json      | 200       | 200        | 200         | 200        | 200          | 200      |
| GET  /cds-services                         | 200       | 200        | 200         | 200        | 200          | 401      |
| POST /cds-services/{id}                    | 403       | 200        | 403         | 403        | 403          | 401      |
| POST /cds-services/{id}/feedback           | 403       | 200        | 403         | 403        | 403          | 401      |
| GET  /fhir/metadata, /fhir/Questionnaire/x | 200       | 200        | 200         | 200        | 200          | 401      |
| POST /fhir/QuestionnaireResponse           | 201       | 403        | 403         | 403        | 403          | 401      |
| GET  /fhir/QuestionnaireResponse/{id}      | 200       | 403        | 200         | 200        | 403          | 401      |
| POST /fhir/$deidentify                     | 403       | 403        | 403         | 403        | 200          | 401      |
| POST /fhir/$de-identify (ballot name)      | 403       | 403        | 403         | 403        | 200          | 401      |
| GET  /model-card                           | 200       | 200        | 200         | 200        | 200          | 401      |
| GET  /fhir/Provenance/{id} (a card's)      | 403       | 200        | 403         | 200        | 403          | 401      |
| GET  /fhir/Provenance?target=…             | 403       | 200        | 403         | 200        | 403          | 401      |
| GET  /fhir/Device/{id}                     | 200       | 200        | 200         | 200        | 200          | 401      |
| GET  /fhir/DocumentReference/{id}          | 404 ‡     | 404 ‡      | 404 ‡       | 404 ‡      | 404 ‡        | 401      |
| GET  /review/login, /review/static/…       | 200       | 200        | 200         | 200        | 200          | 200      |
| POST /review/session (token in the body)   | 200       | 403        | 403         | 200        | 403          | 401      |
| GET  /review                               | 200       | 403        | 403         | 403        | 403          | 401      |
| POST /review/submit                        | 201       | 403        | 403         | 403        | 403          | 401      |
| POST /review/logout                        | 204       | 204        | 204         | 204        | 204          | 204      |
| GET  /review/admin/agreement               | 403       | 403        | 403         | 200        | 403          | 401      |
| GET  /compliance                           | 403       | 403        | 403         | 200        | 403          | 401      |
| GET  /compliance/report/{run_id}           | 403       | 403        | 403         | 404 *      | 403          | 401      |
| POST /compliance/versions/{v}/approve      | 403       | 403        | 403         | 404 *      | 403          | 401      |
| POST /compliance/versions/{v}/promote      | 403       | 403        | 403         | 404 *      | 403          | 401      |
| POST /compliance/rollback                  | 403       | 403        | 403         | 409 †      | 403          | 401      |
| POST /compliance/quarantine (release)      | 403       | 403        | 403         | 409 †      | 403          | 401      |

* past the role check, the test store has no pipeline run to report on (and no registered version).
† past the role check, refused by the governance rules: nothing is in production to roll back, and
  nobody is quarantined to release (so the matrix changes nothing in the shared store).
‡ past the token check, the test server's policy is no registered version, so it has no model card.

Routes are enumerated from the app itself, so a new route without a row here fails
`test_every_route_of_the_app_has_a_row_in_the_matrix`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, routing
from starlette.routing import Mount

from clinrlhf.settings import Settings
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.api.app import create_app

ROLES: tuple[str | None, ...] = ("clinician", "cds-client", "ml-engineer", "compliance", "deidentifier", None)
SERVICE = "/cds-services/clinrlhf-treatment"
QUESTIONNAIRE = "https://clinrlhf.dev/fhir/Questionnaire/clinrlhf-review"


def everyone(status: int) -> dict[str | None, int]:
    return dict.fromkeys(ROLES, status)


def only(allowed: set[str], status: int = 200) -> dict[str | None, int]:
    """`status` for the allowed roles, 403 for other tokens, 401 without one."""
    return {role: (status if role in allowed else 403) if role else 401 for role in ROLES}


ANY_TOKEN = only({"clinician", "cds-client", "ml-engineer", "compliance", "deidentifier"})
MATRIX: dict[tuple[str, str], dict[str | None, int]] = {
    ("GET", "/healthz"): everyone(200),
    ("GET", "/readyz"): everyone(200),
    ("GET", "/openapi.json"): everyone(200),
    ("GET", "/cds-services"): ANY_TOKEN,
    ("POST", "/cds-services/{service_id}"): only({"cds-client"}),
    ("POST", "/cds-services/{service_id}/feedback"): only({"cds-client"}),
    ("GET", "/fhir/metadata"): ANY_TOKEN,
    ("GET", "/fhir/Questionnaire/{questionnaire_id}"): ANY_TOKEN,
    ("POST", "/fhir/QuestionnaireResponse"): only({"clinician"}, 201),
    ("GET", "/fhir/QuestionnaireResponse/{review_id}"): only({"clinician", "ml-engineer", "compliance"}),
    ("POST", "/fhir/$deidentify"): only({"deidentifier"}),
    ("POST", "/fhir/$de-identify"): only({"deidentifier"}),
    ("GET", "/model-card"): ANY_TOKEN,
    ("GET", "/fhir/Provenance/{provenance_id}"): only({"cds-client", "compliance"}),
    ("GET", "/fhir/Provenance"): only({"cds-client", "compliance"}),
    ("GET", "/fhir/Device/{device_id}"): ANY_TOKEN,
    ("GET", "/fhir/DocumentReference/{document_id}"): {r: 404 if r else 401 for r in ROLES},  # no card
    ("GET", "/review/login"): everyone(200),
    ("GET", "/review/static"): everyone(200),
    ("POST", "/review/session"): only({"clinician", "compliance"}),  # an officer, for the agreement view
    ("GET", "/review"): only({"clinician"}),
    ("POST", "/review/submit"): only({"clinician"}, 201),
    ("POST", "/review/logout"): everyone(204),
    ("GET", "/review/admin/agreement"): only({"compliance"}),
    ("GET", "/compliance"): only({"compliance"}),
    ("GET", "/compliance/report/{run_id}"): only({"compliance"}, 404),  # no run in the test store
    ("POST", "/compliance/versions/{version}/approve"): only({"compliance"}, 404),  # no version
    ("POST", "/compliance/versions/{version}/promote"): only({"compliance"}, 404),
    ("POST", "/compliance/rollback"): only({"compliance"}, 409),  # nothing in production
    ("POST", "/compliance/quarantine"): only({"compliance"}, 409),  # releases someone not quarantined
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route, included routers flattened (HEAD is GET's twin)."""
    found = set()
    contexts: Any = (
        routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    )
    for route in contexts:
        if isinstance(getattr(route, "original_route", route), Mount) or isinstance(route, Mount):
            found.add(("GET", route.path))
            continue
        found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return found


def test_every_route_of_the_app_has_a_row_in_the_matrix(api_settings: Settings) -> None:
    assert app_routes(create_app(api_settings)) == set(MATRIX)


def review(card: str, a: str, b: str, **answers: Any) -> dict[str, Any]:
    items = [
        {"linkId": k, "answer": [{"valueString": v}]}
        for k, v in (("card", card), ("suggestion-a", a), ("suggestion-b", b))
    ]
    items += [{"linkId": "choice", "answer": [{"valueCoding": {"code": answers.get("choice", "a")}}]}]
    return {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": QUESTIONNAIRE,
        "item": items,
    }


@pytest.fixture(scope="module")
def fixtures(server, tokens: dict[str, str], patient_view, world: World) -> dict[str, Any]:
    """Cards (one per write that succeeds, so no write meets another's row) and a stored review."""
    cds = {"Authorization": f"Bearer {tokens['cds-client']}"}
    doctor = {"Authorization": f"Bearer {tokens['clinician']}"}
    cards: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for patient in generate_patients(world, 40, seed=88):
            body = patient_view(patient.bundle)
            response = client.post(SERVICE, json=body, headers=cds)
            cards += [c for c in response.json()["cards"] if len(c["suggestions"]) == 2]
            if len(cards) >= 4:
                break
        assert len(cards) >= 4
        pairs = [(c["uuid"], *(s["uuid"] for s in c["suggestions"])) for c in cards]
        stored = client.post("/fhir/QuestionnaireResponse", json=review(*pairs[0]), headers=doctor)
        assert stored.status_code == 201
    return {
        "patient_view": body,
        "pairs": pairs,
        "review_id": stored.json()["id"],
        "patient_bundle": patient.bundle,
        # The Device of the model that drafted the cards, as their drafts name it.
        "device": cards[0]["suggestions"][0]["actions"][0]["resource"]["meta"]["source"].rsplit("/", 1)[1],
    }


def send(
    method: str, path: str, fixtures: dict[str, Any]
) -> Callable[[httpx.Client, dict[str, str]], httpx.Response]:
    """How to call one route well: a request that succeeds for a role the route admits."""
    pairs = fixtures["pairs"]
    feedback = {"card": pairs[1][0], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"}
    page_review = dict(zip(("card", "suggestion_a", "suggestion_b"), pairs[3], strict=True)) | {"choice": "b"}
    calls: dict[tuple[str, str], Callable[[httpx.Client, dict[str, str]], httpx.Response]] = {
        ("GET", "/healthz"): lambda c, h: c.get("/healthz", headers=h),
        ("GET", "/readyz"): lambda c, h: c.get("/readyz", headers=h),
        ("GET", "/openapi.json"): lambda c, h: c.get("/openapi.json", headers=h),
        ("GET", "/cds-services"): lambda c, h: c.get("/cds-services", headers=h),
        ("POST", "/cds-services/{service_id}"): lambda c, h: c.post(
            SERVICE, json=fixtures["patient_view"], headers=h
        ),
        ("POST", "/cds-services/{service_id}/feedback"): lambda c, h: c.post(
            f"{SERVICE}/feedback", json={"feedback": [feedback]}, headers=h
        ),
        ("GET", "/fhir/metadata"): lambda c, h: c.get("/fhir/metadata", headers=h),
        ("GET", "/fhir/Questionnaire/{questionnaire_id}"): lambda c, h: c.get(
            "/fhir/Questionnaire/clinrlhf-review", headers=h
        ),
        ("POST", "/fhir/QuestionnaireResponse"): lambda c, h: c.post(
            "/fhir/QuestionnaireResponse", json=review(*pairs[2], choice="b"), headers=h
        ),
        ("GET", "/fhir/QuestionnaireResponse/{review_id}"): lambda c, h: c.get(
            f"/fhir/QuestionnaireResponse/{fixtures['review_id']}", headers=h
        ),
        ("POST", "/fhir/$deidentify"): lambda c, h: c.post(
            "/fhir/$deidentify", json=fixtures["patient_bundle"], headers=h
        ),
        ("POST", "/fhir/$de-identify"): lambda c, h: c.post(
            "/fhir/$de-identify", json=fixtures["patient_bundle"], headers=h
        ),
        ("GET", "/model-card"): lambda c, h: c.get("/model-card", headers=h),
        ("GET", "/fhir/Provenance/{provenance_id}"): lambda c, h: c.get(
            f"/fhir/Provenance/{pairs[0][0]}", headers=h
        ),
        ("GET", "/fhir/Provenance"): lambda c, h: c.get(
            f"/fhir/Provenance?target=MedicationRequest/{pairs[0][1]}", headers=h
        ),
        ("GET", "/fhir/Device/{device_id}"): lambda c, h: c.get(
            f"/fhir/Device/{fixtures['device']}", headers=h
        ),
        ("GET", "/fhir/DocumentReference/{document_id}"): lambda c, h: c.get(
            f"/fhir/DocumentReference/{fixtures['device']}", headers=h
        ),
        ("GET", "/review/login"): lambda c, h: c.get("/review/login", headers=h),
        ("GET", "/review/static"): lambda c, h: c.get("/review/static/review.js", headers=h),
        ("POST", "/review/session"): log_in,
        ("GET", "/review"): lambda c, h: c.get("/review", headers=h),
        ("POST", "/review/submit"): lambda c, h: c.post("/review/submit", json=page_review, headers=h),
        ("POST", "/review/logout"): lambda c, h: c.post("/review/logout", json={}, headers=h),
        ("GET", "/review/admin/agreement"): lambda c, h: c.get("/review/admin/agreement", headers=h),
        ("GET", "/compliance"): lambda c, h: c.get("/compliance", headers=h),
        ("GET", "/compliance/report/{run_id}"): lambda c, h: c.get(
            f"/compliance/report/{'0' * 32}", headers=h
        ),
        ("POST", "/compliance/versions/{version}/approve"): lambda c, h: c.post(
            "/compliance/versions/1/approve", json={}, headers=h
        ),
        ("POST", "/compliance/versions/{version}/promote"): lambda c, h: c.post(
            "/compliance/versions/1/promote", json={}, headers=h
        ),
        ("POST", "/compliance/rollback"): lambda c, h: c.post("/compliance/rollback", json={}, headers=h),
        ("POST", "/compliance/quarantine"): lambda c, h: c.post(
            "/compliance/quarantine",
            json={"clinician": "nobody-quarantined", "reason": "role matrix", "release": True},
            headers=h,
        ),
    }
    return calls[(method, path)]


def log_in(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """The login form's request: the role's token in the body, with the form's CSRF nonce."""
    nonce = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/review/login").text)
    assert nonce
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    body = {"token": token} if token else {}
    return client.post("/review/session", json=body, headers={"X-CSRF-Token": nonce.group(1)})


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [(m, p, r) for (m, p) in MATRIX for r in ROLES],
    ids=[f"{m} {p} as {r or 'no token'}" for (m, p) in MATRIX for r in ROLES],
)
def test_each_role_gets_the_expected_status(
    server, tokens: dict[str, str], fixtures: dict[str, Any], method: str, path: str, role: str | None
) -> None:
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = send(method, path, fixtures)(client, headers)
    expected = MATRIX[(method, path)][role]
    assert response.status_code == expected, response.text[:300]
    if expected >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
