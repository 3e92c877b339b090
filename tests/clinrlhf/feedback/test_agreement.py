"""Agreement statistics against textbook values, a brute-force α, and the judgment grouping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from clinrlhf.compliance import agreement as lineage
from clinrlhf.feedback import Judgment
from clinrlhf.feedback.agreement import (
    TIE,
    agreement_report,
    cohen_kappa,
    cohen_kappa_ci,
    cohen_kappa_table,
    fleiss_kappa,
    fleiss_kappa_ci,
    krippendorff_alpha,
    krippendorff_alpha_ci,
    reliability_data,
    value_counts,
)

N = np.nan
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1-5, with missing data.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
)
# Same paper, section A: two observers, ten units, binary data.
KRIPPENDORFF_2011_BINARY = np.array([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]])
# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters each, 5 categories.
FLEISS_WIKIPEDIA = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


# ------------------------------------------------------------------------------ textbook values


def test_krippendorff_2011_example_with_missing_data() -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011, "nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(KRIPPENDORFF_2011, "ordinal") == pytest.approx(0.815, abs=5e-4)
    assert krippendorff_alpha(KRIPPENDORFF_2011, "interval") == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_2011_binary_example() -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011_BINARY) == pytest.approx(0.095, abs=5e-4)


def test_fleiss_wikipedia_example() -> None:
    assert fleiss_kappa(FLEISS_WIKIPEDIA) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_matches_the_lineage_implementation() -> None:
    rng = np.random.default_rng(3)
    for counts in (FLEISS_WIKIPEDIA, rng.integers(0, 4, size=(30, 3))):
        rated_twice = counts[counts.sum(axis=1) >= 2]  # lineage expects category_counts' filtering
        assert fleiss_kappa(counts) == pytest.approx(lineage.fleiss_kappa(rated_twice))
    ratings = {"a": ["x", "y", "x"], "b": ["y", "y"], "c": ["x"], "d": ["x", "x", "y", "y"]}
    expected = lineage.agreement_summary(ratings)["kappa"]
    assert fleiss_kappa(lineage.category_counts(ratings)) == pytest.approx(expected)


def test_cohen_two_by_two_by_hand() -> None:
    # A yes/B yes 20, A yes/B no 5, A no/B yes 10, A no/B no 15: p_o = 35/50 = 0.7,
    # p_e = (25·30 + 25·20)/50² = 0.5, κ = (0.7 − 0.5)/(1 − 0.5) = 0.4.
    assert cohen_kappa_table(np.array([[20, 5], [10, 15]])) == pytest.approx(0.4)
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # Missing labels drop the item.
    assert cohen_kappa(a + [None, "y"], b + ["y", float("nan")]) == pytest.approx(0.4)


def test_cohen_three_categories_by_hand() -> None:
    table = np.array([[10, 2, 0], [1, 8, 1], [0, 2, 6]])
    n = table.sum()
    p_o = np.trace(table) / n
    p_e = (table.sum(1) * table.sum(0)).sum() / n**2
    assert cohen_kappa_table(table) == pytest.approx((p_o - p_e) / (1 - p_e))


# ------------------------------------------------------------------------------ edge cases


def test_perfect_agreement_is_one() -> None:
    labels = [0, 1, 2, 1, 0, 2, 2]
    assert cohen_kappa(labels, labels) == pytest.approx(1.0)
    data = np.array([labels, labels, labels], dtype=float)
    data[0, 3] = N  # missing ratings do not break perfect agreement
    for level in ("nominal", "ordinal", "interval"):
        assert krippendorff_alpha(data, level) == pytest.approx(1.0)
    assert fleiss_kappa(value_counts(np.array([labels] * 3, dtype=float))[1]) == pytest.approx(1.0)


def test_no_variation_is_undefined() -> None:
    assert np.isnan(krippendorff_alpha(np.ones((3, 4))))
    assert np.isnan(fleiss_kappa(np.array([[3], [3]])))
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))
    assert np.isnan(krippendorff_alpha(np.full((2, 3), N)))


def test_unpairable_items_drop_out_of_alpha() -> None:
    extra = np.hstack([KRIPPENDORFF_2011, np.array([[7.0], [N], [N], [N]])])
    # Unit 13 has one value only; but a value seen only there is not in the coincidence matrix.
    assert krippendorff_alpha(extra) == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011))


# ------------------------------------------------------------------------------ brute force


def brute_force_alpha_nominal(data: np.ndarray) -> float:
    """α = 1 − D_o / D_e by enumerating pairs: D_o over ordered pairs of raters within each unit
    (weight 1/(m_u − 1)), D_e over all ordered pairs of pairable values in the whole data."""
    units = [[v for v in data[:, u] if not np.isnan(v)] for u in range(data.shape[1])]
    units = [vals for vals in units if len(vals) >= 2]
    pooled = [v for vals in units for v in vals]
    n = len(pooled)
    d_o = (
        sum(
            (vals[i] != vals[j]) / (len(vals) - 1)
            for vals in units
            for i, j in itertools.permutations(range(len(vals)), 2)
        )
        / n
    )
    d_e = sum(pooled[i] != pooled[j] for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    return 1.0 - d_o / d_e


def test_alpha_nominal_matches_brute_force_on_random_data() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        raters, items = rng.integers(2, 6), rng.integers(3, 15)
        truth = rng.integers(0, 4, size=items)
        data = np.where(rng.random((raters, items)) < 0.6, truth, rng.integers(0, 4, size=(raters, items)))
        data = data.astype(float)
        data[rng.random((raters, items)) < 0.25] = N
        assert krippendorff_alpha(data) == pytest.approx(brute_force_alpha_nominal(data), nan_ok=True)


def test_alpha_and_fleiss_agree_for_many_items() -> None:
    # With a fixed number of raters and no missing data, α_nominal and Fleiss' κ differ only by
    # α's small-sample correction of the expected disagreement, which vanishes with many items.
    rng = np.random.default_rng(11)
    truth = rng.integers(0, 3, size=2000)
    data = np.where(rng.random((4, 2000)) < 0.7, truth, rng.integers(0, 3, size=(4, 2000))).astype(float)
    assert krippendorff_alpha(data) == pytest.approx(fleiss_kappa(value_counts(data)[1]), abs=1e-3)


# ------------------------------------------------------------------------------ bootstrap


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded() -> None:
    rng = np.random.default_rng(5)
    truth = rng.integers(1, 6, size=60)
    data = np.clip(truth + rng.integers(-1, 2, size=(3, 60)), 1, 5).astype(float)
    data[rng.random(data.shape) < 0.1] = N
    intervals = [
        krippendorff_alpha_ci(data, "nominal", n_boot=500, seed=1),
        krippendorff_alpha_ci(data, "ordinal", n_boot=500, seed=1),
        krippendorff_alpha_ci(data, "interval", n_boot=500, seed=1),
        fleiss_kappa_ci(FLEISS_WIKIPEDIA, n_boot=500, seed=1),
        cohen_kappa_ci(list(data[0]), list(data[1]), n_boot=500, seed=1),
    ]
    for iv in intervals:
        assert iv.low <= iv.estimate <= iv.high
        assert iv.high - iv.low > 0
        assert iv.resamples > 450
    assert intervals[0] == krippendorff_alpha_ci(data, "nominal", n_boot=500, seed=1)
    assert intervals[0] != krippendorff_alpha_ci(data, "nominal", n_boot=500, seed=2)
    assert krippendorff_alpha_ci(data, "ordinal", n_boot=10).estimate == krippendorff_alpha(data, "ordinal")


def test_bootstrap_interval_narrows_with_more_items() -> None:
    rng = np.random.default_rng(9)

    def width(items: int) -> float:
        truth = rng.integers(0, 3, size=items)
        data = np.where(rng.random((3, items)) < 0.7, truth, rng.integers(0, 3, size=(3, items))).astype(
            float
        )
        iv = krippendorff_alpha_ci(data, n_boot=400, seed=0)
        return iv.high - iv.low

    assert width(1000) < width(40)


def test_bootstrap_matches_a_loop_over_resamples() -> None:
    data = KRIPPENDORFF_2011[:, :11]  # unit 12 is not pairable
    iv = krippendorff_alpha_ci(data, "ordinal", n_boot=50, seed=np.random.default_rng(4), confidence=0.9)
    w = np.random.default_rng(4).multinomial(11, np.full(11, 1 / 11), size=50)
    loop = []
    for row in w:
        resample = np.repeat(data, row, axis=1)
        loop.append(krippendorff_alpha(resample, "ordinal"))
    loop = np.array(loop)
    loop = loop[np.isfinite(loop)]
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(loop, [0.05, 0.95])))


# ------------------------------------------------------------------------------ from judgments


def pairwise(card: str, clinician: str, preferred: int | None, source: str = "clinician") -> Judgment:
    return Judgment(
        "pairwise", card, "p", clinician, "treat ->", ("a", "b"), preferred=preferred, source=source
    )


def rating(card: str, clinician: str, ratings: tuple[int | None, ...]) -> Judgment:
    return Judgment("rating", card, "p", clinician, "treat ->", ("a", "b"), ratings=ratings)


def test_reliability_data_from_pairwise_judgments() -> None:
    judgments = [
        pairwise("c1", "dr1", 0),
        pairwise("c1", "dr2", 0),
        pairwise("c2", "dr1", 1),
        pairwise("c2", "dr2", None),
        pairwise("c3", "dr2", 1),
        pairwise("c3", "ai", 0, source="rlaif"),  # never mixed in
        rating("c1", "dr3", (5, 4)),  # other kind
    ]
    rd = reliability_data(judgments, "pairwise")
    assert rd.raters == ("dr1", "dr2")
    assert rd.items == (("c1", "a", "b"), ("c2", "a", "b"), ("c3", "a", "b"))
    np.testing.assert_array_equal(rd.data, [[0, 1, N], [0, TIE, 1]])
    assert rd.level() == "nominal"
    assert rd.counts().tolist() == [[2, 0, 0], [0, 1, 1], [0, 1, 0]]
    assert reliability_data(judgments, "pairwise", source="rlaif").raters == ("ai",)


def test_reliability_data_matches_responses_not_screen_positions() -> None:
    """The review page shows each clinician the pair in their own order: two clinicians who both
    prefer response "a", one seeing it on the left and one on the right, agree."""
    left = Judgment("pairwise", "c1", "p", "dr1", "treat ->", ("a", "b"), preferred=0)
    right = Judgment("pairwise", "c1", "p", "dr2", "treat ->", ("b", "a"), preferred=1)
    rd = reliability_data([left, right], "pairwise")
    assert len(rd.items) == 1
    np.testing.assert_array_equal(rd.data, [[0], [0]])
    rated = [
        Judgment("rating", "c1", "p", "dr1", "treat ->", ("a", "b"), ratings=(5, 1)),
        Judgment("rating", "c1", "p", "dr2", "treat ->", ("b", "a"), ratings=(1, 5)),
    ]
    np.testing.assert_array_equal(reliability_data(rated, "rating").data, [[5, 1], [5, 1]])


def test_reliability_data_from_ratings_and_report() -> None:
    judgments = [
        rating("c1", "dr1", (5, 2)),
        rating("c1", "dr2", (4, 2)),
        rating("c1", "dr3", (5, None)),
        rating("c2", "dr1", (1, 3)),
        rating("c2", "dr2", (2, 3)),
        rating("c2", "dr1", (1, 4)),  # a repeat: the later judgment counts
    ]
    rd = reliability_data(judgments, "rating")
    assert rd.items == (("c1", "a"), ("c1", "b"), ("c2", "a"), ("c2", "b"))
    np.testing.assert_array_equal(rd.data, [[5, 2, 1, 4], [4, 2, 2, 3], [5, N, N, N]])
    assert rd.level() == "ordinal"
    report = agreement_report(rd, n_boot=200, seed=0)
    assert set(report) == {"alpha_ordinal", "alpha_nominal", "fleiss_kappa"}
    assert report["alpha_ordinal"]["estimate"] == pytest.approx(krippendorff_alpha(rd.data, "ordinal"))
    assert report["alpha_ordinal"]["items"] == 4


def test_report_has_cohen_for_two_raters() -> None:
    judgments = [
        pairwise(f"c{i}", dr, (i + (dr == "dr2" and i % 4 == 0)) % 2)
        for i in range(20)
        for dr in ("dr1", "dr2")
    ]
    report = agreement_report(reliability_data(judgments, "pairwise"), n_boot=200)
    assert set(report) == {"alpha_nominal", "fleiss_kappa", "cohen_kappa"}
    a = [(i % 2) for i in range(20)]
    b = [(i + (i % 4 == 0)) % 2 for i in range(20)]
    assert report["cohen_kappa"]["estimate"] == pytest.approx(cohen_kappa(a, b))
    assert report["cohen_kappa"]["low"] <= report["cohen_kappa"]["estimate"] <= report["cohen_kappa"]["high"]
