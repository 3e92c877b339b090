"""The HL7 AI Transparency on FHIR builders: what they build validates as FHIR R4 with the IG's
shapes, and a model is named alike by the service (cards) and the lineage export."""

from __future__ import annotations

import base64
from datetime import datetime

from fhir.resources.R4B.medicationrequest import MedicationRequest

from clinrlhf.compliance.ai_transparency import (
    AI_PROVENANCE,
    AIAST,
    ai_device,
    ai_provenance,
    label,
    model_card_document,
    model_card_id,
    model_card_markdown,
    model_device_id,
)
from clinrlhf.compliance.modelcard import Section
from clinrlhf.compliance.provenance import provenance_bundle
from clinrlhf.compliance.registry import versions_of_run
from clinrlhf.lineage.chain import load_chain
from clinrlhf.policy.version import ModelIdentity

REGISTERED = ModelIdentity("policy@0123456789ab", "clinrlhf-policy", "3", "a" * 32)
DRAFT = {
    "resourceType": "MedicationRequest",
    "status": "draft",
    "intent": "proposal",
    "medicationCodeableConcept": {"text": "lisinopril"},
    "subject": {"reference": "Patient/p1"},
    "meta": {
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]
    },
}


def test_a_label_adds_aiast_once_and_keeps_the_other_labels() -> None:
    labelled = label(label(DRAFT, source="https://cds.example/fhir/Device/d"))
    MedicationRequest.model_validate(labelled)
    codes = [c["code"] for c in labelled["meta"]["security"]]
    assert codes == ["N", "AIAST"]
    assert labelled["meta"]["source"] == "https://cds.example/fhir/Device/d"
    assert "meta" in DRAFT and len(DRAFT["meta"]["security"]) == 1  # the input is left as it was


def test_the_provenance_names_the_ai_agent_and_the_model_card_and_no_patient() -> None:
    provenance = ai_provenance(
        provenance_id="card-1",
        targets=[{"reference": "MedicationRequest/s1"}],
        recorded=datetime(2026, 12, 7, 6, 0),
        device="Device/d1",
        model_card="DocumentReference/m1",
        activity="drafted",
    )
    assert provenance["meta"]["profile"] == [AI_PROVENANCE]
    assert provenance["reason"] == [{"coding": [AIAST]}]
    assert provenance["recorded"] == "2026-12-07T06:00:00+00:00"  # naive store time is UTC
    (agent,) = provenance["agent"]
    assert agent["who"] == {"reference": "Device/d1"}
    assert agent["role"][0]["coding"][0]["code"] == "Artificial-Intelligence"
    assert provenance["entity"] == [
        {"role": "derivation", "what": {"reference": "DocumentReference/m1", "display": "model card"}}
    ]
    assert "Patient" not in str(provenance)


def test_a_device_without_a_registered_version_is_named_by_its_weights() -> None:
    device = ai_device(ModelIdentity("policy@0123456789ab"), description="policy")
    assert [i["system"] for i in device["identifier"]] == ["urn:clinrlhf:model-weights"]
    assert model_card_id(ModelIdentity("policy@0123456789ab")) is None
    registered = ai_device(REGISTERED, description="policy", model_card="DocumentReference/m")
    assert {"system": "urn:clinrlhf:model-version", "value": "clinrlhf-policy/3"} in registered["identifier"]
    assert device["id"] != registered["id"]


def test_the_model_card_travels_as_base64_markdown() -> None:
    markdown = model_card_markdown("Model card", [Section("Intended use", [("Primary use", "drafts")])])
    assert markdown.splitlines()[:5] == [
        "# Model card",
        "",
        "## Intended use",
        "",
        "- **Primary use**: drafts",
    ]
    document = model_card_document(document_id="m1", markdown=markdown, identity=REGISTERED)
    attachment = document["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]).decode() == markdown
    assert attachment["title"] == "Model card: clinrlhf-policy v3"


def test_the_service_and_the_lineage_export_name_a_registered_model_alike(sample) -> None:
    """A card's Device and the export's Device of the PPO run that trained the version are one
    resource id, and so are their model cards."""
    chain = load_chain(sample.client, sample.good.pipeline_run_id)
    versions = versions_of_run(sample.client, sample.good.pipeline_run_id)
    bundle = provenance_bundle(chain, versions, [], model_card="# card")
    ppo = sample.good.stages["ppo"]
    served = ModelIdentity("policy@x", "clinrlhf-policy", sample.good.version, ppo)
    resources = [e["resource"] for e in bundle["entry"]]
    assert model_device_id(served) in {r["id"] for r in resources if r["resourceType"] == "Device"}
    (document,) = [r for r in resources if r["resourceType"] == "DocumentReference"]
    assert document["id"] == model_card_id(served)
