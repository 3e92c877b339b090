"""The benchmark world: the synthetic ground truth that generates, judges and evaluates.

It is a deliberately simplified prescribing world for testing, NOT clinical guidance.
"""

from clinrlhf.world.facts import PatientFacts, facts_from_bundle
from clinrlhf.world.scoring import (
    Outcome,
    acceptable,
    contraindicated,
    findings_of,
    score,
    targets_of,
    utility,
)
from clinrlhf.world.world import Drug, Target, Tier, World, load_world

__all__ = [
    "Drug",
    "Outcome",
    "PatientFacts",
    "Target",
    "Tier",
    "World",
    "acceptable",
    "contraindicated",
    "facts_from_bundle",
    "findings_of",
    "load_world",
    "score",
    "targets_of",
    "utility",
]
