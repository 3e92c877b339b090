"""How much clinicians agree when they judge the same item: observed agreement and Fleiss' kappa.

Fleiss (1971), "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5),
https://doi.org/10.1037/h0031619, with the number of raters allowed to vary by item: item i with
n_i ratings of which n_ik fall in category k agrees in P_i = Σ_k n_ik (n_ik − 1) / (n_i (n_i − 1))
of its rater pairs; P̄ is the mean of P_i, chance agreement P_e = Σ_k p_k² with p_k the pooled share
of category k, and κ = (P̄ − P_e) / (1 − P_e). Items rated once say nothing about agreement and
are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from clinrlhf.feedback.agreement import fleiss_kappa


def category_counts(ratings: Mapping[Any, Sequence[Any]]) -> np.ndarray:
    """(items, categories) counts from item -> the categories its raters chose; items with fewer
    than two ratings are dropped."""
    kept = [list(v) for v in ratings.values() if len(v) >= 2]
    categories = sorted({c for v in kept for c in v}, key=repr)
    index = {c: j for j, c in enumerate(categories)}
    counts = np.zeros((len(kept), len(categories)), dtype=np.int64)
    for i, chosen in enumerate(kept):
        for c in chosen:
            counts[i, index[c]] += 1
    return counts


def observed_agreement(counts: np.ndarray) -> float:
    """P̄: the share of agreeing rater pairs, averaged over items."""
    n = counts.sum(axis=1)
    if counts.shape[0] == 0:
        return float("nan")
    per_item = (counts * (counts - 1)).sum(axis=1) / (n * (n - 1))
    return float(per_item.mean())


def agreement_summary(ratings: Mapping[Any, Iterable[Any]]) -> dict[str, float]:
    counts = category_counts({k: list(v) for k, v in ratings.items()})
    return {
        "items": float(counts.shape[0]),
        "observed": observed_agreement(counts),
        "kappa": fleiss_kappa(counts),
    }
