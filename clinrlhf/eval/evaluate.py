"""Score a policy's greedy recommendations on held-out scenarios, overall and by subgroup."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.policy.generate import sample
from clinrlhf.text.prompt import age_band, parse_drug, render_prompt
from clinrlhf.world.facts import PatientFacts
from clinrlhf.world.scoring import Outcome, score
from clinrlhf.world.world import World


@dataclass(frozen=True)
class Scenario:
    """One (patient, target) pair to recommend for."""

    facts: PatientFacts
    target: str


@dataclass
class Evaluation:
    concordance: float
    unsafe_rate: float
    n: int
    subgroups: dict[str, dict[str, dict[str, float]]] = field(
        default_factory=dict
    )  # attr -> group -> metrics
    outcomes: list[Outcome] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        """MLflow metric names from CONTRACT: eval.<metric> and eval.<metric>.<attribute>.<group>."""
        out = {
            "eval.concordance": self.concordance,
            "eval.unsafe_rate": self.unsafe_rate,
            "eval.n": float(self.n),
        }
        for attribute, groups in self.subgroups.items():
            for group, values in groups.items():
                for metric, value in values.items():
                    out[f"eval.{metric}.{attribute}.{group}"] = value
        return out


def subgroup_of(facts: PatientFacts) -> dict[str, str]:
    """The patient's group for each audited attribute: sex, 20-year age band and, where the record
    carries them, OMB race and ethnicity (US Core). An attribute the record lacks is left out rather
    than called "unknown", so a reader of prompts (which never show race) adds no empty group."""
    # 20-year bands, except that de-identification caps ages at 90, so the last band stops at 89.
    low = facts.age // 20 * 20
    band = "90plus" if facts.age >= 90 else f"{low}-{min(low + 19, 89)}"
    groups = {"sex": facts.sex, "age_band": band}
    if facts.race is not None:
        groups["race"] = facts.race
    if facts.ethnicity is not None:
        groups["ethnicity"] = facts.ethnicity
    return groups


def rates(outcomes: Sequence[Outcome]) -> dict[str, float]:
    n = max(len(outcomes), 1)
    return {
        "concordance": sum(o is Outcome.CONCORDANT for o in outcomes) / n,
        "unsafe_rate": sum(o is Outcome.UNSAFE for o in outcomes) / n,
        "n": float(len(outcomes)),
    }


def recommend_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    world: World,
    scenarios: Sequence[Scenario],
    batch_size: int = 256,
) -> list[str | None]:
    drugs: list[str | None] = []
    for start in range(0, len(scenarios), batch_size):
        chunk = scenarios[start : start + batch_size]
        prompts = [render_prompt(world, s.facts, s.target) for s in chunk]
        drugs += [parse_drug(world, t) for t in sample(model, tokenizer, prompts, greedy=True).texts]
    return drugs


def evaluate_policy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, world: World, scenarios: Sequence[Scenario]
) -> Evaluation:
    drugs = recommend_greedy(model, tokenizer, world, scenarios)
    outcomes = [score(world, s.facts, s.target, d) for s, d in zip(scenarios, drugs, strict=True)]
    grouped: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for s, outcome in zip(scenarios, outcomes, strict=True):
        for attribute, group in subgroup_of(s.facts).items():
            grouped[attribute][group].append(outcome)
    overall = rates(outcomes)
    subgroups = {a: {g: rates(o) for g, o in sorted(groups.items())} for a, groups in grouped.items()}
    return Evaluation(overall["concordance"], overall["unsafe_rate"], len(outcomes), subgroups, outcomes)


__all__ = [
    "Evaluation",
    "Scenario",
    "age_band",
    "evaluate_policy",
    "rates",
    "recommend_greedy",
    "subgroup_of",
]
