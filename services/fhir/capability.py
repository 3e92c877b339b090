"""The server's CapabilityStatement (`GET /fhir/metadata`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from clinrlhf import __version__
from clinrlhf.compliance.ai_transparency import AI_DEVICE, AI_MODEL_CARD, AI_PROVENANCE
from services.fhir.deidentify import BALLOT_OPERATION_URL as BALLOT_DEIDENTIFY_URL
from services.fhir.deidentify import OPERATION_URL as DEIDENTIFY_URL
from services.fhir.questionnaire import QUESTIONNAIRE_URL

SMART_SECURITY = {
    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
    "code": "SMART-on-FHIR",
}


def capability_statement(base_url: str) -> dict[str, Any]:
    resource = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date.today().isoformat(),
        "publisher": "clinrlhf",
        "kind": "instance",
        "software": {"name": "clinrlhf", "version": __version__},
        "implementation": {"description": "clinrlhf clinician feedback API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Clinician reviews of CDS suggestions. Bearer tokens with SMART v2 scopes are required.",
                "security": {
                    "service": [{"coding": [SMART_SECURITY]}],
                    "description": "JWT bearer tokens (ES256/RS256 and other asymmetric algorithms) from "
                    "`clinrlhf token` or a configured identity provider.",
                },
                "resource": [
                    {"type": "Questionnaire", "interaction": [{"code": "read"}]},
                    {
                        "type": "QuestionnaireResponse",
                        "interaction": [{"code": "create"}, {"code": "read"}],
                        "documentation": f"Answers to {QUESTIONNAIRE_URL}; idempotent create.",
                    },
                    # HL7 AI Transparency on FHIR: what every card's drafts point to.
                    {
                        "type": "Provenance",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "supportedProfile": [AI_PROVENANCE],
                        "searchParam": [
                            {
                                "name": "target",
                                "type": "reference",
                                "documentation": "MedicationRequest/{id} of a card's draft",
                            }
                        ],
                        "documentation": "A card's AI provenance; its id is the card's uuid.",
                    },
                    {"type": "Device", "interaction": [{"code": "read"}], "supportedProfile": [AI_DEVICE]},
                    {
                        "type": "DocumentReference",
                        "interaction": [{"code": "read"}],
                        "supportedProfile": [AI_MODEL_CARD],
                        "documentation": "A model version's model card (Markdown).",
                    },
                ],
                # DARTS draft: de-identify a hospital's own Bundle (role `deidentifier`).
                "operation": [
                    {"name": "deidentify", "definition": DEIDENTIFY_URL},
                    {"name": "de-identify", "definition": BALLOT_DEIDENTIFY_URL},  # the 1.0.0 ballot's name
                ],
            }
        ],
    }
    CapabilityStatement.model_validate(resource)
    return resource
