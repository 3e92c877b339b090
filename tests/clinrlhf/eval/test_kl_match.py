"""clinrlhf.eval.kl_match: the β of DPO whose KL to the reference matches a target, from a sweep of
measured (β, KL) points, interpolated in log-log (KL falls roughly as a power of β)."""

from __future__ import annotations

import math

import pytest

from clinrlhf.eval.kl_match import beta_for_kl


def test_a_bracketed_target_is_interpolated_in_log_log() -> None:
    # KL = 1/β exactly: log KL is linear in log β, so the interpolation is exact
    points = [(0.1, 10.0), (1.0, 1.0), (10.0, 0.1)]
    assert beta_for_kl(points, 2.0) == pytest.approx(0.5)


def test_the_order_of_the_sweep_does_not_matter() -> None:
    points = [(10.0, 0.1), (0.1, 10.0), (1.0, 1.0)]
    assert beta_for_kl(points, 0.5) == pytest.approx(2.0)


def test_a_target_below_every_measured_kl_extrapolates_past_the_largest_beta() -> None:
    points = [(0.1, 40.0), (0.4, 10.0)]  # KL = 4/β
    assert beta_for_kl(points, 2.0) == pytest.approx(2.0)


def test_a_target_above_every_measured_kl_extrapolates_below_the_smallest_beta() -> None:
    points = [(1.0, 4.0), (4.0, 1.0)]  # KL = 4/β
    assert beta_for_kl(points, 8.0) == pytest.approx(0.5)


def test_a_measured_point_on_target_is_returned_as_is() -> None:
    assert beta_for_kl([(0.3, 5.0), (1.0, 1.5), (3.0, 0.4)], 1.5) == pytest.approx(1.0)


def test_a_flat_sweep_cannot_be_inverted() -> None:
    with pytest.raises(ValueError, match="KL does not change"):
        beta_for_kl([(0.1, 2.0), (1.0, 2.0)], 1.0)


@pytest.mark.parametrize("points", [[(0.1, 2.0)], [(0.0, 2.0), (1.0, 1.0)], [(0.1, -1.0), (1.0, 1.0)]])
def test_it_needs_two_points_with_positive_beta_and_kl(points: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError):
        beta_for_kl(points, 1.0)


def test_the_answer_is_finite_and_positive() -> None:
    beta = beta_for_kl([(0.05, 30.0), (0.2, 9.0), (0.8, 2.5)], 1.0)
    assert math.isfinite(beta) and beta > 0.8
