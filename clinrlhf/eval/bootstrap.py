"""Percentile bootstrap confidence intervals for held-out rates, overall and by subgroup.

The percentile bootstrap (Efron & Tibshirani, 1993, "An Introduction to the Bootstrap", ch. 13):
resample the n scored scenarios with replacement B times, recompute the rate each time, and take
the α/2 and 1 − α/2 quantiles of the B rates. Subgroups are resampled within themselves, so each
group's interval reflects its own size. Everything is seeded, and the B resamples are drawn as one
(B, n) index array rather than in a Python loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clinrlhf.world.scoring import Outcome

RESAMPLES = 2000
LEVEL = 0.95
METRICS = ("concordance", "unsafe_rate")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def resampled_means(values: ArrayLike, resamples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """(B, M) means of B resamples of the rows of an (n, M) array (or (B,) for an (n,) array)."""
    data = np.asarray(values, dtype=np.float64)
    n = data.shape[0]
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    idx = rng.integers(0, n, size=(resamples, n))  # (B, n) row indices
    return data[idx].mean(axis=1)


def percentile_interval(samples: ArrayLike, level: float = LEVEL) -> tuple[NDArray, NDArray]:
    """The (α/2, 1 − α/2) quantiles along the first axis of the bootstrap replicates."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    alpha = 1.0 - level
    low, high = np.quantile(np.asarray(samples), [alpha / 2, 1 - alpha / 2], axis=0)
    return low, high


def bootstrap_rates(
    flags: ArrayLike,
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int | np.random.SeedSequence = 0,
) -> list[Interval]:
    """One interval per column of an (n, M) 0/1 array; the columns are resampled together (paired)."""
    data = np.asarray(flags, dtype=np.float64)
    data = data[:, None] if data.ndim == 1 else data
    means = resampled_means(data, resamples, np.random.default_rng(seed))
    low, high = percentile_interval(means, level)
    estimate = data.mean(axis=0)
    return [Interval(float(e), float(lo), float(hi)) for e, lo, hi in zip(estimate, low, high, strict=True)]


def outcome_flags(outcomes: Sequence[Outcome]) -> NDArray[np.float64]:
    """(n, 2): concordant, unsafe, in the order of METRICS."""
    return np.array(
        [[o is Outcome.CONCORDANT, o is Outcome.UNSAFE] for o in outcomes], dtype=np.float64
    ).reshape(len(outcomes), len(METRICS))


def outcome_intervals(
    outcomes: Sequence[Outcome],
    groups: Sequence[Mapping[str, str]],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, dict[str, Interval]]:
    """Intervals keyed like the metrics they bound: "" for overall, else "<attribute>.<group>",
    then by metric. `groups[i]` is the subgroup of scenario i (e.g. ``subgroup_of(facts)``)."""
    if len(outcomes) != len(groups):
        raise ValueError("one subgroup mapping per outcome is needed")
    flags = outcome_flags(outcomes)
    out = {
        "": dict(
            zip(METRICS, bootstrap_rates(flags, resamples=resamples, level=level, seed=seed), strict=True)
        )
    }
    keys = sorted({(a, g) for mapping in groups for a, g in mapping.items()})
    for attribute, group in keys:
        rows = [j for j, mapping in enumerate(groups) if mapping.get(attribute) == group]
        key = f"{attribute}.{group}"
        # A seed per subgroup, taken from its name, so adding a group never moves another's interval.
        sub_seed = np.random.SeedSequence([seed, zlib.crc32(key.encode())])
        intervals = bootstrap_rates(flags[rows], resamples=resamples, level=level, seed=sub_seed)
        out[key] = dict(zip(METRICS, intervals, strict=True))
    return out


def interval_metrics(
    intervals: Mapping[str, Mapping[str, Interval]], prefix: str = "eval."
) -> dict[str, float]:
    """MLflow metric names for the bounds, in CONTRACT's pattern with metric `<name>_ci_low|high`:
    `eval.concordance_ci_low`, `eval.unsafe_rate_ci_high.sex.female`, ..."""
    out = {}
    for key, metrics in intervals.items():
        suffix = f".{key}" if key else ""
        for metric, interval in metrics.items():
            out[f"{prefix}{metric}_ci_low{suffix}"] = interval.low
            out[f"{prefix}{metric}_ci_high{suffix}"] = interval.high
    return out
