"""The study's figures from the concordance curves: judgments needed to reach a target, and how many
times fewer one strategy needed than another. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence


def judgments_to_reach(curve: Sequence[dict], target: float) -> int | None:
    """Judgments at the first point of the curve whose concordance is at least `target`."""
    return next((p["judgments"] for p in curve if p["concordance"] >= target), None)


def mean_curve(curves: Sequence[Sequence[dict]]) -> list[dict]:
    return [
        {
            "judgments": statistics.mean(p["judgments"] for p in points),
            "concordance": statistics.mean(p["concordance"] for p in points),
            "unsafe_rate": statistics.mean(p["unsafe_rate"] for p in points),
        }
        for points in zip(*curves, strict=True)
    ]


def needs_by_target(curves: Mapping[str, Sequence[dict]], step: float = 0.02) -> dict[str, dict]:
    """Judgments each strategy needs to first reach every target on a grid from the lowest to the
    highest concordance any curve reached: the whole trade-off, not one chosen target."""
    reached = [p["concordance"] for c in curves.values() for p in c]
    low, high = math.floor(min(reached) / step) * step, max(reached)
    grid = [round(low + i * step, 4) for i in range(int((high - low) / step) + 1)]
    table = {}
    for target in grid:
        needs = {name: judgments_to_reach(c, target) for name, c in curves.items()}
        table[f"{target:.2f}"] = {"judgments": needs, "ratios": ratios(needs)}
    return table


def ratio(random_needs: int | float | None, active_needs: int | float | None) -> float | None:
    """How many times fewer judgments the second needed; None where either never reached the target."""
    if random_needs is None or active_needs is None or active_needs == 0:
        return None
    return random_needs / active_needs


RATIOS = (
    ("random", "active"),
    ("random", "random-valid"),
    ("random-valid", "active"),
    ("random", "thompson"),
    ("random", "oracle"),
)


def ratios(needs: Mapping[str, int | float | None]) -> dict[str, float | None]:
    """random/active (the headline), random/random-valid (what putting valid cards first buys on its
    own) and random-valid/active (what the reward model's uncertainty adds on top)."""
    return {f"{a}/{b}": ratio(needs[a], needs[b]) for a, b in RATIOS if a in needs and b in needs}
