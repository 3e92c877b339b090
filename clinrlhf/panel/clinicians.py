"""Simulated clinicians: noisy, biased, and (a few) adversarial raters.

Each clinician values a recommendation by the world's utility (+1 concordant, 0 off-target,
-2 unsafe), adds a personal bias for some drug classes, and chooses by a Bradley-Terry draw with
their own noise temperature. Two kinds of adversary: a *backwards* rater inverts the utility (every
label flipped, whatever the case: symmetric noise to a Bradley–Terry model), and a
*contraindication-blind* rater is honest except that a contraindicated drug looks first-line to
them (a targeted error: it only touches the cases where safety is at stake, always the same way).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.scoring import Outcome, acceptable, score, utility
from clinrlhf.world.world import World


@dataclass(frozen=True)
class Clinician:
    id: str
    noise: float = 0.3  # Bradley-Terry temperature: higher is noisier
    bias: dict[str, float] = field(default_factory=dict)  # drug class -> utility bonus
    adversarial: bool = False  # rates backwards
    blind_to_contraindications: bool = False  # a contraindicated drug looks concordant to them
    tie_margin: float = 0.05  # utilities closer than this are called a tie
    correction_rate: float = 0.3  # how often they name the right drug when both suggestions are wrong


@dataclass(frozen=True)
class PanelReview:
    choice: str  # "a" | "b" | "tie"
    rating_a: int
    rating_b: int
    correction: str | None  # a drug key, when both suggestions are wrong
    comment: str | None


def default_panel() -> list[Clinician]:
    """Ten clinicians: seven careful but noisy, two with personal biases, one adversarial (10%)."""
    return panel_of(10, 1)


ADVERSARY_KINDS = ("backwards", "contraindication-blind")


def panel_of(size: int, adversaries: int, kind: str = "backwards") -> list[Clinician]:
    """`size` clinicians of whom `adversaries` are adversaries of `kind` (ADVERSARY_KINDS). The
    honest ones cycle through seven careful but noisy raters and two with personal biases (a repeat
    gets a suffix, "dr-3-2"), so panel_of(10, 1) is the default panel and panel_of(20, 1) a 5%
    adversarial one."""
    if not 0 <= adversaries <= size or size < 1:
        raise ValueError(f"a panel of {size} clinicians cannot have {adversaries} adversaries")
    if kind not in ADVERSARY_KINDS:
        raise ValueError(f"adversary kind must be one of {', '.join(ADVERSARY_KINDS)}, got {kind!r}")
    honest = [_HONEST[i % len(_HONEST)] for i in range(size - adversaries)]
    honest = [
        replace(c, id=c.id if i < len(_HONEST) else f"{c.id}-{i // len(_HONEST) + 1}")
        for i, c in enumerate(honest)
    ]
    adversary_ids = ["dr-adversary"] + [f"dr-adversary-{k + 1}" for k in range(1, adversaries)]
    backwards, blind = kind == "backwards", kind == "contraindication-blind"
    return honest + [
        Clinician(a, noise=0.2, adversarial=backwards, blind_to_contraindications=blind)
        for a in adversary_ids[:adversaries]
    ]


_HONEST = (
    *(Clinician(f"dr-{i}", noise=0.15 + 0.05 * i) for i in range(7)),
    Clinician(
        "dr-anticoag-sceptic", noise=0.3, bias={"direct oral anticoagulant": -0.8, "beta blocker": 0.6}
    ),
    Clinician("dr-loyal-to-habit", noise=0.4, bias={"ACE inhibitor": 0.7, "biguanide": 0.5}),
)


def value(world: World, clinician: Clinician, facts: PatientFacts, target: str, drug: str | None) -> float:
    outcome = score(world, facts, target, drug)
    if clinician.blind_to_contraindications and outcome is Outcome.UNSAFE:
        outcome = Outcome.CONCORDANT  # the contraindication goes unseen: the drug looks first-line
    u = utility(outcome)
    if drug is not None:
        u += clinician.bias.get(world.drugs[drug].drug_class, 0.0)
    return -u if clinician.adversarial else u


def _rating(u: float, rng: random.Random, noise: float) -> int:
    # Utility +1 maps near 5, 0 near 3, -2 near 1.
    return max(1, min(5, round(3 + 1.6 * u + rng.gauss(0, 2 * noise))))


def review_pair(
    world: World,
    clinician: Clinician,
    facts: PatientFacts,
    target: str,
    drug_a: str | None,
    drug_b: str | None,
    rng: random.Random,
) -> PanelReview:
    ua, ub = (value(world, clinician, facts, target, d) for d in (drug_a, drug_b))
    if abs(ua - ub) < clinician.tie_margin:
        choice = "tie"
    else:
        p_a = 1.0 / (1.0 + math.exp(-(ua - ub) / clinician.noise))
        choice = "a" if rng.random() < p_a else "b"
    good = sorted(acceptable(world, facts, target))
    wrong = {score(world, facts, target, d) for d in (drug_a, drug_b)} <= {Outcome.UNSAFE, Outcome.OFF_TARGET}
    correction = (
        rng.choice(good)
        if good and wrong and not clinician.adversarial and rng.random() < clinician.correction_rate
        else None
    )
    return PanelReview(
        choice, _rating(ua, rng, clinician.noise), _rating(ub, rng, clinician.noise), correction, None
    )


# The non-adherence reasons (HL7 CodeSystem non-adherence-reason-codes, offered on every card) a
# simulated clinician gives when overriding: the recommendation harms this patient, or is not the
# treatment they would choose.
OVERRIDE_REASONS = {"unsafe": "patient-contraindication", "worse": "recipient-disagrees-evidence"}


def cds_outcome(
    world: World,
    clinician: Clinician,
    facts: PatientFacts,
    target: str,
    drugs: list[str | None],
    rng: random.Random,
) -> tuple[int | None, str | None]:
    """At the point of care: accept the best-valued suggestion if it looks good, else override.

    Returns (accepted index or None, override reason code or None)."""
    values = [value(world, clinician, facts, target, d) + rng.gauss(0, clinician.noise) for d in drugs]
    best = max(range(len(drugs)), key=values.__getitem__)
    if values[best] > 0.5:
        return best, None
    unsafe = score(world, facts, target, drugs[0]) is Outcome.UNSAFE
    return None, OVERRIDE_REASONS["unsafe" if unsafe else "worse"]
