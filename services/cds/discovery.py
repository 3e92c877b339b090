"""The CDS service this API offers, as CDS Hooks discovery describes it."""

from __future__ import annotations

from services.cds.schemas import Discovery, ServiceDefinition

SERVICE_ID = "clinrlhf-treatment"
HOOK = "patient-view"
CDS_HOOKS_VERSION = "3.0.0"  # semantic version, as 3.0 asks discovery to state it
HOOK_VERSION = "1.0"  # the patient-view hook definition's hookVersion (HL7 cds-hooks-library)

# The LOINC codes are the world's eGFR (33914-3, 62238-1) and potassium (2823-3, 6298-4) labs.
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|33914-3,"
    "http://loinc.org|62238-1,http://loinc.org|2823-3,http://loinc.org|6298-4&_sort=-date",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
}


def discovery() -> Discovery:
    return Discovery(
        services=[
            ServiceDefinition(
                hook=HOOK,
                id=SERVICE_ID,
                title="clinrlhf treatment suggestions",
                description="For each untreated problem on the patient's active list, two first-line prescriptions from "
                "a policy aligned with this hospital's clinicians' feedback; the first is recommended. Patient data is "
                "de-identified on arrival and only the de-identified case is stored.",
                prefetch=PREFETCH,
                usageRequirements="Send every prefetch key, or a fhirServer configured for your client and a "
                "fhirAuthorization whose SMART scopes cover the missing ones (patient/Patient.r, and .s on Condition, "
                "Observation, MedicationRequest and AllergyIntolerance; v1 .read accepted). Feedback to "
                "/cds-services/clinrlhf-treatment/feedback, with outcomeTimestamp and a reason from each card's "
                "overrideReasons, trains the next policy.",
                version=CDS_HOOKS_VERSION,
                hookVersion=HOOK_VERSION,
            )
        ]
    )
