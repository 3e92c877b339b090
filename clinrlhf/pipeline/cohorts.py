"""The cohorts of the loop, and the historical-practice examples, de-identified at the door.

Four cohorts, three jobs: training (`history`, the SFT corpus; `feedback`, what the panel judges),
**validation** (every default, tuning and checkpoint choice is made on it) and **test** (reported
once per run, never used to decide anything). The test cohort is sealed inside tuning entry points
(clinrlhf.pipeline.tuning): reading it there raises, so a tuning script cannot peek by accident."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from clinrlhf.eval.evaluate import Scenario
from clinrlhf.pipeline.seeds import derive_seed
from clinrlhf.text.prompt import render_prompt, render_response
from clinrlhf.world.facts import facts_from_bundle
from clinrlhf.world.patients import SyntheticPatient, generate_patients
from clinrlhf.world.practice import historical_choice
from clinrlhf.world.world import World
from privacy.deid import deidentify_bundle

_SEALED_BY: ContextVar[str | None] = ContextVar("clinrlhf_test_cohort_sealed_by", default=None)


class TestCohortSealedError(RuntimeError):
    """A tuning entry point read the test cohort: its decisions would be fitted to the reported figure."""

    __test__ = False  # not a pytest class, whatever its name says


@contextmanager
def sealed_test_cohort(entry_point: str) -> Iterator[None]:
    """Within this block `Cohorts.test` raises TestCohortSealedError naming `entry_point`, and
    make_cohorts draws no test patients at all."""
    token = _SEALED_BY.set(entry_point)
    try:
        yield
    finally:
        _SEALED_BY.reset(token)


class CohortSizes(NamedTuple):
    """Patients per cohort; a cohort of 0 is not drawn (each is seeded on its own, so the others are
    drawn exactly as in a run that drew all four)."""

    history: int = 0
    feedback: int = 0
    validation: int = 0
    test: int = 0


@dataclass(frozen=True)
class Cohorts:
    history: list[SyntheticPatient]  # treated before any feedback: the SFT corpus
    feedback: list[SyntheticPatient]  # seen by the service and judged by the panel
    validation: list[SyntheticPatient]  # never trained on; every tuning or checkpoint decision
    sealed_test: list[SyntheticPatient] = field(repr=False)  # read through `test`, which guards it

    @property
    def test(self) -> list[SyntheticPatient]:
        """Never trained on and never decided on: the cohort the run reports, once."""
        entry_point = _SEALED_BY.get()
        if entry_point is not None:
            raise TestCohortSealedError(
                f"{entry_point} is a tuning entry point: it decides on the validation cohort and may "
                "not read the test cohort"
            )
        return self.sealed_test


def cohort_seeds(seed: int) -> CohortSizes:
    """Each cohort's generator seed in the run seeded `seed`. History, feedback and validation keep
    the 3·seed + i draws every earlier run used (validation is the cohort earlier defaults were tuned
    on, then called held-out); test is drawn from its own stream, so no earlier run ever saw it."""
    return CohortSizes(3 * seed, 3 * seed + 1, 3 * seed + 2, derive_seed(seed, "cohort.test"))


def make_cohorts(world: World, sizes: CohortSizes, seed: int, today: date) -> Cohorts:
    """The four cohorts of the run seeded `seed`, `sizes` patients each (a CohortSizes or a
    (history, feedback, validation, test) tuple)."""
    sizes = CohortSizes(*sizes)
    if _SEALED_BY.get() is not None:
        sizes = sizes._replace(test=0)  # nothing to leak, and nothing to spend drawing it
    seeds = cohort_seeds(seed)
    history, feedback, validation, test = (
        generate_patients(world, n, cohort_seed, today) if n else []
        for n, cohort_seed in zip(sizes, seeds, strict=True)
    )
    return Cohorts(history, feedback, validation, test)


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
