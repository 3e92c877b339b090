"""The three cohorts of the loop, and the historical-practice examples, de-identified at the door."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import date

from clinrlhf.eval.evaluate import Scenario
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.facts import facts_from_bundle
from clinrlhf.world.patients import SyntheticPatient, generate_patients
from clinrlhf.world.practice import historical_choice
from clinrlhf.world.world import World
from privacy.deid import deidentify_bundle


@dataclass(frozen=True)
class Cohorts:
    history: list[SyntheticPatient]  # treated before any feedback: the SFT corpus
    feedback: list[SyntheticPatient]  # seen by the service and judged by the panel
    heldout: list[SyntheticPatient]  # never trained on; evaluation only


def make_cohorts(world: World, sizes: tuple[int, int, int], seed: int, today: date) -> Cohorts:
    history, feedback, heldout = (
        generate_patients(world, n, seed * 3 + i, today) for i, n in enumerate(sizes)
    )
    return Cohorts(history, feedback, heldout)


def practice_examples(
    world: World, patients: list[SyntheticPatient], key: bytes, today: date, seed: int
) -> list[tuple[str, str]]:
    """(prompt, response) pairs from past prescriptions. The prompt is rendered from the
    de-identified record, exactly as the service will see a live patient."""
    rng = random.Random(seed)
    examples = []
    for patient in patients:
        facts = facts_from_bundle(deidentify_bundle(patient.bundle, key=key, today=today).bundle, on=today)
        for target in patient.targets:
            drug = historical_choice(world, patient.facts, target, rng)
            examples.append((render_prompt(world, facts, target), render_response(world, drug)))
    return examples


def examples_sha256(examples: list[tuple[str, str]]) -> str:
    lines = (json.dumps({"prompt": p, "response": r}, sort_keys=True) + "\n" for p, r in examples)
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def scenarios(patients: list[SyntheticPatient]) -> list[Scenario]:
    return [Scenario(p.facts, t) for p in patients for t in p.targets]
