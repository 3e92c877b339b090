"""What the review page shows for one card: the de-identified patient, the guideline for the
target (the world's tiers, the one that applies marked), and two suggestions side by side."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from clinrlhf.store.models import Card, Suggestion
from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.scoring import contraindicated, findings_of
from clinrlhf.world.world import World


@dataclass(frozen=True)
class TierView:
    when: tuple[str, ...]  # findings that must all hold; empty for the default tier
    drugs: tuple[str, ...]
    applies: bool  # the first tier that holds and leaves a drug after contraindications


@dataclass(frozen=True)
class PatientView:
    age: int
    sex: str
    findings: tuple[str, ...]  # the world's findings that hold: conditions, allergies, labs, risk
    medications: tuple[str, ...]
    labs: tuple[tuple[str, str], ...]  # (name, value)


@dataclass(frozen=True)
class SuggestionView:
    id: str
    text: str
    drug: str | None


@dataclass(frozen=True)
class CaseView:
    card_id: str
    target: str
    model_version: str
    patient: PatientView
    tiers: tuple[TierView, ...]
    avoid: tuple[str, ...]  # drugs contraindicated for this patient
    a: SuggestionView
    b: SuggestionView


# Findings that world.json defines by a rule rather than a display name.
_RULE_LABELS = {
    "chads_high": "CHA2DS2-VASc high",
    "egfr_lt_30": "eGFR < 30",
    "potassium_gt_5": "potassium > 5",
}
_LAB_NAMES = {"egfr_lt_30": "eGFR", "potassium_gt_5": "potassium"}


def label(world: World, key: str) -> str:
    finding = world.findings.get(key)
    if finding is not None and finding.display and finding.display != key:
        return finding.display
    return _RULE_LABELS.get(key, key.replace("_", " "))


def _drug(key: str) -> str:
    return key.replace("_", " ")


def patient_view(world: World, facts: PatientFacts) -> PatientView:
    by_loinc = {code: key for key, f in world.findings.items() for code in f.loinc}
    by_rxnorm = {d.rxnorm: d.key for d in world.drugs.values()}
    return PatientView(
        age=facts.age,
        sex=facts.sex,
        findings=tuple(sorted(label(world, k) for k in findings_of(world, facts) if k != "female")),
        medications=tuple(sorted(_drug(by_rxnorm.get(code, f"RxNorm {code}")) for code in facts.medications)),
        labs=tuple(
            sorted(
                (_LAB_NAMES.get(by_loinc.get(code, ""), f"LOINC {code}"), f"{value:g}")
                for code, value in facts.labs.items()
            )
        ),
    )


def tier_views(world: World, facts: PatientFacts, target: str) -> tuple[TierView, ...]:
    """The target's tiers; `applies` follows `clinrlhf.world.scoring.acceptable`."""
    found, banned = findings_of(world, facts), contraindicated(world, facts)
    views, applied = [], False
    for tier in world.targets[target].tiers:
        holds = set(tier.when) <= found and any(d not in banned for d in tier.drugs)
        views.append(
            TierView(
                tuple(label(world, w) for w in tier.when),
                tuple(_drug(d) for d in tier.drugs),
                holds and not applied,
            )
        )
        applied = applied or holds
    return tuple(views)


def _view(s: Suggestion) -> SuggestionView:
    return SuggestionView(id=s.id, text=s.text, drug=_drug(s.drug) if s.drug else None)


def a_first(clinician: str, card_id: str) -> bool:
    """Which suggestion is shown on the left: fixed per clinician and card (a reload shows the same
    page), but balanced over cards, so that a preference for the left side, or for the recommended
    suggestion, does not become a preference for rank 0."""
    return hashlib.sha256(f"{clinician}\x00{card_id}".encode()).digest()[0] % 2 == 0


def case_view(world: World, card: Card, clinician: str) -> CaseView:
    facts = PatientFacts.from_json(card.case.facts)
    first, second = card.suggestions[0], card.suggestions[1]
    left, right = (first, second) if a_first(clinician, card.id) else (second, first)
    return CaseView(
        card_id=card.id,
        target=world.targets[card.target].display if card.target in world.targets else card.target,
        model_version=card.model_version,
        patient=patient_view(world, facts),
        tiers=tier_views(world, facts, card.target) if card.target in world.targets else (),
        avoid=tuple(sorted(_drug(d) for d in contraindicated(world, facts))),
        a=_view(left),
        b=_view(right),
    )
