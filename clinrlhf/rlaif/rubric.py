"""A guideline rubric that labels preference pairs: the "AI feedback" of the RLAIF baseline.

RLAIF (Bai et al., 2022, "Constitutional AI", https://arxiv.org/abs/2212.08073; Lee et al., 2023,
https://arxiv.org/abs/2309.00267) replaces human preference labels with a model's. Here the labeller
is NOT a language model: it is a deterministic rule-based judge standing in for an LLM judge given
the guideline. It reads the de-identified prompt (the same text the policy and the clinicians see),
rebuilds the findings it states, and ranks each response by the world's guideline: acceptable
(first eligible tier, minus contraindications) over off-target over contraindicated. Because the
prompt states every finding the world's rules use, this judge is as good as the guideline itself;
`error_rate` flips a share of its labels to model a fallible judge.

Its judgments carry `source = "ai"` and the clinician pseudonym RUBRIC, so they are never mistaken
for, or silently mixed with, clinicians' feedback (clinrlhf.feedback.screening refuses a mixed
snapshot unless asked).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from clinrlhf.feedback.judgment import Judgment
from clinrlhf.text.prompt import parse_drug, parse_target
from clinrlhf.world.facts import AGE_CAP, PatientFacts
from clinrlhf.world.scoring import EGFR_LIMIT, POTASSIUM_LIMIT, score, utility
from clinrlhf.world.world import World

SOURCE = "ai"
RUBRIC = "rlaif-rubric"
# Lab values that sit on the stated side of each limit: the prompt gives flags, not numbers.
_LAB_VALUES = {
    ("egfr", "low"): EGFR_LIMIT - 10.0,
    ("egfr", "normal"): EGFR_LIMIT + 40.0,
    ("potassium", "high"): POTASSIUM_LIMIT + 0.5,
    ("potassium", "normal"): POTASSIUM_LIMIT - 1.0,
}


@dataclass(frozen=True)
class RubricConfig:
    error_rate: float = 0.0
    """Share of labels flipped at random (0: the guideline exactly)."""
    seed: int = 0


def _section(words: list[str], name: str) -> list[str]:
    if name not in words:
        return []
    start = words.index(name) + 1
    end = words.index(";", start) if ";" in words[start:] else len(words)
    return words[start:end]


def _age(band: str) -> int:
    return AGE_CAP if band.endswith("+") else int(band.split("-")[0])


def facts_from_prompt(world: World, prompt: str) -> PatientFacts:
    """The findings a policy prompt states (clinrlhf.text.prompt), as PatientFacts. Ages are the
    band's lower bound, which keeps every age threshold of the world (65, 75) on the right side."""
    words = prompt.split()
    conditions = set()
    for key in _section(words, "problems"):
        if key in world.findings and world.findings[key].snomed:
            conditions.add(world.findings[key].snomed[0])
        elif key in world.targets:
            conditions.add(world.targets[key].snomed)
    allergies = {
        world.findings[f"{a}_allergy"].snomed[0]
        for a in _section(words, "allergies")
        if f"{a}_allergy" in world.findings
    }
    labs = {}
    lab_words = _section(words, "labs")
    for name, finding in (("egfr", "egfr_lt_30"), ("potassium", "potassium_gt_5")):
        if name in lab_words and (name, lab_words[lab_words.index(name) + 1]) in _LAB_VALUES:
            flag = lab_words[lab_words.index(name) + 1]
            labs[world.findings[finding].loinc[0]] = _LAB_VALUES[(name, flag)]
    return PatientFacts(
        age=_age(_section(words, "age")[0]),
        sex=_section(words, "sex")[0],
        conditions=frozenset(conditions),
        allergies=frozenset(allergies),
        labs=labs,
    )


def grade(world: World, prompt: str, response: str) -> float:
    """The guideline utility of one response: +1 acceptable, 0 off-target or missed, −2 unsafe."""
    target = parse_target(world, prompt)
    if target is None:
        raise ValueError("the prompt names no target the rubric knows")
    return utility(score(world, facts_from_prompt(world, prompt), target, parse_drug(world, response)))


def preferred(world: World, prompt: str, a: str, b: str) -> int | None:
    """0 if the rubric prefers `a`, 1 if `b`, None for a tie."""
    ga, gb = grade(world, prompt, a), grade(world, prompt, b)
    return None if ga == gb else 0 if ga > gb else 1


def _cards(judgments: Iterable[Judgment]) -> Iterator[Judgment]:
    """One pairwise comparison per card: the first two-response judgment seen of it."""
    seen: set[str] = set()
    for j in judgments:
        if j.card not in seen and len(j.responses) == 2 and j.responses[0] != j.responses[1]:
            seen.add(j.card)
            yield j


def label(world: World, judgments: Iterable[Judgment], config: RubricConfig | None = None) -> list[Judgment]:
    """AI pairwise judgments of the cards the given judgments are about (their prompts and the
    two responses shown), one per card, source "ai"."""
    config = config or RubricConfig()
    rng = random.Random(config.seed)
    out = []
    for j in _cards(judgments):
        choice = preferred(world, j.prompt, *j.responses)
        if choice is not None and rng.random() < config.error_rate:
            choice = 1 - choice
        out.append(
            Judgment(
                kind="pairwise",
                card=j.card,
                patient=j.patient,
                clinician=RUBRIC,
                prompt=j.prompt,
                responses=j.responses,
                preferred=choice,
                source=SOURCE,
            )
        )
    return out
