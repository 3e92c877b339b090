"""What the review page shows for one card: the de-identified patient (labs with their units), the
guideline for the target as a clinician reads it ("First line …; if that is contraindicated …", the
tier that applies marked), each drug to avoid with its reason, two suggestions side by side in
drug names rather than model tokens, and which model made them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from clinrlhf.store.models import Card, Suggestion
from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.labs import LAB_DISPLAY
from clinrlhf.world.scoring import EGFR_LIMIT, POTASSIUM_LIMIT, contraindicated, findings_of
from clinrlhf.world.world import World


def either(items: tuple[str, ...]) -> str:
    """ "a", "a or b", "a, b or c": any one of a tier's drugs will do."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


@dataclass(frozen=True)
class TierView:
    heading: (
        str  # "First line", "If <findings>", "If <drugs above> is contraindicated", "Otherwise, first line"
    )
    drugs: tuple[str, ...]
    applies: bool  # the first tier that holds and leaves a drug after contraindications

    @property
    def choice(self) -> str:
        return either(self.drugs)


@dataclass(frozen=True)
class AvoidView:
    drug: str
    reasons: tuple[str, ...]  # the patient's findings that contraindicate it


@dataclass(frozen=True)
class PatientView:
    age: int
    sex: str
    findings: tuple[str, ...]  # the world's findings that hold: conditions, allergies, labs, risk
    medications: tuple[str, ...]
    labs: tuple[tuple[str, str], ...]  # (name, value with its unit)


@dataclass(frozen=True)
class SuggestionView:
    id: str
    text: str
    drug: str | None


@dataclass(frozen=True)
class ModelView:
    version: str  # the card's model version: policy folder @ weights digest
    approved: bool  # it is the version the `production` alias names
    status: str


@dataclass(frozen=True)
class CaseView:
    card_id: str
    target: str
    model: ModelView
    patient: PatientView
    tiers: tuple[TierView, ...]
    avoid: tuple[AvoidView, ...]  # drugs contraindicated for this patient, with why
    a: SuggestionView
    b: SuggestionView


# Findings that world.json defines by a rule rather than a display name; units as in LAB_DISPLAY.
_RULE_LABELS = {
    "chads_high": "CHA2DS2-VASc high",
    "egfr_lt_30": f"eGFR < {EGFR_LIMIT:g} mL/min/1.73 m²",
    "potassium_gt_5": f"potassium > {POTASSIUM_LIMIT:.1f} mmol/L",
}


def label(world: World, key: str) -> str:
    finding = world.findings.get(key)
    if finding is not None and finding.display and finding.display != key:
        return finding.display
    return _RULE_LABELS.get(key, key.replace("_", " "))


def _in_sentence(text: str) -> str:
    """ "Normal pregnancy" -> "normal pregnancy" mid-sentence; "CHA2DS2-VASc" and "eGFR" stay."""
    return text[0].lower() + text[1:] if text[:2].istitle() else text


def _drug(world: World, key: str) -> str:
    drug = world.drugs.get(key)
    return drug.display if drug else key.replace("_", " ")


def patient_view(world: World, facts: PatientFacts) -> PatientView:
    by_rxnorm = {d.rxnorm: d.display for d in world.drugs.values()}
    labs = []
    for code, value in facts.labs.items():
        name, unit = LAB_DISPLAY.get(code, (f"LOINC {code}", ""))
        labs.append((name, f"{value:g} {unit}".strip()))
    return PatientView(
        age=facts.age,
        sex=facts.sex,
        findings=tuple(sorted(label(world, k) for k in findings_of(world, facts) if k != "female")),
        medications=tuple(sorted(by_rxnorm.get(code, f"RxNorm {code}") for code in facts.medications)),
        labs=tuple(sorted(labs)),
    )


def _heading(world: World, when: tuple[str, ...], before: list[tuple[tuple[str, ...], bool]]) -> str:
    """How a clinician reads one tier, given the tiers above it. Tiers are read top down: the first
    whose findings hold and which leaves a drug that is not contraindicated applies
    (clinrlhf.world.scoring.acceptable)."""
    if when:
        return "If " + " and ".join(_in_sentence(label(world, w)) for w in when)
    unconditional = [drugs for drugs, conditional in before if not conditional]
    if unconditional:  # a fallback for the unconditional tier just above it
        above = unconditional[-1]
        return f"If {either(tuple(_drug(world, d) for d in above))} {'is' if len(above) == 1 else 'are'} contraindicated"
    return "Otherwise, first line" if before else "First line"


def tier_views(world: World, facts: PatientFacts, target: str) -> tuple[TierView, ...]:
    """The target's tiers; `applies` follows `clinrlhf.world.scoring.acceptable`."""
    found, banned = findings_of(world, facts), contraindicated(world, facts)
    views, applied = [], False
    before: list[tuple[tuple[str, ...], bool]] = []  # each tier above: (drugs, conditional)
    for tier in world.targets[target].tiers:
        holds = set(tier.when) <= found and any(d not in banned for d in tier.drugs)
        heading = _heading(world, tier.when, before)
        views.append(TierView(heading, tuple(_drug(world, d) for d in tier.drugs), holds and not applied))
        before.append((tier.drugs, bool(tier.when)))
        applied = applied or holds
    return tuple(views)


def avoid_views(world: World, facts: PatientFacts) -> tuple[AvoidView, ...]:
    """Each contraindicated drug, with every finding of the patient's that rules it out."""
    found = findings_of(world, facts)
    reasons: dict[str, list[str]] = {}
    for key, drugs in world.contraindicated.items():
        if key in found:
            for drug in drugs:
                reasons.setdefault(drug, []).append(_in_sentence(label(world, key)))
    return tuple(AvoidView(_drug(world, d), tuple(r)) for d, r in sorted(reasons.items()))


def readable_suggestion(world: World, text: str) -> str:
    """The model writes a drug as its world key (insulin_glargine 10 units …); a clinician reads
    its name. Only whole tokens that are drug keys change; the rest is the model's text."""
    return " ".join(_drug(world, t) if t in world.drugs else t for t in text.split())


def model_view(version: str, *, production: str | None, production_label: str | None) -> ModelView:
    """`production`: the model version of the policy the `production` alias names, if any."""
    if production is not None and version == production:
        return ModelView(version, True, f"approved: the production version ({production_label})")
    if production is None:
        return ModelView(version, False, "not approved for production: no version is in production")
    return ModelView(
        version, False, f"not approved for production: the production version is {production_label}"
    )


def _view(world: World, s: Suggestion) -> SuggestionView:
    return SuggestionView(
        id=s.id, text=readable_suggestion(world, s.text), drug=_drug(world, s.drug) if s.drug else None
    )


def a_first(clinician: str, card_id: str) -> bool:
    """Which suggestion is shown on the left: fixed per clinician and card (a reload shows the same
    page), but balanced over cards, so that a preference for the left side, or for the recommended
    suggestion, does not become a preference for rank 0."""
    return hashlib.sha256(f"{clinician}\x00{card_id}".encode()).digest()[0] % 2 == 0


def case_view(world: World, card: Card, clinician: str, model: ModelView) -> CaseView:
    facts = PatientFacts.from_json(card.case.facts)
    first, second = card.suggestions[0], card.suggestions[1]
    left, right = (first, second) if a_first(clinician, card.id) else (second, first)
    return CaseView(
        card_id=card.id,
        target=world.targets[card.target].display if card.target in world.targets else card.target,
        model=model,
        patient=patient_view(world, facts),
        tiers=tier_views(world, facts, card.target) if card.target in world.targets else (),
        avoid=avoid_views(world, facts),
        a=_view(world, left),
        b=_view(world, right),
    )
