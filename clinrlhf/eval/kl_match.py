"""The β of DPO whose KL(π‖reference) matches a target, from a sweep of measured (β, KL) points.

DPO has no KL controller: β is its only hold on the distance from the reference, and the distance it
ends at is measured, not set. Comparing it with PPO "at matched KL" therefore means sweeping β and
inverting the measured curve. KL falls roughly as a power of β (the implicit reward is β·log-ratio,
so the log-ratio needed to fit the same margins scales as 1/β), so log KL is interpolated linearly
in log β: exact for a power law, and monotone between any two measurements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def beta_for_kl(points: Sequence[tuple[float, float]], target_kl: float) -> float:
    """β at which the sweep's KL equals `target_kl`: interpolated between the two measured β that
    bracket it, else extrapolated from the two nearest measurements (the sweep's next point)."""
    if target_kl <= 0:
        raise ValueError(f"the target KL must be positive, got {target_kl}")
    if len(points) < 2:
        raise ValueError("matching KL needs at least two (β, KL) measurements")
    if any(beta <= 0 or kl <= 0 for beta, kl in points):
        raise ValueError("every measured β and KL must be positive to interpolate in log-log")
    logs = sorted((math.log(beta), math.log(kl)) for beta, kl in points)
    goal = math.log(target_kl)
    for x, y in logs:
        if y == goal:
            return math.exp(x)
    pairs = list(zip(logs, logs[1:], strict=False))
    bracket = [(a, b) for a, b in pairs if min(a[1], b[1]) < goal < max(a[1], b[1])]
    if bracket:
        a, b = bracket[0]
    else:  # beyond the sweep: the end nearest the target in KL
        a, b = min(pairs, key=lambda ab: min(abs(ab[0][1] - goal), abs(ab[1][1] - goal)))
    if a[1] == b[1]:
        raise ValueError("KL does not change between these β: widen the sweep")
    x = a[0] + (goal - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
    return math.exp(x)
