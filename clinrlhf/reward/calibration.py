"""How far to trust the reward model's numbers: calibration of its preference probabilities, and
agreement of its rewards with a known utility. Pure functions of tensors and lists.

Calibration. A Bradley–Terry reward model says P(chosen ≻ rejected) = σ(r_c − r_r). On held-out
pairs, of the pairs it gives probability about 0.8, about 80% should go its way. The reliability
table bins the probabilities and sets each bin's mean confidence beside its accuracy; the expected
calibration error (ECE) is their gap, averaged with the bins' weights (Guo et al., 2017,
https://arxiv.org/abs/1706.04599). Every pair is counted in both orders, (p, 1) and (1 − p, 0),
so that which side was listed first does not matter and a model that is right but overconfident
is penalised (a one-sided table of "chosen" labels would call any p = 1 model perfect).

Agreement. In the simulated world the true utility of a recommendation is known
(clinrlhf.world.scoring.utility); Pearson's r says how linearly the rewards follow it, Spearman's ρ
(Pearson's r of the ranks, ties given their average rank) how well they order it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scipy import stats


def _both_orders(p_chosen: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, 1) for every pair as listed and (1 − p, 0) for it reversed."""
    n = len(p_chosen)
    probs = torch.cat([p_chosen, 1 - p_chosen]).double()
    return probs, torch.cat([torch.ones(n), torch.zeros(n)]).double()


def reliability_table(p_chosen: torch.Tensor, bins: int = 10) -> list[dict[str, float | int | None]]:
    """One row per equal-width bin of [0, 1]: its bounds, how many probabilities fall in it, their
    mean (confidence) and the fraction of those that were right (accuracy); None for empty bins.
    p = 1 goes into the last bin."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    probs, labels = _both_orders(p_chosen)
    which = (probs * bins).long().clamp(min=0, max=bins - 1)
    rows: list[dict[str, float | int | None]] = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "count": count,
                "confidence": float(probs[inside].mean()) if count else None,
                "accuracy": float(labels[inside].mean()) if count else None,
            }
        )
    return rows


def calibration_error(table: Sequence[dict[str, float | int | None]]) -> float:
    """ECE from a reliability table: Σ_b (n_b / n)·|confidence_b − accuracy_b|."""
    total = sum(int(row["count"] or 0) for row in table)
    if total == 0:
        raise ValueError("an empty reliability table has no calibration error")
    gap = sum(
        int(row["count"] or 0) * abs(float(row["confidence"] or 0.0) - float(row["accuracy"] or 0.0))
        for row in table
    )
    return gap / total


def expected_calibration_error(p_chosen: torch.Tensor, bins: int = 10) -> float:
    """ECE of the Bradley–Terry probabilities σ(r_c − r_r), both orders counted (see above)."""
    return calibration_error(reliability_table(p_chosen, bins))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's r; NaN when either side is constant (no linear relation is defined)."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"need two equally long sequences of at least 2 values, got {len(x)} and {len(y)}")
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    xc, yc = xt - xt.mean(), yt - yt.mean()
    denominator = float(xc.norm() * yc.norm())
    return float((xc * yc).sum()) / denominator if denominator > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ: Pearson's r of the ranks, tied values sharing their average rank."""
    return pearson(list(stats.rankdata(x)), list(stats.rankdata(y)))
