"""The canary game: empirical privacy auditing with one training run (Steinke, Nasr & Jagielski, 2023,
https://arxiv.org/abs/2305.08846), as pure functions.

The game plants m canaries, includes each independently with probability 1/2, trains once, scores
every canary, and guesses "included" for the r₊ highest scores and "excluded" for the r₋ lowest
(abstaining on the rest; r = r₊ + r₋ guesses). If training is (ε, δ)-DP with respect to one canary,
the number of correct guesses V is at most a Binomial(r, e^ε / (1 + e^ε)) (ε-DP randomized response
on each guess) up to a δ term: the paper's main theorem for (ε, δ)-DP gives

    P[V ≥ v] ≤ P[Bin(r, q) ≥ v] + 2m·δ · max_{1≤i≤v} P[v > Bin(r, q) ≥ v − i] / i,   q = e^ε/(1+e^ε).

So any ε at which that p-value is below 1 − confidence is rejected, and the largest such ε is a
lower bound on the true ε holding with that confidence. It is a lower bound: a DP run whose bound
exceeds its reported ε would reveal a bug in the implementation or the accounting; a bound far below
it only says this attack is weak, not that the accounting is loose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class GameOutcome:
    m: int
    """Canaries planted (each included with probability 1/2)."""
    guesses: int
    """r: canaries the auditor guessed about (the rest abstained)."""
    correct: int
    """v: correct guesses."""


def p_value(m: int, guesses: int, correct: int, epsilon: float, delta: float) -> float:
    """P[≥ `correct` of `guesses` right] for an (ε, δ)-DP run with m canaries (an upper bound)."""
    if not 0 <= correct <= guesses <= m:
        raise ValueError(f"need 0 <= correct ({correct}) <= guesses ({guesses}) <= m ({m})")
    if epsilon < 0 or not 0.0 <= delta <= 1.0:
        raise ValueError(f"need epsilon >= 0 and delta in [0, 1], got {epsilon}, {delta}")
    q = 1.0 / (1.0 + math.exp(-epsilon))  # accuracy of ε-DP randomized response
    tail = float(stats.binom.sf(correct - 1, guesses, q))  # P[Bin(r, q) >= v]
    if delta == 0.0 or correct == 0:
        return min(1.0, tail)
    # window[i - 1] = P[v > Bin(r, q) >= v - i] for i = 1..v, all at once: a loop of scalar pmf
    # calls took minutes at r = 10,000 inside the bisection.
    i = np.arange(1, correct + 1)
    window = np.cumsum(stats.binom.pmf(correct - i, guesses, q))
    return min(1.0, tail + 2 * m * delta * float(np.max(window / i)))


def epsilon_lower_bound(
    m: int, guesses: int, correct: int, delta: float, confidence: float = 0.95, *, iterations: int = 40
) -> float:
    """The largest ε that the outcome rejects at `confidence`: with that probability the run's true ε
    is at least this. 0 when the outcome rejects nothing (e.g. no better than chance)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return _largest_rejected(m, guesses, correct, delta, 1.0 - confidence, 0.0, iterations)


def _largest_rejected(
    m: int, guesses: int, correct: int, delta: float, level: float, low: float, iterations: int = 40
) -> float:
    """Bisection for the largest ε whose p-value is below `level`, searching from `low` up; `low`
    itself when even it is not rejected."""
    if p_value(m, guesses, correct, low, delta) >= level:
        return low
    high = max(1.0, 2 * low)  # invariant: p_value(low) < level <= p_value(high)
    while p_value(m, guesses, correct, high, delta) < level:
        low, high = high, 2 * high
    for _ in range(iterations):
        mid = (low + high) / 2
        if p_value(m, guesses, correct, mid, delta) < level:
            low = mid
        else:
            high = mid
    return low


def guess_from_scores(
    scores: Sequence[float], included: Sequence[bool], k_plus: int, k_minus: int
) -> GameOutcome:
    """Guess "included" for the k₊ highest scores and "excluded" for the k₋ lowest; count the hits.

    k₊ and k₋ must be fixed before the scores are seen, or the bound is not valid.
    """
    m = len(scores)
    if len(included) != m:
        raise ValueError(f"{m} scores but {len(included)} inclusion flags")
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > m:
        raise ValueError(f"need k_plus, k_minus >= 0 and k_plus + k_minus <= m, got {k_plus}, {k_minus}, {m}")
    order = sorted(range(m), key=lambda i: scores[i])  # ascending
    lowest, highest = order[:k_minus], order[m - k_plus :] if k_plus else []
    correct = sum(included[i] for i in highest) + sum(not included[i] for i in lowest)
    return GameOutcome(m, k_plus + k_minus, correct)


def epsilon_from_scores(
    in_scores: Sequence[float], out_scores: Sequence[float], delta: float, confidence: float = 0.95
) -> float:
    """The one-run bound when the threshold is chosen after the scores are seen: for a threshold t,
    guess "included" for every canary scoring at least t and abstain on the rest (k₋ = 0). Every
    threshold at a vertex of the ROC frontier is tried, at a Bonferroni-corrected confidence (the
    level divided by their number), and the largest bound wins. This is the statistic of jax_privacy's
    `CanaryScoreAuditor.epsilon_one_run` (Bonferroni strategy), whose reference values it reproduces.
    `in_scores` are the scores of the canaries trained on, `out_scores` of the others."""
    ins, outs = np.sort(np.asarray(in_scores, float)), np.sort(np.asarray(out_scores, float))
    if len(ins) == 0 or len(outs) == 0:
        raise ValueError("need at least one included and one excluded canary")
    thresholds = np.append(np.union1d(ins, outs), np.inf)
    below_in = np.searchsorted(ins, thresholds, side="left")  # included canaries under each threshold
    below_out = np.searchsorted(outs, thresholds, side="left")
    vertices = _frontier(below_in, below_out)
    level = (1.0 - confidence) / len(vertices)
    hits, misses = len(ins) - below_in[vertices], len(outs) - below_out[vertices]
    m, best = len(ins) + len(outs), 0.0
    # Most precise thresholds first: later ones then mostly fail the cheap δ = 0 test below.
    for j in np.argsort(-hits / np.maximum(hits + misses, 1), kind="stable"):
        guesses, correct = int(hits[j] + misses[j]), int(hits[j])
        if guesses == 0 or correct / guesses <= 1.0 / (1.0 + math.exp(-best)):
            continue  # no better than ε-randomized response at the best ε so far: cannot beat it
        if p_value(m, guesses, correct, best, 0.0) >= level:
            continue  # not even without the δ term
        best = _largest_rejected(m, guesses, correct, delta, level, best)
    return best


def _frontier(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Indices of the vertices of the upper concave frontier of the points (xs, ys), xs ascending:
    points on or under the segment between their neighbours are dropped until none is. Only
    thresholds at these vertices can give the best bound, so the Bonferroni correction counts them."""
    keep = np.arange(len(xs))
    while len(keep) > 2:
        dx, dy = np.diff(xs[keep]).astype(float), np.diff(ys[keep]).astype(float)
        under = dy[:-1] * dx[1:] - dy[1:] * dx[:-1] <= 0
        if not under.any():
            break
        keep = keep[np.concatenate(([True], ~under, [True]))]
    return keep
