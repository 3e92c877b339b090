"""Steer feedback collection toward under-served patient subgroups.

A panel that judges whoever walks in collects feedback in proportion to the population: a group
that is 2% of patients gets 2% of the judgments, and the reward model learns least about the
patients it already knows least about. Steering re-weights who is sent for review next, so that
the feedback collected so far moves toward chosen target shares (for example, equal shares per
group, or at least a floor per group).

The next patient's group is drawn with probability ∝ target_g × (target_g / observed_g): the target
share, corrected by the deficit ratio, where observed_g is g's share of the feedback so far (with
add-one smoothing, so a group with no feedback yet gets a large but finite weight). The target
factor matters. Drawing with probability ∝ the ratio alone settles where the observed share equals
the draw probability, i.e. observed ∝ √target: equal targets are reached, but 60/30/10 ends near
47/33/19 (benchmarks/fairness.py measured it). With the target factor the fixed point is
observed_g ∝ target_g² / observed_g, i.e. observed = target, and a group behind its target is drawn
more often than its target until it catches up. Within a group, every waiting patient is equally
likely, so a big group is not favoured for being big.

Pure functions: the panel (clinrlhf.panel.session, `PanelConfig.steering`) holds the counts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SteeringConfig:
    """Which attribute to balance, toward which shares, and how many patients to send."""

    attribute: str = "race"
    """A key of clinrlhf.eval.evaluate.subgroup_of: sex, age_band, race or ethnicity."""
    target_shares: Mapping[str, float] = field(default_factory=dict)
    """Group -> wanted share of the feedback; empty means equal shares over the groups seen."""
    patients: int | None = None
    """How many patients to send for review (None: as many as offered)."""
    max_weight: float = 20.0
    """Cap on any group's weight relative to the smallest, so a group with one patient cannot
    monopolise the next draws."""


def target_shares(groups: Sequence[str], wanted: Mapping[str, float]) -> dict[str, float]:
    """`wanted` restricted to the groups present and renormalised; equal shares when empty.
    Groups present but not named in `wanted` get the smallest named share (never zero: every
    group keeps some chance of being judged)."""
    present = sorted(set(groups))
    if not present:
        return {}
    if not wanted:
        return {g: 1.0 / len(present) for g in present}
    if any(v < 0 for v in wanted.values()):
        raise ValueError("target shares must be non-negative")
    floor = min((v for v in wanted.values() if v > 0), default=1.0)
    raw = {g: wanted.get(g, floor) or floor for g in present}
    total = sum(raw.values())
    return {g: v / total for g, v in raw.items()}


def steering_weights(
    counts: Mapping[str, int], targets: Mapping[str, float], max_weight: float = 20.0
) -> dict[str, float]:
    """Probability of drawing each group next (they sum to 1) from the feedback counted so far.

    A group's weight is proportional to target × target / observed share, with add-one smoothing
    on the counts, so that the shares drawn converge to the targets (module docstring). The
    deficit ratio target / observed is capped at `max_weight` times the smallest before it
    multiplies the target."""
    if not targets:
        return {}
    smoothed = {g: counts.get(g, 0) + 1.0 for g in targets}
    total = sum(smoothed.values())
    ratio = {g: targets[g] / (smoothed[g] / total) for g in targets}
    lowest = min(ratio.values())
    # The cap bounds the deficit correction, not the target: a 1% group may be far behind, but it
    # should not be drawn 20 times as often as its target share says.
    capped = {g: min(r, lowest * max_weight) if lowest > 0 else r for g, r in ratio.items()}
    weight = {g: targets[g] * r for g, r in capped.items()}
    norm = sum(weight.values())
    return {g: v / norm for g, v in weight.items()}


def patient_weights(groups: Sequence[str], group_weights: Mapping[str, float]) -> list[float]:
    """Per-patient weights: each group's weight spread over its patients still waiting, so that a
    draw picks a *group* with the group weight (a big group is not favoured for being big)."""
    sizes = Counter(groups)
    return [group_weights.get(g, 0.0) / sizes[g] for g in groups]


def steered_order(groups: Sequence[str], config: SteeringConfig, rng: random.Random) -> list[int]:
    """Indices of the patients to send, in order, drawn one at a time without replacement with
    weights recomputed from what has been sent so far (one judged card per patient assumed)."""
    waiting = list(range(len(groups)))
    targets = target_shares(groups, config.target_shares)
    budget = len(groups) if config.patients is None else min(config.patients, len(groups))
    counts: Counter[str] = Counter()
    order: list[int] = []
    while len(order) < budget:
        weights = steering_weights(counts, targets, config.max_weight)
        per_patient = patient_weights([groups[i] for i in waiting], weights)
        pick = rng.choices(range(len(waiting)), per_patient)[0]
        index = waiting.pop(pick)
        order.append(index)
        counts[groups[index]] += 1
    return order
