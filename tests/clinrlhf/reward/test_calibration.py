"""Reliability table, ECE and correlations, against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from clinrlhf.reward.calibration import (
    calibration_error,
    expected_calibration_error,
    pearson,
    reliability_table,
    spearman,
)


def test_reliability_table_counts_both_orders_of_each_pair() -> None:
    # Both orders: (0.95, 1) (0.62, 1) (0.33, 1) and (0.05, 0) (0.38, 0) (0.67, 0).
    table = reliability_table(torch.tensor([0.95, 0.62, 0.33]), bins=10)
    assert [row["count"] for row in table] == [1, 0, 0, 2, 0, 0, 2, 0, 0, 1]
    assert table[3]["confidence"] == pytest.approx(0.355) and table[3]["accuracy"] == 0.5
    assert table[6]["confidence"] == pytest.approx(0.645) and table[6]["accuracy"] == 0.5
    assert table[0]["accuracy"] == 0.0 and table[9]["accuracy"] == 1.0
    assert table[1]["confidence"] is None and table[1]["accuracy"] is None
    assert (table[4]["low"], table[4]["high"]) == (0.4, 0.5)


def test_ece_is_the_weighted_gap_of_the_table() -> None:
    # (2·0.145 + 2·0.145 + 0.05 + 0.05) / 6
    p = torch.tensor([0.95, 0.62, 0.33])
    assert expected_calibration_error(p) == pytest.approx(0.68 / 6, abs=1e-6)
    assert calibration_error(reliability_table(p)) == expected_calibration_error(p)


def test_certainty_lands_in_the_last_bin_and_an_empty_table_has_no_error() -> None:
    table = reliability_table(torch.ones(4), bins=5)
    assert table[4]["count"] == 4 and table[0]["count"] == 4
    assert expected_calibration_error(torch.ones(4), bins=5) == 0.0
    with pytest.raises(ValueError, match="empty"):
        calibration_error(reliability_table(torch.zeros(0)))


def test_pearson_matches_the_hand_computation() -> None:
    # x̄ = 2, ȳ = 13/3: Σ(x−x̄)(y−ȳ) = 5, Σ(x−x̄)² = 2, Σ(y−ȳ)² = 38/3.
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(2 * 38 / 3))
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equally long"):
        pearson([1, 2], [1, 2, 3])


def test_spearman_ranks_ties_at_their_average() -> None:
    # ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): 4.5 / sqrt(4.5 · 5).
    assert spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1, 2, 3, 4], [1, 8, 27, 64]) < 0.99
