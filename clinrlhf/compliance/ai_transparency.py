"""HL7 AI Transparency on FHIR (STU1, http://hl7.org/fhir/uv/aitransparency) as pure builders: the
AIAST label on what the policy drafts, the AI-Device naming the model version that drafted it, the
AI-Provenance tying the two together, and the AI-ModelCard DocumentReference carrying the model card.

FHIR R4 (the IG's base), validated with fhir.resources' R4B models, which left these resources as R4
had them. Shapes follow the IG's profiles (input/fsh/AIDevice.fsh and AIProvenance.fsh in
github.com/HL7/aitransparency-ig): Device.type Artificial-Intelligence; Provenance.reason AIAST, an
agent whose role is Artificial-Intelligence and whose `who` is the Device, and the model card as an
entity with role `derivation`.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.device import Device
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.provenance import Provenance

from clinrlhf.policy.version import ModelIdentity

IG = "http://hl7.org/fhir/uv/aitransparency"
AI_DEVICE = f"{IG}/StructureDefinition/AI-Device"
AI_PROVENANCE = f"{IG}/StructureDefinition/AI-Provenance"
AI_MODEL_CARD = f"{IG}/StructureDefinition/AI-ModelCard"
AI_KIND = f"{IG}/StructureDefinition/aitransparency.AIKind"
MODEL_CARD_EXTENSION = f"{IG}/StructureDefinition/aitransparency.modelCardDescription"
DEVICE_TYPES = f"{IG}/CodeSystem/AIdeviceTypeCS"
INPUTS = f"{IG}/CodeSystem/AIinputsCS"
AIAST = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "AIAST",
    "display": "Artificial Intelligence asserted",
}
_AI = {
    "system": DEVICE_TYPES,
    "code": "Artificial-Intelligence",
    "display": "All kinds of Artificial Intelligence",
}
# A transformer aligned by reinforcement learning: the IG files RL under machine-learning models.
_KIND = {"system": DEVICE_TYPES, "code": "Machine-Learning-Models", "display": "Machine Learning Models"}
SYSTEM = "urn:clinrlhf"
MODEL_NAMESPACE = "urn:clinrlhf/model"  # clinrlhf.compliance.provenance names a run's model this way too


def model_device_id(identity: ModelIdentity) -> str:
    """The Device id of a model: from the MLflow run that trained it, so the service and the lineage
    export name the same model alike; from the weights when no run is known."""
    if identity.run_id:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{MODEL_NAMESPACE}/{identity.run_id}"))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SYSTEM}/weights/{identity.model_version}"))


def model_card_id(identity: ModelIdentity) -> str | None:
    """The id of the model's AI-ModelCard DocumentReference, rendered from its training run: None
    without a known run."""
    if not identity.run_id:
        return None
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{MODEL_NAMESPACE}/{identity.run_id}/model-card"))


def model_card_title(identity: ModelIdentity) -> str:
    if identity.registered:
        return f"Model card: {identity.registry_name} v{identity.registry_version}"
    return f"Model card: clinrlhf policy {identity.model_version}"


def _instant(moment: datetime) -> str:
    """A FHIR instant; the store keeps naive UTC (clinrlhf.store.models.utcnow)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _identifier(kind: str, value: str) -> dict[str, str]:
    return {"system": f"{SYSTEM}:{kind}", "value": value}


def ai_device(
    identity: ModelIdentity, *, description: str, model_card: str | None = None, device_id: str | None = None
) -> dict[str, Any]:
    """The model as an AI-Device: named by registry version and run where known. `model_card` is a
    reference to its AI-ModelCard DocumentReference."""
    names = []
    identifiers = [_identifier("model-weights", identity.model_version)]
    versions: list[dict[str, Any]] = []
    if identity.registered:
        names.append({"name": str(identity.registry_name), "type": "model-name"})
        names.append(
            {"name": f"{identity.registry_name} v{identity.registry_version}", "type": "user-friendly-name"}
        )
        identifiers.insert(
            0, _identifier("model-version", f"{identity.registry_name}/{identity.registry_version}")
        )
        versions.append(
            {"type": {"text": "MLflow registered model version"}, "value": identity.registry_version}
        )
    else:
        names.append({"name": f"clinrlhf policy {identity.model_version}", "type": "model-name"})
    if identity.run_id:
        identifiers.append(_identifier("mlflow-run", identity.run_id))
        versions.append({"type": {"text": "MLflow run"}, "value": identity.run_id})
    versions.append({"type": {"text": "weights"}, "value": identity.model_version})
    resource = {
        "resourceType": "Device",
        "id": device_id or model_device_id(identity),
        "identifier": identifiers,
        "manufacturer": "clinrlhf",
        "deviceName": names,
        "type": {"text": description},
        "version": versions,
    }
    return as_ai_device(resource, model_card=model_card)


def as_ai_device(resource: dict[str, Any], *, model_card: str | None = None) -> dict[str, Any]:
    """A Device made an AI-Device: the profile, type Artificial-Intelligence (keeping its text), the
    kind of AI, and a reference to its model card where there is one."""
    extensions: list[dict[str, Any]] = [{"url": AI_KIND, "valueCodeableConcept": {"coding": [_KIND]}}]
    if model_card:
        extensions.append({"url": MODEL_CARD_EXTENSION, "valueReference": {"reference": model_card}})
    kind = resource.get("type") or {}
    device = {
        **resource,
        "meta": {**(resource.get("meta") or {}), "profile": [AI_DEVICE]},
        "extension": [*(resource.get("extension") or []), *extensions],
        "type": {**kind, "coding": [_AI]},
    }
    Device.model_validate(device)
    return device


def ai_provenance(
    *,
    provenance_id: str,
    targets: Sequence[dict[str, Any]],
    recorded: datetime,
    device: str,
    model_card: str | None,
    activity: str,
) -> dict[str, Any]:
    """AI-Provenance: `targets` were drafted by the model `device` (a reference), whose card is
    `model_card`. No patient is named: the targets are the drafted resources only."""
    moment = _instant(recorded)
    entities = (
        [{"role": "derivation", "what": {"reference": model_card, "display": "model card"}}]
        if model_card
        else []
    )
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": provenance_id,
        "meta": {"profile": [AI_PROVENANCE]},
        "target": list(targets),
        "occurredDateTime": moment,
        "recorded": moment,
        "reason": [{"coding": [AIAST]}],
        "activity": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE"}
            ],
            "text": activity,
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "role": [{"coding": [_AI]}],
                "who": {"reference": device},
            }
        ],
    }
    if entities:
        resource["entity"] = entities
    Provenance.model_validate(resource)
    return resource


def model_card_document(
    *, document_id: str, markdown: str, identity: ModelIdentity, created: datetime | None = None
) -> dict[str, Any]:
    """AI-ModelCard: the model card as a Markdown attachment (base64), plus the text unencoded in
    `description` for people reading the JSON, as the profile suggests."""
    data = markdown.encode("utf-8")
    resource = {
        "resourceType": "DocumentReference",
        "id": document_id,
        "meta": {"profile": [AI_MODEL_CARD]},
        "identifier": [_identifier("model-weights", identity.model_version)]
        + ([_identifier("mlflow-run", identity.run_id)] if identity.run_id else []),
        "status": "current",
        "type": {"coding": [{"system": INPUTS, "code": "AIModelCard", "display": "AI Model-Card"}]},
        "category": [
            {
                "coding": [
                    {"system": INPUTS, "code": "AIModelCardMarkdownFormat", "display": "Markdown Format"}
                ]
            }
        ],
        "date": _instant(created or datetime.now(UTC)),
        "description": markdown,
        "content": [
            {
                "attachment": {
                    "contentType": "text/markdown",
                    "language": "en",
                    "data": base64.b64encode(data).decode("ascii"),
                    "title": model_card_title(identity),
                    "size": len(data),
                }
            }
        ],
    }
    DocumentReference.model_validate(resource)
    return resource


def model_card_markdown(title: str, sections: Iterable[Any]) -> str:
    """A model card's sections (clinrlhf.compliance.modelcard.Section: title, items) as Markdown."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [f"- **{name}**: {value}" for name, value in section.items]
        lines.append("")
    return "\n".join(lines)


def label(resource: dict[str, Any], *, source: str | None = None) -> dict[str, Any]:
    """`resource` carrying the AIAST security label (and `meta.source`, the system that made it)."""
    meta = dict(resource.get("meta") or {})
    security = [c for c in meta.get("security", []) if c.get("code") != AIAST["code"]]
    meta["security"] = [*security, AIAST]
    if source:
        meta["source"] = source
    return {**resource, "meta": meta}
