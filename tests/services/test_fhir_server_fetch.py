"""Without prefetch, the service reads the patient from the client's FHIR server (a real one on
localhost here), with the client's access token, and still de-identifies before anything is kept."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request

from clinrlhf.settings import Settings
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

ACCESS_TOKEN = "ehr-issued-access-token"
_TYPES = {
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "AllergyIntolerance": "patient",
}


def fake_fhir_server(resources: list[dict[str, Any]], seen: list[str]) -> FastAPI:
    app = FastAPI()
    patient = resources[0]

    def check(authorization: str | None) -> None:
        if authorization != f"Bearer {ACCESS_TOKEN}":
            raise HTTPException(401)

    @app.get("/fhir/Patient/{pid}")
    def read_patient(pid: str, authorization: str | None = Header(default=None)) -> dict:
        check(authorization)
        seen.append(f"Patient/{pid}")
        if pid != patient["id"]:
            raise HTTPException(404)
        return patient

    @app.get("/fhir/{kind}")
    def search(
        kind: str,
        request: Request,
        patient: str,
        page: int = 0,
        authorization: str | None = Header(default=None),
    ) -> dict:
        check(authorization)
        seen.append(f"{kind}?patient={patient}")
        matches = [r for r in resources if r["resourceType"] == kind]
        # Two entries per page, so every search with more than two results is paged.
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in matches[page * 2 : page * 2 + 2]],
        }
        if len(matches) > page * 2 + 2:
            bundle["link"] = [
                {"relation": "next", "url": str(request.url.include_query_params(page=page + 1))}
            ]
        return bundle

    return app


@pytest.fixture(scope="module")
def patient(world: World):  # noqa: ANN201
    def conditions(p) -> int:  # noqa: ANN001
        return sum(e["resource"]["resourceType"] == "Condition" for e in p.bundle["entry"])

    return next(p for p in generate_patients(world, 60, seed=61) if conditions(p) >= 3)


@pytest.fixture(scope="module")
def fhir_server(patient) -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    resources = [e["resource"] for e in patient.bundle["entry"]]
    server = uvicorn.Server(
        uvicorn.Config(fake_fhir_server(resources, seen), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/fhir", seen
    server.should_exit = True
    thread.join(timeout=10)


def request_without_prefetch(patient, fhir_base: str, token: str = ACCESS_TOKEN) -> dict[str, Any]:
    pid = patient.bundle["entry"][0]["resource"]["id"]
    return {
        "hook": "patient-view",
        "hookInstance": "fetch-test",
        "fhirServer": fhir_base,
        "fhirAuthorization": {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "clinrlhf",
        },
        "context": {"userId": "Practitioner/dr-3", "patientId": pid},
    }


def test_missing_prefetch_is_fetched_from_the_fhir_server(
    client: httpx.Client, auth, patient, fhir_server, api_settings: Settings
) -> None:
    base, seen = fhir_server
    seen.clear()
    response = client.post(
        "/cds-services/clinrlhf-treatment",
        json=request_without_prefetch(patient, base),
        headers=auth("cds-client", "application/json"),
    )
    assert response.status_code == 200, response.text
    assert {s.split("?")[0] for s in seen} >= {
        f"Patient/{patient.bundle['entry'][0]['resource']['id']}",
        "Condition",
        "Observation",
        "MedicationRequest",
        "AllergyIntolerance",
    }
    observations = sum(
        r["resourceType"] == "Observation" for r in (e["resource"] for e in patient.bundle["entry"])
    )
    assert (
        seen.count(next(s for s in seen if s.startswith("Observation"))) == (observations + 1) // 2
    )  # every page
    stored = b"".join(p.read_bytes() for p in api_settings.resolved_home.rglob("*") if p.is_file())
    assert ACCESS_TOKEN.encode() not in stored
    family = patient.bundle["entry"][0]["resource"]["name"][0]["family"]
    assert family.encode() not in stored


def test_a_fhir_server_that_refuses_the_token_is_412(
    client: httpx.Client, auth, patient, fhir_server
) -> None:
    base, _ = fhir_server
    response = client.post(
        "/cds-services/clinrlhf-treatment",
        json=request_without_prefetch(patient, base, token="wrong"),
        headers=auth("cds-client", "application/json"),
    )
    assert response.status_code == 412 and "401" in response.json()["issue"][0]["diagnostics"]


def test_an_unreachable_fhir_server_is_412(client: httpx.Client, auth, patient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    response = client.post(
        "/cds-services/clinrlhf-treatment",
        json=request_without_prefetch(patient, f"http://127.0.0.1:{closed}/fhir"),
        headers=auth("cds-client", "application/json"),
    )
    assert response.status_code == 412 and response.json()["resourceType"] == "OperationOutcome"
