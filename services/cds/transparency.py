"""Every card says it was drafted by AI (HL7 AI Transparency on FHIR, clinrlhf.compliance.ai_transparency).

Each suggested MedicationRequest carries the AIAST security label, an id and identifier naming the
suggestion (stable: the store's suggestion id), `meta.source` naming the Device (the model version
that drafted it) and `eventHistory` naming the Provenance of its drafting. Both resolve on this
service (`services.fhir.transparency`). The Provenance of a card is derived from the stored card and
its device, never stored apart, so it cannot disagree with the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from sqlalchemy.orm import Session

from clinrlhf.compliance.ai_transparency import label, model_card_id, model_device_id
from clinrlhf.policy.version import ModelIdentity
from clinrlhf.store.devices import record_device
from services.cds.schemas import CdsCard

SUGGESTION_SYSTEM = "urn:clinrlhf:suggestion"


@dataclass(frozen=True)
class FhirLinks:
    """Where this service serves the transparency resources: its FHIR base URL (absolute under the
    configured public base URL, else an absolute path)."""

    base: str

    def provenance(self, card_id: str) -> str:
        return f"{self.base}/Provenance/{card_id}"

    def device(self, device_id: str) -> str:
        return f"{self.base}/Device/{device_id}"


def record_model(session: Session, identity: ModelIdentity) -> str:
    """The device id of the model `identity`, recorded in the caller's transaction."""
    device = record_device(
        session,
        device_id=model_device_id(identity),
        model_version=identity.model_version,
        registry_name=identity.registry_name,
        registry_version=identity.registry_version,
        run_id=identity.run_id,
        model_card_id=model_card_id(identity),
    )
    return device.id


def _drafted(
    resource: dict[str, Any], suggestion_id: str, links: FhirLinks, device_id: str, card_id: str
) -> dict[str, Any]:
    labelled = label(resource, source=links.device(device_id))
    labelled["id"] = suggestion_id
    labelled["identifier"] = [{"system": SUGGESTION_SYSTEM, "value": suggestion_id}]
    # MedicationRequest.eventHistory: "links to Provenance records ... relevant to a user looking at
    # the current version of the resource"; its drafting by a model is one.
    labelled["eventHistory"] = [{"reference": links.provenance(card_id), "display": "drafted by AI"}]
    MedicationRequest.model_validate(labelled)
    return labelled


def label_card(card: CdsCard, *, links: FhirLinks, device_id: str) -> CdsCard:
    """`card` with each suggested MedicationRequest labelled and pointing to its Provenance and Device."""
    for suggestion in card.suggestions:
        for action in suggestion.actions:
            if action.resource and action.resource.get("resourceType") == "MedicationRequest":
                action.resource = _drafted(action.resource, suggestion.uuid, links, device_id, card.uuid)
    return card
