"""Percentile bootstrap intervals, checked against the binomial distribution they must converge to."""

import numpy as np
import pytest
from scipy.stats import binom

from clinrlhf.eval.bootstrap import (
    bootstrap_rates,
    interval_metrics,
    outcome_intervals,
    percentile_interval,
    resampled_means,
)
from clinrlhf.world.scoring import Outcome


def test_bootstrap_of_a_binary_sample_matches_the_binomial_quantiles():
    # Resampling n flags with k ones draws Binomial(n, k/n) ones: the percentile interval of the
    # mean must match that distribution's quantiles, divided by n.
    n, k = 400, 120
    flags = np.array([1] * k + [0] * (n - k))
    (interval,) = bootstrap_rates(flags, resamples=20_000, seed=1)
    expected_low, expected_high = binom.ppf([0.025, 0.975], n, k / n) / n
    assert interval.estimate == pytest.approx(0.3)
    assert interval.low == pytest.approx(expected_low, abs=0.006)
    assert interval.high == pytest.approx(expected_high, abs=0.006)


def test_vectorised_resampling_equals_a_plain_loop_over_the_same_draws():
    values = np.random.default_rng(0).random((50, 2))
    fast = resampled_means(values, 30, np.random.default_rng(7))
    rng, slow = np.random.default_rng(7), []
    idx = rng.integers(0, 50, size=(30, 50))
    for row in idx:
        slow.append([sum(values[i, m] for i in row) / 50 for m in range(2)])
    np.testing.assert_allclose(fast, np.array(slow))


def test_percentile_interval_takes_the_two_tail_quantiles():
    low, high = percentile_interval(np.arange(101), level=0.9)
    assert (float(low), float(high)) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError):
        percentile_interval([1.0], level=1.0)


def test_same_seed_same_interval_and_the_interval_holds_the_estimate():
    flags = np.random.default_rng(3).integers(0, 2, 200)
    a, b = bootstrap_rates(flags, seed=5), bootstrap_rates(flags, seed=5)
    assert a == b
    assert a[0].low <= a[0].estimate <= a[0].high


def test_empty_sample_is_refused():
    with pytest.raises(ValueError, match="empty"):
        bootstrap_rates(np.array([]))


def test_subgroup_intervals_are_keyed_like_contract_metrics_and_wider_for_smaller_groups():
    outcomes = [Outcome.CONCORDANT, Outcome.UNSAFE, Outcome.OFF_TARGET, Outcome.CONCORDANT] * 100
    groups = [{"sex": "female" if i < 360 else "male"} for i in range(400)]
    intervals = outcome_intervals(outcomes, groups, resamples=1000)
    assert set(intervals) == {"", "sex.female", "sex.male"}
    overall = intervals[""]
    assert overall["concordance"].estimate == pytest.approx(0.5)
    assert overall["unsafe_rate"].estimate == pytest.approx(0.25)
    female, male = intervals["sex.female"]["concordance"], intervals["sex.male"]["concordance"]
    assert male.high - male.low > female.high - female.low  # 40 scenarios vs 360
    metrics = interval_metrics(intervals)
    assert metrics["eval.concordance_ci_low"] == overall["concordance"].low
    assert metrics["eval.unsafe_rate_ci_high.sex.male"] == intervals["sex.male"]["unsafe_rate"].high


def test_adding_a_subgroup_leaves_the_other_groups_intervals_unchanged():
    outcomes = [Outcome.CONCORDANT, Outcome.MISSED] * 50
    one = outcome_intervals(outcomes, [{"sex": "female"}] * 100, resamples=200)
    two = outcome_intervals(outcomes, [{"sex": "female", "age_band": "0-19"}] * 100, resamples=200)
    assert one["sex.female"] == two["sex.female"]


def test_outcomes_and_groups_must_align():
    with pytest.raises(ValueError):
        outcome_intervals([Outcome.CONCORDANT], [])
