"""CDS cards from stored suggestions: one card per untreated target, a draft MedicationRequest per
suggestion, and a rationale naming the findings that decide that target's treatment."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest

from clinrlhf.store import override_reasons
from clinrlhf.store.models import Card as StoredCard
from clinrlhf.world.facts import RXNORM, SNOMED, PatientFacts
from clinrlhf.world.scoring import contraindicated, findings_of
from clinrlhf.world.world import World
from services.cds.schemas import Action, CardSuggestion, CdsCard, Coding, Source

OVERRIDE_REASON_SYSTEM = override_reasons.SYSTEM
# Every card offers CDS Hooks 3.0's clinical set of non-adherence reasons, each with its display
# (cds-resp-4); feedback may name these, any other code of that CodeSystem, or the client's own.
OVERRIDE_REASONS = [Coding(system=r.system, code=r.code, display=r.display) for r in override_reasons.OFFERED]
_FINDING_NAMES = {
    "egfr_lt_30": "eGFR below 30",
    "potassium_gt_5": "potassium above 5.0 mmol/L",
    "chads_high": "high CHA2DS2-VASc score",
    "female": "female sex",
}


def drug_name(drug: str) -> str:
    return drug.replace("_", " ")


def finding_name(world: World, key: str) -> str:
    if key in _FINDING_NAMES:
        return _FINDING_NAMES[key]
    display = world.findings[key].display if key in world.findings else key
    return (display if display and display != key else key.replace("_", " ")).lower()


def relevant_findings(world: World, facts: PatientFacts, target: str) -> list[str]:
    """The patient's findings that change this target's treatment: tier conditions, and
    contraindications of any drug the target uses."""
    spec = world.targets[target]
    tiers = {f for tier in spec.tiers for f in tier.when}
    contra = {f for f, drugs in world.contraindicated.items() if set(drugs) & set(spec.drugs)}
    return sorted(findings_of(world, facts) & (tiers | contra))


def medication_request(world: World, drug: str, target: str, patient_id: str) -> dict[str, Any]:
    """A draft MedicationRequest proposal, validated against FHIR R4B before it leaves the service."""
    spec, target_spec = world.drugs[drug], world.targets[target]
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": spec.rxnorm, "display": drug_name(drug)}],
            "text": drug_name(drug),
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [
            {"coding": [{"system": SNOMED, "code": target_spec.snomed, "display": target_spec.display}]}
        ],
        "dosageInstruction": [{"text": spec.sig}],
    }
    MedicationRequest.model_validate(resource)
    return resource


def _detail(world: World, facts: PatientFacts, target: str, version: str, unsafe: list[str]) -> str:
    spec = world.targets[target]
    found = relevant_findings(world, facts, target)
    considered = ", ".join(finding_name(world, f) for f in found) or "none that change first-line treatment"
    lines = [
        f"Untreated **{spec.display}** (SNOMED CT {spec.snomed}): no active prescription treats it.",
        f"Findings considered: {considered}.",
        f"The first suggestion is the recommendation of policy `{version}`; the second is its best alternative.",
    ]
    banned = {f: world.contraindicated[f] for f in findings_of(world, facts) if f in world.contraindicated}
    for drug in unsafe:
        why = ", ".join(finding_name(world, f) for f, drugs in banned.items() if drug in drugs)
        lines.append(f"**Caution:** {drug_name(drug)} is contraindicated here ({why}).")
    return "\n\n".join(lines)


def build_card(
    world: World, card: StoredCard, facts: PatientFacts, patient_id: str, model_card_url: str
) -> CdsCard:
    """The CDS Hooks card for a stored card; suggestions whose text names no drug are left out."""
    banned = contraindicated(world, facts)
    shown = [s for s in card.suggestions if s.drug is not None]
    unsafe = [s.drug for s in shown if s.drug in banned]
    suggestions = []
    for s in shown:
        assert s.drug is not None
        caution = " (caution: contraindicated)" if s.drug in banned else ""
        action = Action(
            type="create",
            description=f"Draft a prescription: {drug_name(s.drug)} {world.drugs[s.drug].sig}",
            resource=medication_request(world, s.drug, card.target, patient_id),
        )
        suggestions.append(
            CardSuggestion(
                label=f"Prescribe {drug_name(s.drug)} {world.drugs[s.drug].sig}{caution}",
                uuid=s.id,
                isRecommended=s.rank == shown[0].rank,
                actions=[action],
            )
        )
    first = drug_name(shown[0].drug) if shown and shown[0].drug else "no suggestion"
    summary = f"{world.targets[card.target].display}: consider {first}"
    return CdsCard(
        uuid=card.id,
        summary=summary[:139],  # CDS Hooks: a "<140-character summary"
        indicator="warning" if unsafe else "info",
        detail=_detail(world, facts, card.target, card.model_version, [d for d in unsafe if d]),
        source=Source(
            label=f"clinrlhf {card.model_version}",
            url=model_card_url,
            topic=Coding(
                system=SNOMED,
                code=world.targets[card.target].snomed,
                display=world.targets[card.target].display,
            ),
        ),
        suggestions=suggestions,
        selectionBehavior="at-most-one",
        overrideReasons=OVERRIDE_REASONS,
    )
