"""What a learning curve costs: the CPU time a method needs to reach a held-out concordance, read off
its checkpoints, and the peer comparison's speed ratio (ours to reach the peer's final figure over
the peer's whole run). Pure arithmetic on (CPU seconds, concordance) points."""

from __future__ import annotations

import math
from collections.abc import Sequence

Curve = Sequence[tuple[float, float]]
"""(CPU seconds spent so far, held-out concordance) at each checkpoint, in time order; the first
point is usually (0, the starting policy's concordance)."""


def cpu_to_reach(curve: Curve, target: float) -> float | None:
    """CPU seconds at which the curve first reaches `target`, linear between checkpoints (we only know
    the policy at checkpoints, and a straight line is the least-assuming guess between two); None
    where it never does."""
    if any(b[0] < a[0] for a, b in zip(curve, curve[1:], strict=False)):
        raise ValueError("the curve's checkpoints must be in time order")
    previous: tuple[float, float] | None = None
    for seconds, value in curve:
        if value >= target:
            if previous is None or previous[1] >= target:
                return seconds
            t0, v0 = previous
            return t0 + (target - v0) / (value - v0) * (seconds - t0)
        previous = (seconds, value)
    return None


def speed_ratio(ours: Curve, peer: Curve) -> float:
    """CPU time for `ours` to reach the peer's final concordance / the peer's total CPU time: below 1,
    ours gets there sooner. Infinite where ours never reaches it."""
    if not ours or not peer:
        raise ValueError("both curves need at least one checkpoint")
    peer_seconds, peer_final = peer[-1]
    reached = cpu_to_reach(ours, peer_final)
    if reached is None:
        return math.inf
    return reached / peer_seconds if peer_seconds > 0 else math.inf
