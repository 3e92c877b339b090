"""Without prefetch, the service reads the patient from the client's FHIR server (a real one on
localhost here), with the client's access token, and still de-identifies before anything is kept."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


def fake_fhir_server(resources: list[dict[str, Any]], seen: list[str], page_size: int = 2) -> FastAPI:
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
        # Two entries per page by default, so every search with more than two results is paged.
        first, last = page * page_size, (page + 1) * page_size
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in matches[first:last]],
        }
        if len(matches) > last:
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


@contextmanager
def serving(resources: list[dict[str, Any]], page_size: int = 2) -> Iterator[tuple[str, list[str]]]:
    """A FHIR server on 127.0.0.1 holding one patient's resources; yields its base URL and a log."""
    seen: list[str] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = fake_fhir_server(resources, seen, page_size)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/fhir", seen
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def fhir_server(patient) -> Iterator[tuple[str, list[str]]]:
    with serving([e["resource"] for e in patient.bundle["entry"]]) as served:
        yield served


def request_without_prefetch(patient, fhir_base: str, token: str = ACCESS_TOKEN) -> dict[str, Any]:
    return request_for(patient.bundle["entry"][0]["resource"]["id"], fhir_base, token)


def request_for(pid: str, fhir_base: str, token: str = ACCESS_TOKEN) -> dict[str, Any]:
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


SYNTHEA = sorted((Path(__file__).parents[3] / "shared" / "data" / "synthea-r4").glob("*.json"))


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.stem[:24])
def test_synthea_patients_are_fetched_from_a_fhir_server_without_a_5xx(
    client: httpx.Client, auth, api_settings: Settings, path: Path
) -> None:
    """Real-shaped Synthea records, served by a FHIR server on localhost instead of prefetched."""
    resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    if not patients:
        pytest.skip("hospital or practitioner bundle: no patient to fetch")
    with serving(resources, page_size=100) as (base, seen):
        response = client.post(
            "/cds-services/clinrlhf-treatment",
            json=request_for(patients[0]["id"], base),
            headers=auth("cds-client", "application/json"),
        )
    assert response.status_code < 500, response.text
    assert f"Patient/{patients[0]['id']}" in seen
    stored = b"".join(p.read_bytes() for p in api_settings.resolved_home.rglob("*") if p.is_file())
    assert patients[0]["name"][0]["family"].encode() not in stored
