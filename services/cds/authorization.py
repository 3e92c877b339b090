"""What the access token a CDS client passes lets the service fetch (CDS Hooks 3.0, "FHIR Resource
Access"): `fhirAuthorization.scope` holds SMART App Launch v2 scopes (`patient/Observation.rs`;
v1 `patient/Observation.read` still accepted), and the service compares them with what each
missing prefetch key needs before it calls the FHIR server.

A need the scopes do not cover is refused up front (412, naming the resource and permission):
a fetch bound to fail costs the EHR a round trip, and a record read only in part (no allergy list)
could make a card suggest a drug the patient is allergic to. Patient scopes count only for the
patient `fhirAuthorization.patient` names (all patients, when it names none).
"""

from __future__ import annotations

from clinrlhf.identity import grants
from services.cds.schemas import FHIRAuthorization

# Prefetch key -> (resource type, SMART permission): a read of the Patient, searches of the rest.
NEEDS: dict[str, tuple[str, str]] = {
    "patient": ("Patient", "r"),
    "conditions": ("Condition", "s"),
    "observations": ("Observation", "s"),
    "medications": ("MedicationRequest", "s"),
    "allergies": ("AllergyIntolerance", "s"),
}


def ungranted(auth: FHIRAuthorization, patient_id: str, keys: list[str]) -> list[str]:
    """`Resource.permission` for each of `keys` the token's scopes do not let the service fetch."""
    scopes = auth.scope.split()
    for_this_patient = auth.patient is None or auth.patient == patient_id
    contexts = ("patient", "user", "system") if for_this_patient else ("user", "system")
    needs = sorted({NEEDS[k] for k in keys})
    return [f"{r}.{p}" for r, p in needs if not grants(scopes, r, p, contexts=contexts)]


def refusal(lacking: list[str]) -> str:
    """Fixed text naming what is lacking; the client's scope string is never quoted."""
    return (
        f"fhirAuthorization.scope does not let this service fetch the missing prefetch: {', '.join(lacking)} "
        "not granted for this patient (SMART v2 scopes such as patient/AllergyIntolerance.rs; "
        "v1 .read is accepted)"
    )
