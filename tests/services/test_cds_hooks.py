"""CDS Hooks over real HTTP: cards as CONTRACT.md specifies them, de-identification at the door,
prefetch errors, and idempotent feedback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.medicationrequest import MedicationRequest

from clinrlhf.settings import Settings
from clinrlhf.store import counts, deployment_store
from clinrlhf.world.facts import RXNORM, SNOMED
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World
from services.cds.invariants import response_violations

SERVICE = "/cds-services/clinrlhf-treatment"
NON_ADHERENCE = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
SYNTHEA = sorted((Path(__file__).parents[3] / "shared" / "data" / "synthea-r4").glob("*.json"))


def phi_of(bundle: Mapping[str, Any]) -> set[str]:
    """Names, phone numbers, identifiers (MRN, SSN, ...), street lines and the id of the Patient."""
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    found = {patient["id"]}
    for name in patient.get("name", []):
        found |= {*name.get("given", []), name.get("family", "")}
    found |= {t["value"] for t in patient.get("telecom", [])}
    found |= {i["value"] for i in patient.get("identifier", [])}
    found |= {line for a in patient.get("address", []) for line in a.get("line", [])}
    return {s for s in found if len(s) >= 4}


def stored_bytes(settings: Settings) -> bytes:
    home = settings.resolved_home
    return b"".join(p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file())


def call(client: httpx.Client, auth, request: dict) -> httpx.Response:
    response = client.post(SERVICE, json=request, headers=auth("cds-client", "application/json"))
    if response.status_code == 200:  # CDS Hooks 3.0's invariants cds-resp-1..7, on every response
        assert response_violations(response.json()) == []
    return response


def assert_card_shape(card: dict, world: World, patient_id: str) -> None:
    assert uuid.UUID(card["uuid"]) and len(card["summary"]) < 140
    assert card["indicator"] in ("info", "warning") and card["source"]["label"].startswith("clinrlhf ")
    assert card["source"]["url"].endswith("/model-card")
    assert card["selectionBehavior"] == "at-most-one"
    assert {r["system"] for r in card["overrideReasons"]} == {NON_ADHERENCE}
    assert {r["code"] for r in card["overrideReasons"]} >= {
        "patient-contraindication",
        "recipient-disagrees-evidence",
        "patient-refuses",
    }
    suggestions = card["suggestions"]
    assert 1 <= len(suggestions) <= 2
    assert [s["isRecommended"] for s in suggestions] == [True] + [False] * (len(suggestions) - 1)
    drugs = set()
    for suggestion in suggestions:
        (action,) = suggestion["actions"]
        assert action["type"] == "create" and action["description"]
        request = MedicationRequest.model_validate(action["resource"])
        assert request.status == "draft" and request.intent == "proposal"
        (coding,) = request.medicationCodeableConcept.coding
        assert coding.system == RXNORM and world.drug_by_rxnorm(coding.code) is not None
        drugs.add(coding.code)
        (reason,) = request.reasonCode
        assert reason.coding[0].system == SNOMED and world.target_by_snomed(reason.coding[0].code) is not None
        assert request.subject.reference == f"Patient/{patient_id}"
        assert request.dosageInstruction[0].text == world.drug_by_rxnorm(coding.code).sig
    assert len(drugs) == len(suggestions)  # distinct suggestions


def test_generated_patients_get_one_card_per_untreated_target(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    for patient in generate_patients(world, 3, seed=11):
        request = patient_view(patient.bundle)
        response = call(client, auth, request)
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        reasons = {
            c["suggestions"][0]["actions"][0]["resource"]["reasonCode"][0]["coding"][0]["code"] for c in cards
        }
        assert reasons <= {world.targets[t].snomed for t in patient.targets}
        for card in cards:
            assert_card_shape(card, world, request["context"]["patientId"])


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.name[:12])
def test_synthea_bundles_never_cause_a_5xx_and_leave_no_phi(
    client: httpx.Client, auth, patient_view, world: World, api_settings: Settings, path: Path
) -> None:
    bundle = json.loads(path.read_bytes())
    if not any(e["resource"]["resourceType"] == "Patient" for e in bundle["entry"]):
        pytest.skip("hospital or practitioner bundle: no patient to send")
    request = patient_view(bundle)
    response = call(client, auth, request)
    assert response.status_code == 200, response.text
    for card in response.json()["cards"]:
        assert_card_shape(card, world, request["context"]["patientId"])
    on_disk = stored_bytes(api_settings)
    leaked = [s for s in phi_of(bundle) if s.encode() in on_disk]
    assert not leaked, f"{len(leaked)} identifiers of the patient found under CLINRLHF_HOME"


def test_missing_prefetch_is_412(client: httpx.Client, auth, patient_view, world: World) -> None:
    request = patient_view(generate_patients(world, 1, seed=5)[0].bundle)
    del request["prefetch"]["allergies"]
    body = call(client, auth, request).json()
    assert body["resourceType"] == "OperationOutcome" and "allergies" in body["issue"][0]["diagnostics"]
    assert call(client, auth, {**request, "prefetch": None}).status_code == 412


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r["prefetch"].update(patient={"resourceType": "Observation"}),
        lambda r: r["prefetch"].update(conditions=[1, 2, 3]),
        lambda r: r["prefetch"]["patient"].update(birthDate="not-a-date"),
        lambda r: r["prefetch"]["patient"].pop("birthDate"),
        lambda r: r["prefetch"]["observations"]["entry"].append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
                    "effectiveDateTime": "2999-01-01",
                    "valueQuantity": {"value": "high"},
                }
            }
        ),
        lambda r: r.update(hook="order-select"),
    ],
    ids=[
        "patient-not-patient",
        "search-not-bundle",
        "bad-birth-date",
        "no-birth-date",
        "text-lab",
        "wrong-hook",
    ],
)
def test_unreadable_patient_data_is_422(
    client: httpx.Client, auth, patient_view, world: World, mutate
) -> None:
    request = patient_view(generate_patients(world, 1, seed=6)[0].bundle)
    mutate(request)
    response = call(client, auth, request)
    assert response.status_code == 422, response.text
    assert response.json()["resourceType"] == "OperationOutcome"


def _card(client: httpx.Client, auth, patient_view, world: World, seed: int) -> dict:
    for patient in generate_patients(world, 20, seed=seed):
        cards = call(client, auth, patient_view(patient.bundle)).json()["cards"]
        if cards and len(cards[0]["suggestions"]) == 2:
            return cards[0]
    raise AssertionError("no two-suggestion card in 20 patients")


def test_feedback_is_stored_once_however_often_it_is_sent(
    client: httpx.Client, auth, patient_view, world: World, api_settings: Settings
) -> None:
    card = _card(client, auth, patient_view, world, seed=21)
    accepted = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][1]["uuid"]}],
        "outcomeTimestamp": datetime.now(UTC).isoformat(),
    }
    overridden = {
        "card": card["uuid"],
        "outcome": "overridden",
        "outcomeTimestamp": "2026-01-02T03:04:05Z",
        "overrideReason": {
            "reason": {
                "system": "https://clinrlhf.dev/fhir/CodeSystem/override-reason",
                "code": "contraindicated",
            },
            "userComment": "Maria Okafor refused",
        },
    }
    with deployment_store(api_settings)() as session:
        before = counts(session)["feedback"]
    url, headers = f"{SERVICE}/feedback", auth("cds-client")
    first = client.post(url, json={"feedback": [accepted, overridden]}, headers=headers)
    assert first.status_code == 200 and first.json() == {"stored": 2, "duplicates": 0}
    again = client.post(url, json={"feedback": [overridden, accepted]}, headers=headers)
    assert again.json() == {"stored": 0, "duplicates": 2}
    with deployment_store(api_settings)() as session:
        assert counts(session)["feedback"] == before + 2
    assert b"Maria Okafor" not in stored_bytes(api_settings)


def test_feedback_for_an_unknown_card_is_404_and_stores_nothing(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    card = _card(client, auth, patient_view, world, seed=22)
    good = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-02-01T00:00:00Z"}
    unknown = {"card": str(uuid.uuid4()), "outcome": "overridden", "outcomeTimestamp": "2026-02-01T00:00:00Z"}
    url, headers = f"{SERVICE}/feedback", auth("cds-client")
    response = client.post(url, json={"feedback": [good, unknown]}, headers=headers)
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"
    assert client.post(url, json={"feedback": [good]}, headers=headers).json() == {
        "stored": 1,
        "duplicates": 0,
    }


def test_feedback_must_accept_a_suggestion_of_its_card(
    client: httpx.Client, auth, patient_view, world: World
) -> None:
    card = _card(client, auth, patient_view, world, seed=23)
    url, headers = f"{SERVICE}/feedback", auth("cds-client")
    foreign = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": str(uuid.uuid4())}],
        "outcomeTimestamp": "2026-02-01T00:00:00Z",
    }
    assert client.post(url, json={"feedback": [foreign]}, headers=headers).status_code == 422
    none = {**foreign, "acceptedSuggestions": []}  # breaks cds-fb-2
    assert client.post(url, json={"feedback": [none]}, headers=headers).status_code == 400
    assert client.post(url, json={"feedback": []}, headers=headers).status_code == 422
