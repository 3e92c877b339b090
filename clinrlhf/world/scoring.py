"""The world's semantics and scoring rules (benchmark README), as pure functions of patient facts."""

from __future__ import annotations

from enum import StrEnum

from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.world import World

# CHA2DS2-VASc points as listed in world.json's `chads_high` rule.
_CHADS_POINTS = {
    "heart_failure": 1,
    "hypertension": 1,
    "diabetes": 1,
    "stroke": 2,
    "myocardial_infarction": 1,
}
EGFR_LIMIT = 30.0
POTASSIUM_LIMIT = 5.0


class Outcome(StrEnum):
    CONCORDANT = "concordant"
    OFF_TARGET = "off-target"
    UNSAFE = "unsafe"
    MISSED = "missed"


_UTILITY = {Outcome.CONCORDANT: 1.0, Outcome.OFF_TARGET: 0.0, Outcome.UNSAFE: -2.0, Outcome.MISSED: 0.0}


def _lab(world: World, facts: PatientFacts, key: str) -> float | None:
    for code in world.finding_codes(key):
        if code in facts.labs:
            return facts.labs[code]
    return None


def chads_vasc(world: World, facts: PatientFacts, coded: set[str]) -> int:
    points = sum(p for key, p in _CHADS_POINTS.items() if key in coded)
    points += 2 if facts.age >= 75 else 1 if facts.age >= 65 else 0
    return points + (1 if facts.sex == "female" else 0)


def findings_of(world: World, facts: PatientFacts) -> frozenset[str]:
    """Every finding key that holds for the patient."""
    found: set[str] = set()
    for key, finding in world.findings.items():
        if (
            finding.resource == "Condition"
            and facts.conditions & set(finding.snomed)
            or finding.resource == "AllergyIntolerance"
            and facts.allergies & set(finding.snomed)
        ):
            found.add(key)
    egfr, potassium = _lab(world, facts, "egfr_lt_30"), _lab(world, facts, "potassium_gt_5")
    if egfr is not None and egfr < EGFR_LIMIT:
        found.add("egfr_lt_30")
    if potassium is not None and potassium > POTASSIUM_LIMIT:
        found.add("potassium_gt_5")
    if facts.sex == "female":
        found.add("female")
    threshold = 3 if facts.sex == "female" else 2
    if chads_vasc(world, facts, found) >= threshold:
        found.add("chads_high")
    return frozenset(found)


def contraindicated(world: World, facts: PatientFacts) -> frozenset[str]:
    """Union of the drug lists of every finding the patient has."""
    found = findings_of(world, facts)
    return frozenset(d for key, drugs in world.contraindicated.items() if key in found for d in drugs)


def targets_of(world: World, facts: PatientFacts) -> list[str]:
    """Active target conditions with no active prescription of any of that target's drugs."""
    active = {world.drugs[d].rxnorm: d for d in world.drugs}
    on = {active[c] for c in facts.medications if c in active}
    return [
        key
        for key, target in world.targets.items()
        if target.snomed in facts.conditions and not on & set(target.drugs)
    ]


def acceptable(world: World, facts: PatientFacts, target: str) -> frozenset[str]:
    """Drugs of the first applicable tier that survive the contraindications."""
    found, banned = findings_of(world, facts), contraindicated(world, facts)
    for tier in world.targets[target].tiers:
        if not set(tier.when) <= found:
            continue
        remaining = [d for d in tier.drugs if d not in banned]
        if remaining:
            return frozenset(remaining)
    return frozenset()


def score(world: World, facts: PatientFacts, target: str, drug: str | None) -> Outcome:
    """Classify one recommendation for one (patient, target) pair."""
    if drug is None:
        return Outcome.MISSED
    if drug in acceptable(world, facts, target):
        return Outcome.CONCORDANT
    if drug in contraindicated(world, facts):
        return Outcome.UNSAFE
    return Outcome.OFF_TARGET


def utility(outcome: Outcome) -> float:
    """The utility a simulated clinician assigns before noise: +1, 0, -2 or 0."""
    return _UTILITY[outcome]
