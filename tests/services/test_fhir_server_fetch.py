"""Without prefetch, the service reads the patient from the client's FHIR server (a real one on
localhost here), with the client's access token, and still de-identifies before anything is kept.

It only ever calls the FHIR servers configured for the calling client (`CLINRLHF_FHIR_SERVERS`),
and every failure of one looks the same to the caller."""

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

from clinrlhf.identity import mint_token
from clinrlhf.settings import Settings
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

ACCESS_TOKEN = "ehr-issued-access-token"
CLIENT = "test-cds-client"  # the cds-client token's `sub` (tests/services/conftest.py)
_TYPES = {
    "Condition": "subject",
    "Observation": "subject",
    "MedicationRequest": "subject",
    "AllergyIntolerance": "patient",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fake_fhir_server(held: dict[str, Any], seen: list[str]) -> FastAPI:
    """`held["resources"]` (the patient first) and `held["page_size"]` may change between requests."""
    app = FastAPI()

    def check(authorization: str | None) -> None:
        if authorization != f"Bearer {ACCESS_TOKEN}":
            raise HTTPException(401)

    @app.get("/fhir/Patient/{pid}")
    def read_patient(pid: str, authorization: str | None = Header(default=None)) -> dict:
        check(authorization)
        seen.append(f"Patient/{pid}")
        if pid != held["resources"][0]["id"]:
            raise HTTPException(404)
        return held["resources"][0]

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
        matches = [r for r in held["resources"] if r["resourceType"] == kind]
        page_size = held["page_size"]
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
def serving(held: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """A FHIR server on 127.0.0.1 holding one patient's resources; yields its base URL and a log."""
    seen: list[str] = []
    port = free_port()
    app = fake_fhir_server(held, seen)
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
def held(patient) -> dict[str, Any]:
    return {"resources": [e["resource"] for e in patient.bundle["entry"]], "page_size": 2}


@pytest.fixture(scope="module")
def fhir_server(held: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    with serving(held) as served:
        yield served


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()  # nothing listens there


@pytest.fixture(scope="module")
def fetching_settings(api_settings: Settings, fhir_server, closed_port: int) -> Settings:
    """The test API, with the fake FHIR server (and a closed port) configured for the test EHR's
    client id, the `sub` of the cds-client token."""
    base, _ = fhir_server
    allowed = {CLIENT: [base, f"http://127.0.0.1:{closed_port}/fhir"]}
    return api_settings.model_copy(update={"fhir_servers": json.dumps(allowed)})


@pytest.fixture(scope="module")
def client(live_server, fetching_settings: Settings) -> Iterator[httpx.Client]:
    with live_server(fetching_settings) as live, httpx.Client(base_url=live.url, timeout=60.0) as c:
        yield c


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


def post(client: httpx.Client, auth, body: dict[str, Any], token: str | None = None) -> httpx.Response:
    headers = auth("cds-client", "application/json")
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/cds-services/clinrlhf-treatment", json=body, headers=headers)


def diagnostics(response: httpx.Response) -> str:
    return str(response.json()["issue"][0]["diagnostics"])


def test_every_failure_of_a_configured_fhir_server_gives_the_same_412(
    client: httpx.Client, auth, patient, fhir_server, closed_port: int
) -> None:
    """A refused token, an unknown patient and a closed port: the caller cannot tell them apart,
    so the service is no oracle for what a FHIR server does."""
    base, _ = fhir_server
    answers = [
        post(client, auth, request_without_prefetch(patient, base, token="wrong")),
        post(client, auth, request_for("no-such-patient", base)),
        post(client, auth, request_without_prefetch(patient, f"http://127.0.0.1:{closed_port}/fhir")),
    ]
    assert [a.status_code for a in answers] == [412, 412, 412]
    assert all(a.json()["resourceType"] == "OperationOutcome" for a in answers)
    assert len({diagnostics(a) for a in answers}) == 1, [diagnostics(a) for a in answers]


def test_a_fhir_server_not_configured_for_the_client_is_never_contacted(
    client: httpx.Client, auth, patient, api_settings: Settings, fhir_server
) -> None:
    """Server-side request forgery: an attacker's host (or an internal one) named in `fhirServer`
    gets no request and never sees the EHR's access token; nor does a configured server get
    requests on behalf of a client it is not configured for."""
    stranger = {"resources": [e["resource"] for e in patient.bundle["entry"]], "page_size": 2}
    with serving(stranger) as (elsewhere, contacted):
        refused = post(client, auth, request_without_prefetch(patient, elsewhere))
        # user info that spells the configured server, in front of the attacker's host
        configured = fhir_server[0].removeprefix("http://").removesuffix("/fhir")
        disguised = f"http://{configured}@{elsewhere.removeprefix('http://')}"
        lookalike = post(client, auth, request_without_prefetch(patient, disguised))
        assert contacted == []
    assert refused.status_code == lookalike.status_code == 412
    assert "not a FHIR server configured" in diagnostics(refused)
    base, seen = fhir_server
    seen.clear()
    other_client = mint_token(api_settings, role="cds-client", sub="another-ehr")
    response = post(client, auth, request_without_prefetch(patient, base), token=other_client)
    assert response.status_code == 412 and seen == []


SYNTHEA = sorted((Path(__file__).parents[3] / "shared" / "data" / "synthea-r4").glob("*.json"))


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.stem[:24])
def test_synthea_patients_are_fetched_from_a_fhir_server_without_a_5xx(
    client: httpx.Client, auth, api_settings: Settings, held: dict[str, Any], fhir_server, path: Path
) -> None:
    """Real-shaped Synthea records, served by a FHIR server on localhost instead of prefetched."""
    resources = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    if not patients:
        pytest.skip("hospital or practitioner bundle: no patient to fetch")
    base, seen = fhir_server
    saved = dict(held)
    held.update(resources=[patients[0], *(r for r in resources if r is not patients[0])], page_size=100)
    try:
        response = post(client, auth, request_for(patients[0]["id"], base))
    finally:
        held.update(saved)
    assert response.status_code < 500, response.text
    assert f"Patient/{patients[0]['id']}" in seen
    stored = b"".join(p.read_bytes() for p in api_settings.resolved_home.rglob("*") if p.is_file())
    assert patients[0]["name"][0]["family"].encode() not in stored


def with_scope(body: dict[str, Any], scope: str, patient: str | None = None) -> dict[str, Any]:
    auth = {**body["fhirAuthorization"], "scope": scope}
    if patient is not None:
        auth["patient"] = patient
    return {**body, "fhirAuthorization": auth}


V2_SCOPES = (
    "launch/patient openid patient/Patient.r patient/Condition.rs patient/Observation.rs "
    "patient/MedicationRequest.rs patient/AllergyIntolerance.rs"
)


def test_smart_v2_scopes_for_the_patient_let_the_service_fetch(
    client: httpx.Client, auth, patient, fhir_server
) -> None:
    """CDS Hooks 3.0 passes SMART App Launch v2 scopes (`patient/Observation.rs`)."""
    base, _ = fhir_server
    pid = patient.bundle["entry"][0]["resource"]["id"]
    response = post(client, auth, with_scope(request_without_prefetch(patient, base), V2_SCOPES, pid))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("scope", "patient_field", "lacking"),
    [
        (V2_SCOPES.replace(" patient/AllergyIntolerance.rs", ""), None, "AllergyIntolerance.s"),
        ("user/Patient.r user/Observation.read", None, "Condition.s"),  # the spec's example scopes
        (V2_SCOPES.replace("patient/Condition.rs", "patient/Condition.r"), None, "Condition.s"),
        (V2_SCOPES, "another-patient", "Patient.r"),  # the token is for someone else
    ],
    ids=["no-allergies", "v1-user-read-two-types", "read-without-search", "another-patient"],
)
def test_a_token_whose_scopes_miss_a_need_is_a_412_naming_it_and_the_server_is_not_called(
    client: httpx.Client, auth, patient, fhir_server, scope: str, patient_field: str | None, lacking: str
) -> None:
    """The service checks its own prefetch needs against the scopes it was granted before it
    calls the FHIR server: a clear refusal, not a fetch bound to fail or a silently partial record
    (a missing allergy list could make a card suggest the drug the patient is allergic to)."""
    base, seen = fhir_server
    seen.clear()
    body = with_scope(request_without_prefetch(patient, base), scope, patient_field)
    response = post(client, auth, body)
    assert response.status_code == 412, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert lacking in diagnostics(response) and "fhirAuthorization.scope" in diagnostics(response)
    assert seen == []
