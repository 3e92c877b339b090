"""How reliable is each clinician? Dawid–Skene EM over pairwise preferences.

Dawid & Skene (1979), "Maximum likelihood estimation of observer error-rates using the EM
algorithm", Applied Statistics 28(1), https://doi.org/10.2307/2346806: every item has a latent
true class, every rater a confusion matrix, and EM alternates between the posterior of each item's
class given the raters (E-step) and each rater's error rates given those posteriors (M-step).

Here an item is one comparison (a card and the two responses shown) and the class is which of the
two is truly better. The two responses have no natural orientation (they are put in sorted order),
so a rater's confusion matrix is symmetric and reduces to one number, their accuracy a_c: the
probability that they prefer the truly better response (the "one-coin" model; e.g. Raykar et al.,
2010, §2; Zhang et al., 2014, https://arxiv.org/abs/1406.3824). With the prior P(z = 1) fixed at ½
for the same reason,

    E-step:  log-odds(z_i = 1) = Σ_{labels l of i, by c} (2 l − 1) · logit(a_c)
    M-step:  a_c = (Σ_{labels of c} P(label agrees with z) + s) / (n_c + 2s)

with s a Laplace pseudo-count that keeps a_c off 0 and 1 (and pulls a rater with few labels toward
chance). EM starts from the majority vote, which picks the solution where most raters are better
than chance (the likelihood is symmetric under flipping every rater and every item).

Ties carry no order and are left out, as in preference-pair training. A rater with accuracy below
½ agrees with the consensus less often than a coin: an adversary, or someone reading the screen
backwards. `flag_outliers` names them, and those far below the panel on the log-odds scale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from clinrlhf.feedback.judgment import CLINICIAN, Judgment

Item = tuple[str, str, str]  # (card, first response, second response), responses in sorted order
_EPS = 1e-6


@dataclass(frozen=True)
class Labels:
    """Binary preference labels: label 1 means the rater preferred the item's second response."""

    items: tuple[Item, ...]
    raters: tuple[str, ...]
    item: np.ndarray  # (n,) item index of each label
    rater: np.ndarray  # (n,) rater index of each label
    label: np.ndarray  # (n,) 0 or 1

    def __len__(self) -> int:
        return int(self.label.size)


def _comparisons(j: Judgment) -> Iterable[tuple[Item, int]]:
    """(item, label) for each comparison one judgment makes between two distinct responses."""
    if j.kind == "pairwise" and j.preferred is not None and len(j.responses) == 2:
        winner = j.responses[j.preferred]
    elif j.kind == "cds" and j.accepted is not None and len(j.responses) == 2:
        winner = j.responses[j.accepted]
    else:
        return
    first, second = sorted(j.responses)
    if first != second:
        yield (j.card, first, second), int(winner == second)


def preference_labels(
    judgments: Iterable[Judgment],
    *,
    kinds: Sequence[str] = ("pairwise",),
    source: str = CLINICIAN,
    min_labels_per_item: int = 2,
) -> Labels:
    """The labels of `kinds` judgments from `source`, on items labelled at least
    `min_labels_per_item` times (an item one rater alone judged only echoes that rater). A rater
    who labelled an item twice counts once, with the later label."""
    cells: dict[tuple[Item, str], int] = {}
    for j in judgments:
        if j.kind in kinds and j.source == source:
            for item, label in _comparisons(j):
                cells[(item, j.clinician)] = label
    per_item: dict[Item, int] = {}
    for item, _ in cells:
        per_item[item] = per_item.get(item, 0) + 1
    kept = {k: v for k, v in cells.items() if per_item[k[0]] >= min_labels_per_item}
    items = tuple(sorted({i for i, _ in kept}))
    raters = tuple(sorted({r for _, r in kept}))
    i_index = {it: n for n, it in enumerate(items)}
    r_index = {r: n for n, r in enumerate(raters)}
    keys = sorted(kept)
    return Labels(
        items,
        raters,
        np.array([i_index[i] for i, _ in keys], dtype=np.int64),
        np.array([r_index[r] for _, r in keys], dtype=np.int64),
        np.array([kept[k] for k in keys], dtype=np.int64),
    )


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def item_posteriors(labels: Labels, accuracy: np.ndarray) -> np.ndarray:
    """E-step: P(the second response is truly better) for each item, given rater accuracies."""
    votes = (2.0 * labels.label - 1.0) * _logit(accuracy)[labels.rater]
    log_odds = np.bincount(labels.item, weights=votes, minlength=len(labels.items))
    return 1.0 / (1.0 + np.exp(-log_odds))


def rater_accuracies(labels: Labels, posterior: np.ndarray, pseudo_count: float = 1.0) -> np.ndarray:
    """M-step: each rater's expected share of labels that agree with the true class."""
    q = posterior[labels.item]
    agree = np.where(labels.label == 1, q, 1.0 - q)
    n_raters = len(labels.raters)
    hits = np.bincount(labels.rater, weights=agree, minlength=n_raters)
    counts = np.bincount(labels.rater, minlength=n_raters)
    return (hits + pseudo_count) / (counts + 2.0 * pseudo_count)


def log_likelihood(labels: Labels, accuracy: np.ndarray) -> float:
    """log P(labels | accuracies), the item classes summed out (each with prior ½)."""
    a = np.clip(accuracy[labels.rater], _EPS, 1.0 - _EPS)
    if_second = np.where(labels.label == 1, np.log(a), np.log1p(-a))  # z_i = 1
    if_first = np.where(labels.label == 1, np.log1p(-a), np.log(a))  # z_i = 0
    n = len(labels.items)
    l1 = np.bincount(labels.item, weights=if_second, minlength=n)
    l0 = np.bincount(labels.item, weights=if_first, minlength=n)
    return float(np.sum(np.logaddexp(l0, l1) + np.log(0.5)))


@dataclass(frozen=True)
class ReliabilityResult:
    raters: tuple[str, ...]
    accuracy: dict[str, float]  # rater -> estimated probability of preferring the better response
    labels: dict[str, int]  # rater -> labels used
    items: tuple[Item, ...]
    posterior: np.ndarray  # (items,) P(the item's second response is truly better)
    iterations: int
    converged: bool
    log_likelihood: float

    def log_odds(self) -> dict[str, float]:
        return {r: float(_logit(np.array(a))) for r, a in self.accuracy.items()}

    def preferred(self) -> dict[Item, tuple[str, float]]:
        """item -> (the response more probably better, that probability)."""
        return {
            item: ((item[2], float(q)) if q >= 0.5 else (item[1], float(1.0 - q)))
            for item, q in zip(self.items, self.posterior, strict=True)
        }


def dawid_skene(
    labels: Labels, *, pseudo_count: float = 1.0, max_iter: int = 200, tol: float = 1e-8
) -> ReliabilityResult:
    """Fit per-rater accuracies and per-item posteriors by EM, from the majority vote."""
    if len(labels) == 0:
        return ReliabilityResult((), {}, {}, (), np.zeros(0), 0, True, 0.0)
    n_items = len(labels.items)
    ones = np.bincount(labels.item, weights=labels.label.astype(float), minlength=n_items)
    totals = np.bincount(labels.item, minlength=n_items)
    posterior = ones / totals  # majority vote (ties at ½)
    accuracy = rater_accuracies(labels, posterior, pseudo_count)
    previous, converged, iterations = -np.inf, False, 0
    while iterations < max_iter:
        iterations += 1
        posterior = item_posteriors(labels, accuracy)
        accuracy = rater_accuracies(labels, posterior, pseudo_count)
        current = log_likelihood(labels, accuracy)
        if abs(current - previous) < tol * max(1.0, abs(current)):
            converged = True
            break
        previous = current
    counts = np.bincount(labels.rater, minlength=len(labels.raters))
    return ReliabilityResult(
        raters=labels.raters,
        accuracy={r: float(a) for r, a in zip(labels.raters, accuracy, strict=True)},
        labels={r: int(n) for r, n in zip(labels.raters, counts, strict=True)},
        items=labels.items,
        posterior=item_posteriors(labels, accuracy),
        iterations=iterations,
        converged=converged,
        log_likelihood=log_likelihood(labels, accuracy),
    )


@dataclass(frozen=True)
class OutlierConfig:
    min_accuracy: float = 0.5
    """Flag raters whose estimated accuracy is below this: worse than a coin against the consensus."""
    max_robust_z: float = 3.5
    """Flag raters whose log-odds lie more than this many robust SDs below the panel's median
    (the modified z-score of Iglewicz & Hoaglin, 1993: 0.6745 (x − median) / MAD)."""
    min_labels: int = 20
    """Never flag on less evidence than this many labels."""


@dataclass(frozen=True)
class Flag:
    rater: str
    accuracy: float
    robust_z: float
    labels: int
    reasons: tuple[str, ...] = field(default_factory=tuple)


def robust_z(values: dict[str, float]) -> dict[str, float]:
    """Modified z-scores; 0 for everyone when the MAD is 0 (no spread to measure against)."""
    x = np.array(list(values.values()), dtype=float)
    if x.size == 0:
        return {}
    median = float(np.median(x))
    mad = float(np.median(np.abs(x - median)))
    scale = 0.6745 / mad if mad > 0 else 0.0
    return {k: scale * (v - median) for k, v in values.items()}


def rater_table(result: ReliabilityResult, config: OutlierConfig) -> list[Flag]:
    """One row per rater, with the reasons (if any) it is flagged; flagged rows have reasons."""
    z = robust_z(result.log_odds())
    rows = []
    for rater in result.raters:
        accuracy, n = result.accuracy[rater], result.labels[rater]
        reasons: list[str] = []
        if n >= config.min_labels:
            if accuracy < config.min_accuracy:
                reasons.append(f"accuracy {accuracy:.2f} < {config.min_accuracy:.2f}")
            if z[rater] < -config.max_robust_z:
                reasons.append(f"robust z {z[rater]:.1f} < -{config.max_robust_z:g}")
        rows.append(Flag(rater, accuracy, z[rater], n, tuple(reasons)))
    return rows


def flag_outliers(result: ReliabilityResult, config: OutlierConfig | None = None) -> list[Flag]:
    """The flagged raters only."""
    return [row for row in rater_table(result, config or OutlierConfig()) if row.reasons]
