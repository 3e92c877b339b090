"""The one-run canary game (Steinke, Nasr & Jagielski, 2023): the ε lower bound from a guessing game, checked
against closed forms and against every row of Google DeepMind's jax_privacy reference values, δ term
included. The game played against the real mechanism is tests/privacy/dp/test_dirac_canaries.py."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq

from privacy.dp.canary_game import (
    GameOutcome,
    epsilon_from_scores,
    epsilon_lower_bound,
    guess_from_scores,
    p_value,
)


def _q(epsilon: float) -> float:
    return math.exp(epsilon) / (1 + math.exp(epsilon))


def test_with_delta_zero_the_p_value_is_the_binomial_tail_of_randomized_response() -> None:
    for eps in (0.0, 0.5, 2.0):
        assert p_value(100, 40, 30, eps, 0.0) == pytest.approx(1 - stats.binom.cdf(29, 40, _q(eps)))


def test_the_delta_term_matches_a_direct_reading_of_the_theorem() -> None:
    m, r, v, eps, delta = 200, 50, 40, 1.0, 1e-4
    q = _q(eps)
    worst = max(sum(stats.binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1))
    expected = (1 - stats.binom.cdf(v - 1, r, q)) + 2 * m * delta * worst
    assert p_value(m, r, v, eps, delta) == pytest.approx(expected)


def test_all_guesses_right_with_delta_zero_gives_the_closed_form_bound() -> None:
    # P[Bin(r, q) >= r] = q^r = 0.05  =>  ε = logit(0.05^(1/r))
    q = 0.05 ** (1 / 100)
    assert epsilon_lower_bound(100, 100, 100, 0.0) == pytest.approx(math.log(q / (1 - q)), abs=1e-6)


def test_the_bound_is_where_the_p_value_crosses_one_minus_the_confidence() -> None:
    m, r, v, delta = 500, 100, 80, 1e-5
    root = brentq(lambda e: p_value(m, r, v, e, delta) - 0.05, 0.0, 20.0)
    assert epsilon_lower_bound(m, r, v, delta) == pytest.approx(root, abs=1e-6)


def test_chance_level_guessing_bounds_nothing() -> None:
    assert epsilon_lower_bound(200, 100, 50, 1e-5) == 0.0
    assert epsilon_lower_bound(200, 100, 20, 1e-5) == 0.0


def test_more_correct_guesses_prove_more_and_more_slack_proves_less() -> None:
    assert epsilon_lower_bound(200, 100, 90, 1e-5) > epsilon_lower_bound(200, 100, 80, 1e-5)
    assert epsilon_lower_bound(200, 100, 90, 1e-3) < epsilon_lower_bound(200, 100, 90, 0.0)
    assert epsilon_lower_bound(200, 100, 90, 1e-5, 0.99) < epsilon_lower_bound(200, 100, 90, 1e-5, 0.9)


def test_guesses_take_the_highest_scores_as_included_and_the_lowest_as_excluded() -> None:
    scores = [0.9, -0.5, 0.1, 0.7, -0.9, 0.0]
    included = [True, False, False, False, True, True]
    # highest two: 0.9 (in, right), 0.7 (out, wrong); lowest two: -0.9 (in, wrong), -0.5 (out, right)
    assert guess_from_scores(scores, included, 2, 2) == GameOutcome(m=6, guesses=4, correct=2)


@pytest.mark.parametrize(("m", "r", "v"), [(10, 5, 6), (10, 11, 5), (10, 5, -1)])
def test_impossible_outcomes_are_refused(m: int, r: int, v: int) -> None:
    with pytest.raises(ValueError):
        p_value(m, r, v, 1.0, 1e-5)


# Reference values (tests/privacy/dp/reference/, copied from ../shared/reference/dp-audit/): ε lower
# bounds at 95% from jax_privacy's auditing._epsilon_one_run, which includes the 2mδ term, printed to
# 6 decimals after a root search to 1e-6. The second column is an implementation that drops that
# term: for δ > 0 it is too optimistic, and the bound here must come out below it.
REFERENCE = Path(__file__).parent / "reference" / "reference_eps_one_run.tsv"
TOLERANCE = 1e-5


def _reference_rows(path: Path = REFERENCE) -> list[dict[str, str]]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


def test_the_reference_table_is_complete() -> None:
    rows = _reference_rows()
    assert len(rows) == 72
    assert {float(r["delta"]) for r in rows} == {0.0, 1e-5}


@pytest.mark.parametrize(
    "row", _reference_rows(), ids=lambda r: f"m{r['m']}-r{r['r']}-v{r['v']}-d{r['delta']}"
)
def test_the_bound_matches_jax_privacy_delta_term_included(row: dict[str, str]) -> None:
    m, r, v, delta = int(row["m"]), int(row["r"]), int(row["v"]), float(row["delta"])
    bound = epsilon_lower_bound(m, r, v, delta)
    assert bound == pytest.approx(float(row["eps_jax_privacy"]), abs=TOLERANCE)
    if delta > 0:  # the δ term costs something, so dropping it would overstate the bound
        assert bound < float(row["eps_panoramia"])


# jax_privacy's own expected values (its tests' rtol 1e-5) for 10,000 included canaries scoring at the
# N(μ, 1) quantiles and 10,000 excluded at the N(0, 1) quantiles, 95% confidence, δ = 1e-6, the
# threshold searched over the ROC frontier with a Bonferroni correction. The "fdp" rows (Mahloujifar
# et al., 2024, an f-DP audit) are a different statistic that privacy.dp.canary_game does not compute.
GAUSSIAN = Path(__file__).parent / "reference" / "reference_eps_gaussian_canaries.tsv"


@pytest.mark.parametrize(
    "row",
    [r for r in _reference_rows(GAUSSIAN) if r["method"] == "one_run"],
    ids=lambda r: f"mu{r['shift_mu']}",
)
def test_the_threshold_searched_bound_matches_jax_privacy_on_gaussian_canaries(row: dict[str, str]) -> None:
    n = 10_000
    quantiles = stats.norm.ppf((np.arange(n) + 0.5) / n)
    bound = epsilon_from_scores(quantiles + float(row["shift_mu"]), quantiles, 1e-6, 0.95)
    assert bound == pytest.approx(float(row["eps_expected_upstream"]), rel=1e-5, abs=1e-6)


def test_a_threshold_search_needs_canaries_on_both_sides() -> None:
    with pytest.raises(ValueError):
        epsilon_from_scores([1.0, 2.0], [], 1e-6)
