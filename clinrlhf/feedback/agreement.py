"""Inter-rater agreement: Cohen's κ, Fleiss' κ and Krippendorff's α, with bootstrap intervals.

Every statistic is a pure function of numpy arrays, and every bootstrap is vectorised: a resample
of the items is a row of multinomial weights, and the sufficient statistics (contingency table,
category counts, coincidence matrix) of all resamples come from one matrix product.

- Cohen (1960), "A coefficient of agreement for nominal scales", https://doi.org/10.1177/001316446002000104:
  two raters, κ = (p_o − p_e) / (1 − p_e) from their contingency table.
- Fleiss (1971), "Measuring nominal scale agreement among many raters",
  https://doi.org/10.1037/h0031619: (items, categories) counts; P̄ is the mean share of agreeing
  rater pairs per item, P_e = Σ_k p_k², κ = (P̄ − P_e) / (1 − P_e). Written for a fixed number of
  ratings per item; like clinrlhf.compliance.agreement, items rated fewer than twice are left out and
  the per-item pair share is used when the number varies, so it reduces to Fleiss' κ when it is fixed.
- Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability",
  https://repository.upenn.edu/asc_papers/43: a (raters, items) reliability matrix with NaN where
  a rater did not rate an item. Unit u with m_u ≥ 2 values adds (n_uc n_uk − [c=k] n_uc)/(m_u − 1)
  to the coincidence o_ck; n_c = Σ_k o_ck, n = Σ_c n_c and
  α = 1 − (n − 1) Σ o_ck δ²_ck / Σ n_c n_k δ²_ck, with δ² the nominal, ordinal or interval metric.

Bootstrap intervals are percentile intervals over items (resampled with replacement) from a seeded
numpy Generator. Resamples where the statistic is undefined (NaN) are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from clinrlhf.feedback.judgment import CLINICIAN, Judgment

Level = Literal["nominal", "ordinal", "interval"]
TIE = 2  # the nominal code of a pairwise tie (preferred is None); 0 and 1 are the response indices


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval over items."""

    estimate: float
    low: float
    high: float
    items: int  # the items the estimate uses
    resamples: int  # bootstrap resamples where the statistic was defined
    confidence: float

    def to_dict(self) -> dict[str, float]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "items": float(self.items),
            "resamples": float(self.resamples),
            "confidence": self.confidence,
        }


# --------------------------------------------------------------------------------------------- helpers


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float | np.floating) and np.isnan(x))


def _weights(items: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, items) counts: how often each item is drawn in each resample."""
    if items == 0:
        return np.zeros((n_boot, 0))
    return rng.multinomial(items, np.full(items, 1.0 / items), size=n_boot).astype(float)


def _interval(
    estimate: float, boot: np.ndarray, items: int, confidence: float
) -> Interval:  # boot: (n_boot,)
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return Interval(estimate, float("nan"), float("nan"), items, 0, confidence)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return Interval(estimate, float(low), float(high), items, int(boot.size), confidence)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ----------------------------------------------------------------------------------------- Cohen's κ


def _paired_codes(a: Sequence[Any], b: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    if len(a) != len(b):
        raise ValueError(f"the raters rated different numbers of items: {len(a)} and {len(b)}")
    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not _missing(x) and not _missing(y)]
    labels = sorted({v for p in pairs for v in p}, key=lambda v: (repr(type(v)), v))
    index = {v: i for i, v in enumerate(labels)}
    ia = np.array([index[x] for x, _ in pairs], dtype=np.int64)
    ib = np.array([index[y] for _, y in pairs], dtype=np.int64)
    return ia, ib, len(labels)


def cohen_kappa_table(table: np.ndarray) -> float:
    """κ from a (K, K) contingency table (rows: rater A, columns: rater B), or a stack of them
    (..., K, K), which gives one κ per table. NaN where p_e = 1 or the table is empty."""
    table = np.asarray(table, dtype=float)
    total = table.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(table, axis1=-2, axis2=-1) / total
        expected = (table.sum(axis=-1) * table.sum(axis=-2)).sum(axis=-1) / total**2
        kappa = np.where(expected < 1.0 - 1e-12, (observed - expected) / (1.0 - expected), np.nan)
    return float(kappa) if kappa.ndim == 0 else kappa  # type: ignore[return-value]


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """κ for two raters' nominal labels of the same items (None or NaN: not rated; such items
    are left out)."""
    ia, ib, k = _paired_codes(a, b)
    table = np.zeros((k, k))
    np.add.at(table, (ia, ib), 1.0)
    return cohen_kappa_table(table)


def cohen_kappa_ci(
    a: Sequence[Any],
    b: Sequence[Any],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> Interval:
    ia, ib, k = _paired_codes(a, b)
    onehot = np.zeros((ia.size, k * k))
    onehot[np.arange(ia.size), ia * k + ib] = 1.0
    estimate = cohen_kappa_table(onehot.sum(axis=0).reshape(k, k))
    tables = (_weights(ia.size, n_boot, _rng(seed)) @ onehot).reshape(n_boot, k, k)
    return _interval(estimate, np.asarray(cohen_kappa_table(tables)), int(ia.size), confidence)


# ----------------------------------------------------------------------------------------- Fleiss' κ


def _fleiss_parts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items rated at least twice: their pair-agreement shares P_i and their counts."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2:
        raise ValueError("counts must be (items, categories)")
    n = counts.sum(axis=1)
    kept = counts[n >= 2]
    n = n[n >= 2]
    per_item = (kept * (kept - 1.0)).sum(axis=1) / (n * (n - 1.0))
    return per_item, kept


def _fleiss_from(p_bar: np.ndarray, category_totals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = category_totals / category_totals.sum(axis=-1, keepdims=True)
        expected = (shares**2).sum(axis=-1)
        return np.where(expected < 1.0 - 1e-12, (p_bar - expected) / (1.0 - expected), np.nan)


def fleiss_kappa(counts: np.ndarray) -> float:
    """κ from (items, categories) counts of the ratings each item got. NaN when no item is rated
    twice, or every rating falls in one category."""
    per_item, kept = _fleiss_parts(counts)
    if per_item.size == 0:
        return float("nan")
    return float(_fleiss_from(np.asarray(per_item.mean()), kept.sum(axis=0)))


def fleiss_kappa_ci(
    counts: np.ndarray,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> Interval:
    per_item, kept = _fleiss_parts(counts)
    estimate = fleiss_kappa(counts)
    w = _weights(per_item.size, n_boot, _rng(seed))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (w @ per_item) / w.sum(axis=1)
    boot = _fleiss_from(p_bar, w @ kept) if per_item.size else np.full(n_boot, np.nan)
    return _interval(estimate, boot, int(per_item.size), confidence)


# --------------------------------------------------------------------------------- Krippendorff's α


def value_counts(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From a (raters, items) reliability matrix (NaN: missing), the sorted distinct values and
    the (items, values) counts of each value per item."""
    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise ValueError("data must be (raters, items)")
    values = np.unique(data[~np.isnan(data)])
    counts = np.zeros((data.shape[1], values.size))
    rows, cols = np.nonzero(~np.isnan(data))
    np.add.at(counts, (cols, np.searchsorted(values, data[rows, cols])), 1.0)
    return values, counts


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """(pairable units, V*V): each unit's contribution to the coincidence matrix."""
    m = counts.sum(axis=1)
    counts = counts[m >= 2]
    m = m[m >= 2]
    v = counts.shape[1]
    o = counts[:, :, None] * counts[:, None, :]
    o[:, np.arange(v), np.arange(v)] -= counts
    return (o / (m - 1.0)[:, None, None]).reshape(counts.shape[0], v * v)


def _delta2(values: np.ndarray, n_c: np.ndarray, level: Level) -> np.ndarray:
    """δ²_ck, shape (..., V, V) following n_c's leading axes."""
    v = values.size
    c, k = np.meshgrid(np.arange(v), np.arange(v), indexing="ij")
    if level == "nominal":
        return np.broadcast_to((c != k).astype(float), n_c.shape[:-1] + (v, v))
    if level == "interval":
        return np.broadcast_to((values[:, None] - values[None, :]) ** 2, n_c.shape[:-1] + (v, v))
    if level == "ordinal":
        lo, hi = np.minimum(c, k), np.maximum(c, k)
        cum = np.cumsum(n_c, axis=-1)
        between = cum[..., hi] - cum[..., lo] + n_c[..., lo]  # Σ_{g=lo}^{hi} n_g
        d = between - (n_c[..., :, None] + n_c[..., None, :]) / 2.0
        return d**2
    raise ValueError(f"unknown level of measurement: {level!r}")


def _alpha_from(coincidence: np.ndarray, values: np.ndarray, level: Level) -> np.ndarray:
    """α from coincidence matrices (..., V, V)."""
    n_c = coincidence.sum(axis=-1)
    n = n_c.sum(axis=-1)
    d2 = _delta2(values, n_c, level)
    observed = (coincidence * d2).sum(axis=(-2, -1))
    expected = (n_c[..., :, None] * n_c[..., None, :] * d2).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 1e-12, 1.0 - (n - 1.0) * observed / expected, np.nan)


def coincidence_matrix(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values and the (V, V) coincidence matrix of a (raters, items) matrix."""
    values, counts = value_counts(data)
    v = values.size
    return values, _unit_coincidences(counts).sum(axis=0).reshape(v, v)


def krippendorff_alpha(data: np.ndarray, level: Level = "nominal") -> float:
    """α from a (raters, items) reliability matrix with NaN where an item was not rated by a rater.
    Items with fewer than two ratings are not pairable and drop out. NaN when there is no
    variation to measure against (a single value, or no pairable item)."""
    values, o = coincidence_matrix(data)
    if values.size == 0:
        return float("nan")
    return float(_alpha_from(o, values, level))


def krippendorff_alpha_ci(
    data: np.ndarray,
    level: Level = "nominal",
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> Interval:
    """α with a percentile interval from resampling pairable items."""
    values, counts = value_counts(data)
    per_unit = _unit_coincidences(counts)
    v = values.size
    estimate = float(_alpha_from(per_unit.sum(axis=0).reshape(v, v), values, level)) if v else float("nan")
    w = _weights(per_unit.shape[0], n_boot, _rng(seed))
    boot = _alpha_from((w @ per_unit).reshape(n_boot, v, v), values, level) if v else np.full(n_boot, np.nan)
    return _interval(estimate, boot, int(per_unit.shape[0]), confidence)


# ------------------------------------------------------------------------------- from judgments


@dataclass(frozen=True)
class ReliabilityData:
    """A (raters, items) matrix of codes, NaN where a clinician did not judge an item.

    Pairwise items are cards and codes are 0/1 (the preferred response) or TIE; rating items are
    (card, response index) and codes are the 1-5 ratings."""

    kind: Literal["pairwise", "rating"]
    raters: tuple[str, ...]
    items: tuple[Any, ...]
    data: np.ndarray

    def counts(self) -> np.ndarray:
        """(items, categories) counts, for fleiss_kappa."""
        return value_counts(self.data)[1]

    def level(self) -> Level:
        return "nominal" if self.kind == "pairwise" else "ordinal"


def reliability_data(
    judgments: Iterable[Judgment],
    kind: Literal["pairwise", "rating"],
    *,
    source: str = CLINICIAN,
) -> ReliabilityData:
    """Group judgments of one kind and one source by card and clinician.

    Only judgments whose source matches are used, so machine labels never mix silently with
    clinicians'. A clinician who judged the same item twice counts once, with the later judgment.
    """
    cells: dict[tuple[str, Any], float] = {}
    for j in judgments:
        if j.kind != kind or j.source != source:
            continue
        # Items are keyed by response text, not screen position: the review page shows each
        # clinician the pair in their own order, so "left" means different things to two raters.
        if kind == "pairwise":
            order = sorted(j.responses)
            choice = TIE if j.preferred is None else order.index(j.responses[j.preferred])
            cells[(j.clinician, (j.card, *order))] = float(choice)
        else:
            for response, rating in zip(j.responses, j.ratings, strict=False):
                if rating is not None:
                    cells[(j.clinician, (j.card, response))] = float(rating)
    raters = tuple(sorted({r for r, _ in cells}))
    items = tuple(sorted({i for _, i in cells}, key=repr))
    r_index = {r: i for i, r in enumerate(raters)}
    i_index = {it: i for i, it in enumerate(items)}
    data = np.full((len(raters), len(items)), np.nan)
    for (rater, item), code in cells.items():
        data[r_index[rater], i_index[item]] = code
    return ReliabilityData(kind, raters, items, data)


def agreement_report(
    rd: ReliabilityData,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> dict[str, dict[str, float]]:
    """Krippendorff's α at the data's level (and nominal for ratings too) and Fleiss' κ over the
    items rated at least twice, each with its interval; Cohen's κ when there are exactly two raters."""
    rng = _rng(seed)
    out: dict[str, dict[str, float]] = {}
    stats: dict[str, Callable[[], Interval]] = {
        f"alpha_{rd.level()}": lambda: krippendorff_alpha_ci(
            rd.data, rd.level(), n_boot=n_boot, confidence=confidence, seed=rng
        ),
        "fleiss_kappa": lambda: fleiss_kappa_ci(rd.counts(), n_boot=n_boot, confidence=confidence, seed=rng),
    }
    if rd.kind == "rating":
        stats["alpha_nominal"] = lambda: krippendorff_alpha_ci(
            rd.data, "nominal", n_boot=n_boot, confidence=confidence, seed=rng
        )
    if len(rd.raters) == 2:
        stats["cohen_kappa"] = lambda: cohen_kappa_ci(
            list(rd.data[0]), list(rd.data[1]), n_boot=n_boot, confidence=confidence, seed=rng
        )
    for name, fn in stats.items():
        out[name] = fn().to_dict()
    return out
