"""Every card says it was drafted by AI (HL7 AI Transparency on FHIR STU1): each suggested
MedicationRequest carries the AIAST label and points to a Provenance and a Device that resolve on
the running service, validate as FHIR R4, and name the served MLflow registered version and run.

The served policy is the production version of a miniature pipeline run recorded in a real SQLite
MLflow store (clinrlhf.pipeline.sample_run), its production pointer naming the tiny test policy.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.provenance import Provenance
from mlflow.tracking._tracking_service import utils as tracking_utils

from clinrlhf.compliance.ai_transparency import AI_DEVICE, AI_MODEL_CARD, AI_PROVENANCE, AIAST
from clinrlhf.identity import mint_token
from clinrlhf.pipeline.sample_run import SampleRun, record_sample_run
from clinrlhf.policy.pointers import ProductionPolicy, set_production
from clinrlhf.settings import Settings
from clinrlhf.world.patients import generate_patients
from clinrlhf.world.world import World

SERVICE = "/cds-services/clinrlhf-treatment"
ROLES = ("clinician", "cds-client", "ml-engineer", "compliance")


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, policy_dir: Path) -> tuple[Settings, SampleRun]:
    """A home whose production version (registered in its MLflow store) is served from `policy_dir`."""
    home = tmp_path_factory.mktemp("transparency-home")
    saved = tracking_utils._tracking_uri
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        settings = Settings(home=home, database_url=None)
        try:
            run = record_sample_run(settings)
        finally:
            # MLflow keeps the URI globally and in MLFLOW_TRACKING_URI: later modules' servers would
            # read this store. This server reads it from its home without them.
            mlflow.set_tracking_uri(saved)  # type: ignore[arg-type]
    assert run.version is not None
    uri = f"models:/clinrlhf-policy/{run.version}"
    set_production(
        home, ProductionPolicy("clinrlhf-policy", run.version, uri, str(policy_dir), run.stages["ppo"])
    )
    return settings, run


@pytest.fixture(scope="module")
def site(registered, live_server) -> Iterator[str]:
    settings, _ = registered
    with live_server(settings) as live:
        yield live.url


@pytest.fixture(scope="module")
def headers(registered) -> dict[str | None, dict[str, str]]:
    settings, _ = registered
    out: dict[str | None, dict[str, str]] = {
        role: {"Authorization": f"Bearer {mint_token(settings, role=role, sub=f't-{role}')}"}
        for role in ROLES
    }
    return out | {None: {}}


def _cards(site: str, headers: dict[str, str], world: World, patient_view) -> list[dict[str, Any]]:
    with httpx.Client(base_url=site, timeout=60) as client:
        for patient in generate_patients(world, 30, seed=4242):
            response = client.post(SERVICE, json=patient_view(patient.bundle), headers=headers)
            assert response.status_code == 200, response.text
            cards = [c for c in response.json()["cards"] if c["suggestions"]]
            if cards:
                return cards
    raise AssertionError("no patient got a card")


@pytest.fixture(scope="module")
def card(site: str, headers, world: World, patient_view) -> dict[str, Any]:
    return _cards(site, headers["cds-client"], world, patient_view)[0]


def drafts(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["resource"] for s in card["suggestions"] for a in s["actions"] if a.get("resource")]


def get(site: str, path: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(base_url=site, timeout=60) as client:
        return client.get(path, headers=headers)


def test_every_drafted_medication_request_is_labelled_ai_asserted(card: dict[str, Any]) -> None:
    for suggestion in card["suggestions"]:
        (resource,) = [a["resource"] for a in suggestion["actions"]]
        MedicationRequest.model_validate(resource)
        assert AIAST in resource["meta"]["security"]
        assert resource["id"] == suggestion["uuid"]  # a stable id: the suggestion the card offered
        assert resource["eventHistory"][0]["reference"].endswith(f"/fhir/Provenance/{card['uuid']}")
        assert "/fhir/Device/" in resource["meta"]["source"]


def test_the_provenance_resolves_validates_and_names_what_the_model_drafted(
    site: str, card: dict[str, Any], headers
) -> None:
    response = get(site, drafts(card)[0]["eventHistory"][0]["reference"], headers["cds-client"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    provenance = response.json()
    Provenance.model_validate(provenance)
    assert provenance["meta"]["profile"] == [AI_PROVENANCE]
    assert provenance["reason"] == [{"coding": [AIAST]}]
    assert {t["reference"] for t in provenance["target"]} == {
        f"MedicationRequest/{s['uuid']}" for s in card["suggestions"]
    }
    (agent,) = provenance["agent"]
    assert agent["role"][0]["coding"][0]["code"] == "Artificial-Intelligence"
    device = drafts(card)[0]["meta"]["source"].rsplit("/", 1)[1]
    assert agent["who"]["reference"] == f"Device/{device}"
    # No patient: the drafts name the EHR's patient, their Provenance never does.
    patient = drafts(card)[0]["subject"]["reference"]
    assert patient.split("/")[1] not in response.text


def test_the_device_names_the_served_registry_version_and_training_run(
    site: str, card: dict[str, Any], registered, headers
) -> None:
    _, run = registered
    response = get(site, drafts(card)[0]["meta"]["source"], headers["clinician"])
    assert response.status_code == 200, response.text
    device = response.json()
    Device.model_validate(device)
    assert device["meta"]["profile"] == [AI_DEVICE]
    assert device["type"]["coding"][0]["code"] == "Artificial-Intelligence"
    identifiers = {i["system"]: i["value"] for i in device["identifier"]}
    assert identifiers["urn:clinrlhf:model-version"] == f"clinrlhf-policy/{run.version}"
    assert identifiers["urn:clinrlhf:mlflow-run"] == run.stages["ppo"]
    assert {"name": f"clinrlhf-policy v{run.version}", "type": "user-friendly-name"} in device["deviceName"]


def test_the_model_card_is_an_ai_model_card_document_reference(
    site: str, card: dict[str, Any], registered, headers
) -> None:
    _, run = registered
    device = get(site, drafts(card)[0]["meta"]["source"], headers["ml-engineer"]).json()
    (reference,) = [e["valueReference"]["reference"] for e in device["extension"] if "modelCard" in e["url"]]
    response = get(site, f"/fhir/{reference}", headers["ml-engineer"])
    assert response.status_code == 200, response.text
    document = response.json()
    DocumentReference.model_validate(document)
    assert document["meta"]["profile"] == [AI_MODEL_CARD]
    attachment = document["content"][0]["attachment"]
    markdown = base64.b64decode(attachment["data"]).decode()
    assert attachment["contentType"] == "text/markdown"
    assert markdown.startswith(f"# Model card: clinrlhf-policy v{run.version}")
    assert "## Intended use" in markdown and run.pipeline_run_id in markdown


@pytest.mark.parametrize("kind", ["Provenance", "Device", "DocumentReference"])
def test_unknown_ids_are_404_operation_outcomes(site: str, headers, kind: str) -> None:
    response = get(site, f"/fhir/{kind}/00000000-0000-0000-0000-000000000000", headers["compliance"])
    assert response.status_code == 404
    OperationOutcome.model_validate(response.json())


def test_only_the_cds_client_and_compliance_read_a_provenance(
    site: str, card: dict[str, Any], headers
) -> None:
    path = f"/fhir/Provenance/{card['uuid']}"
    statuses = {role: get(site, path, headers[role]).status_code for role in (*ROLES, None)}
    assert statuses == {
        "clinician": 403,
        "cds-client": 200,
        "ml-engineer": 403,
        "compliance": 200,
        None: 401,
    }


def test_a_policy_served_outside_the_registry_is_named_by_its_weights(
    client: httpx.Client, auth, world: World, patient_view, policy_dir: Path
) -> None:
    """The shared test server serves an explicit policy folder, no registered version: its Device
    says only which weights drafted the card, and there is no model card to point to."""
    for patient in generate_patients(world, 30, seed=77):
        cards = client.post(SERVICE, json=patient_view(patient.bundle), headers=auth("cds-client")).json()[
            "cards"
        ]
        if cards:
            break
    device = client.get(drafts(cards[0])[0]["meta"]["source"], headers=auth("cds-client")).json()
    Device.model_validate(device)
    systems = {i["system"] for i in device["identifier"]}
    assert systems == {"urn:clinrlhf:model-weights"}
    assert device["identifier"][0]["value"].startswith(policy_dir.name + "@")
    assert not [e for e in device.get("extension", []) if "modelCard" in e["url"]]
    assert (
        client.get(f"/fhir/DocumentReference/{device['id']}", headers=auth("cds-client")).status_code == 404
    )


def test_the_capability_statement_lists_the_transparency_reads_with_their_profiles(
    client: httpx.Client, auth
) -> None:
    statement = client.get("/fhir/metadata", headers=auth("clinician")).json()
    profiles = {r["type"]: r.get("supportedProfile") for r in statement["rest"][0]["resource"]}
    assert profiles["Provenance"] == [AI_PROVENANCE]
    assert profiles["Device"] == [AI_DEVICE]
    assert profiles["DocumentReference"] == [AI_MODEL_CARD]


def test_a_drafts_provenance_is_found_by_searching_its_target(
    site: str, card: dict[str, Any], headers
) -> None:
    """The IG's discovery: GET [base]/Provenance?target=MedicationRequest/{id} (a searchset Bundle)."""
    from fhir.resources.R4B.bundle import Bundle

    draft = drafts(card)[0]
    response = get(site, f"/fhir/Provenance?target=MedicationRequest/{draft['id']}", headers["cds-client"])
    assert response.status_code == 200, response.text
    bundle = response.json()
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["id"] == card["uuid"]
    assert bundle["entry"][0]["fullUrl"] == draft["eventHistory"][0]["reference"]
    unknown = get(site, "/fhir/Provenance?target=MedicationRequest/no-such-draft", headers["cds-client"])
    assert unknown.status_code == 200 and unknown.json()["total"] == 0
    assert get(site, "/fhir/Provenance?target=Patient/p1", headers["cds-client"]).status_code == 422
    assert (
        get(
            site, f"/fhir/Provenance?target=MedicationRequest/{draft['id']}", headers["clinician"]
        ).status_code
        == 403
    )


def test_a_cds_client_reads_the_provenance_of_its_own_cards_only(
    site: str, card: dict[str, Any], registered, headers
) -> None:
    """Like feedback (clinrlhf.store.feedback_entry.check_client): another EHR's card is not there for
    a CDS client, by id or by its draft, whoever told it the id; compliance still reads every card."""
    settings, _ = registered
    other = {"Authorization": f"Bearer {mint_token(settings, role='cds-client', sub='another-ehr')}"}
    path = f"/fhir/Provenance/{card['uuid']}"
    search = f"/fhir/Provenance?target=MedicationRequest/{drafts(card)[0]['id']}"
    refused = get(site, path, other)
    assert refused.status_code == 404 and "another" not in refused.text
    OperationOutcome.model_validate(refused.json())
    assert get(site, search, other).json()["total"] == 0
    for owner in (headers["cds-client"], headers["compliance"]):
        assert get(site, path, owner).status_code == 200
        assert get(site, search, owner).json()["total"] == 1
