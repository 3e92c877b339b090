"""What steering does to who gets judged, without a server or training: for a budget of N patients,
the patients each arm sends per group (unsteered, steered to population shares, to equal shares, to
a floor), their shares against the population's, and the evaluation n per group."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from clinrlhf.feedback.steering import SteeringConfig, steered_order, target_shares

Z95 = 1.96


def shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {g: n / total for g, n in sorted(counts.items())} if total else {}


def floor_shares(population: Mapping[str, int], floor: float) -> dict[str, float]:
    """Target shares: each group at least `floor`, the rest of the mass proportional to population.
    Water-filling: raising small groups to the floor shrinks the others, which may fall below it."""
    groups = sorted(g for g, n in population.items() if n > 0)
    if floor < 0 or floor * len(groups) > 1 + 1e-12:
        raise ValueError(f"a floor of {floor} over {len(groups)} groups is not a distribution")
    fixed: set[str] = set()
    while True:
        free = [g for g in groups if g not in fixed]
        mass, total = 1.0 - floor * len(fixed), sum(population[g] for g in free)
        targets = {g: floor if g in fixed else mass * population[g] / total for g in groups}
        below = {g for g in free if targets[g] < floor}
        if not below:
            return targets
        fixed |= below


def draw_counts(groups: Sequence[str], wanted: Mapping[str, float], budget: int, seed: int) -> Counter[str]:
    """Patients per group that steered_order sends, seeded as PanelSession.selection seeds it."""
    config = SteeringConfig(target_shares=dict(wanted), patients=budget)
    return Counter(groups[i] for i in steered_order(groups, config, random.Random(seed)))


def summarise_arm(
    population: Mapping[str, int], draws: Sequence[Counter[str]], budget: int
) -> dict[str, Any]:
    """Per group: sent (mean, min, max over draws), share of the budget, ratio to population share."""
    pop_share = shares(population)
    rows = {}
    for group in sorted(population):
        sent = [d.get(group, 0) for d in draws]
        mean = sum(sent) / len(sent)
        rows[group] = {
            "population": population[group],
            "population_share": pop_share[group],
            "sent_mean": mean,
            "sent_min": min(sent),
            "sent_max": max(sent),
            "share": mean / budget,
            "ratio": (mean / budget) / pop_share[group] if pop_share[group] else math.nan,
        }
    smallest = min(population, key=lambda g: (population[g], g))  # ties: alphabetical, reproducible
    return {"groups": rows, "smallest_group": {"group": smallest, **rows[smallest]}}


def evaluation_counts(
    patient_groups: Sequence[str | None], scenario_groups: Sequence[str | None]
) -> dict[str, Any]:
    """Evaluation-cohort patients and scenarios per group, and the worst-case 95% half-width at that n.
    A missing attribute (None) is skipped, as the eval leaves such a scenario out of the group."""
    patients = Counter(g for g in patient_groups if g is not None)
    counted = Counter(g for g in scenario_groups if g is not None)
    return {
        g: {
            "patients": patients[g],
            "scenarios": n,
            "half_width": Z95 * math.sqrt(0.25 / n),
        }
        for g, n in sorted(counted.items())
    }


def arm_targets(population: Mapping[str, int], floor: float) -> dict[str, dict[str, float]]:
    """The target shares each steered arm hands to steered_order (empty = equal shares)."""
    return {"population": shares(population), "equal": {}, "floor": floor_shares(population, floor)}


def steering_arms(
    groups: Sequence[str], budget: int, seeds: Sequence[int], floor: float
) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, float]]]]:
    """Each arm's summary, and the target shares steered_order aimed at (after its normalising)."""
    population = Counter(groups)
    wanted = arm_targets(population, floor)
    arms = {"unsteered": summarise_arm(population, [Counter(groups[:budget])], budget)}
    for arm, targets in wanted.items():
        draws = [draw_counts(groups, targets, budget, seed) for seed in seeds]
        arms[arm] = summarise_arm(population, draws, budget)
    aimed = {arm: target_shares(groups, targets) for arm, targets in wanted.items()}
    got = {arm: {g: row["share"] for g, row in arms[arm]["groups"].items()} for arm in aimed}
    return arms, {arm: {"target": t, "achieved": got[arm]} for arm, t in aimed.items()}
