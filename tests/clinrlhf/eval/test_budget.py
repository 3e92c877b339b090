"""clinrlhf.eval.budget: how much CPU time a method's learning curve needs to reach a concordance, and
the ratio the peer comparison reports (ours to reach the peer's final figure / the peer's total)."""

from __future__ import annotations

import math

import pytest

from clinrlhf.eval.budget import cpu_to_reach, speed_ratio


def test_the_first_checkpoint_at_or_above_the_target_is_interpolated_from_the_one_before() -> None:
    curve = [(0.0, 0.5), (10.0, 0.6), (20.0, 0.8), (30.0, 0.7)]
    # 0.7 lies halfway between 0.6 (at 10 s) and 0.8 (at 20 s)
    assert cpu_to_reach(curve, 0.7) == pytest.approx(15.0)


def test_a_target_met_at_the_start_costs_nothing() -> None:
    assert cpu_to_reach([(0.0, 0.6), (5.0, 0.9)], 0.55) == 0.0


def test_a_target_met_exactly_at_a_checkpoint_costs_that_checkpoint() -> None:
    assert cpu_to_reach([(0.0, 0.5), (4.0, 0.6), (9.0, 0.8)], 0.8) == pytest.approx(9.0)


def test_a_target_never_reached_has_no_time() -> None:
    assert cpu_to_reach([(0.0, 0.5), (10.0, 0.6)], 0.61) is None


def test_the_first_crossing_counts_not_a_later_one() -> None:
    curve = [(0.0, 0.5), (10.0, 0.9), (20.0, 0.4), (30.0, 0.95)]
    assert cpu_to_reach(curve, 0.7) == pytest.approx(5.0)


def test_the_curve_must_be_in_time_order() -> None:
    with pytest.raises(ValueError, match="time order"):
        cpu_to_reach([(10.0, 0.5), (5.0, 0.6)], 0.55)


def test_speed_ratio_is_our_time_to_reach_the_peers_final_concordance_over_the_peers_total() -> None:
    ours = [(0.0, 0.5), (10.0, 0.7), (20.0, 0.9)]
    peer = [(0.0, 0.5), (20.0, 0.6), (40.0, 0.8)]  # final 0.8 after 40 s
    # ours reaches 0.8 halfway between 10 s and 20 s
    assert speed_ratio(ours, peer) == pytest.approx(15.0 / 40.0)


def test_speed_ratio_is_infinite_where_ours_never_reaches_the_peer() -> None:
    assert math.isinf(speed_ratio([(0.0, 0.5), (10.0, 0.6)], [(0.0, 0.5), (10.0, 0.9)]))
