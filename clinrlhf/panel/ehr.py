"""The simulated EHR side of CDS Hooks: prefetch built from a patient's FHIR bundle."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

HOOK = "patient-view"
SERVICE_ID = "clinrlhf-treatment"
_PREFETCH_KEYS = {
    "Condition": "conditions",
    "Observation": "observations",
    "MedicationRequest": "medications",
    "AllergyIntolerance": "allergies",
}


def _searchset(resources: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def prefetch_from_bundle(bundle: Mapping[str, Any]) -> tuple[str, dict]:
    """(patient id, prefetch) as an EHR would fill the service's prefetch templates."""
    resources = [e["resource"] for e in bundle.get("entry", []) if "resource" in e]
    patient = next(r for r in resources if r.get("resourceType") == "Patient")
    grouped: dict[str, list[dict]] = {key: [] for key in _PREFETCH_KEYS.values()}
    for r in resources:
        key = _PREFETCH_KEYS.get(r.get("resourceType", ""))
        if key:
            grouped[key].append(r)
    return patient["id"], {"patient": patient, **{k: _searchset(v) for k, v in grouped.items()}}


# The simulated EHR's hook instances: a name-based UUID per (panel seed, patient), see hook_instance.
_HOOK_NAMESPACE = uuid.UUID("6f1b0c3e-5a52-4c8e-9d0b-2f6a1f0e7c41")


def hook_instance(seed: int, patient_index: int) -> str:
    """The hookInstance the simulated EHR sends for a patient: a UUID (version 5) of the panel's seed
    and the patient's index. The service seeds its sampled suggestions with the hookInstance, so a
    fresh random UUID per request made every panel run see different suggestions; derived like this,
    one seed gives one feedback set, and runs that differ in one setting can be compared pairwise."""
    return str(uuid.uuid5(_HOOK_NAMESPACE, f"{seed}:{patient_index}"))


def patient_view_request(
    bundle: Mapping[str, Any], user: str = "Practitioner/example", instance: str | None = None
) -> dict:
    """A CDS Hooks patient-view request with the bundle as prefetch; `instance` is the hookInstance
    (a fresh random UUID when None, as a real EHR sends)."""
    patient_id, prefetch = prefetch_from_bundle(bundle)
    return {
        "hook": HOOK,
        "hookInstance": instance or str(uuid.uuid4()),
        "context": {"userId": user, "patientId": patient_id},
        "prefetch": prefetch,
    }


def card_drug_codes(card: Mapping[str, Any]) -> tuple[str | None, list[tuple[str, str | None]]]:
    """(target SNOMED code, [(suggestion uuid, RxNorm code)]) read back from a returned card."""
    target, out = None, []
    for suggestion in card.get("suggestions", []):
        for action in suggestion.get("actions", []):
            resource = action.get("resource") or {}
            codings = (resource.get("medicationCodeableConcept") or {}).get("coding", [])
            reasons = [c.get("code") for rc in resource.get("reasonCode", []) for c in rc.get("coding", [])]
            target = target or (reasons[0] if reasons else None)
            out.append((suggestion["uuid"], codings[0].get("code") if codings else None))
    return target, out
