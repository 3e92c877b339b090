"""The override reasons every CDS card offers, and the only ones feedback may name.

CDS Hooks says an override reason in feedback "MUST be one of the override reasons" the card
offered; the store holds to that too, so that no free-form string from a feedback body is ever
written (a code is a short token from this list, never what the client typed).
"""

from __future__ import annotations

SYSTEM = "https://clinrlhf.dev/fhir/CodeSystem/override-reason"
# code -> display, in the order cards list them.
REASONS = {
    "contraindicated": "Contraindicated for this patient",
    "patient-preference": "Patient preference",
    "already-treated": "Already treated",
    "not-indicated": "Not indicated",
    "other": "Other",
}


def is_offered(system: str | None, code: str | None) -> bool:
    """Whether (system, code) is one of the reasons cards offer; a code without a system is read in
    the cards' own system."""
    return system in (None, SYSTEM) and code in REASONS
