"""A "historical practice": how clinicians prescribed before any feedback, errors included.

Real prescribing errors are rarely random. They are habits: the drug a clinician reaches for first,
applied without checking the modifiers (pregnancy, kidney function, potassium, allergies, stroke
risk). Each prescription here follows the guideline, follows the habit, or is a random slip.
The supervised policy learns from this, so it inherits the habits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.scoring import acceptable
from clinrlhf.world.world import World

# The drug reached for by habit, regardless of the patient's modifiers.
HABITS = {
    "hypertension": "lisinopril",  # unsafe in pregnancy and hyperkalaemia
    "diabetes": "metformin",  # unsafe when eGFR < 30; off-target in pregnancy
    "atrial_fibrillation": "metoprolol",  # off-target when stroke risk calls for anticoagulation
    "pneumonia": "amoxicillin",  # unsafe with a penicillin allergy
    "cystitis": "nitrofurantoin",  # unsafe when eGFR < 30
    "hyperlipidemia": "atorvastatin",
    "hypothyroidism": "levothyroxine",
    "depression": "sertraline",
}


@dataclass(frozen=True)
class PracticeStyle:
    guideline: float = 0.18  # follows the world's tiers and contraindications
    habit: float = 0.62  # reaches for the habitual drug
    # the rest: a random slip to any drug in the formulary


def historical_choice(
    world: World, facts: PatientFacts, target: str, rng: random.Random, style: PracticeStyle = PracticeStyle()
) -> str:
    u = rng.random()
    good = sorted(acceptable(world, facts, target))
    if u < style.guideline and good:
        return rng.choice(good)
    if u < style.guideline + style.habit:
        return HABITS[target]
    return rng.choice(sorted(world.drugs))
