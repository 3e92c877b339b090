"""The study's figures from concordance curves: judgments to reach a target and the ratios."""

from __future__ import annotations

import pytest

from clinrlhf.active.curves import judgments_to_reach, mean_curve, needs_by_target, ratio, ratios


def _curve(*points: tuple[int, float]) -> list[dict]:
    return [{"judgments": j, "concordance": c, "unsafe_rate": 0.0} for j, c in points]


RANDOM = _curve((100, 0.50), (200, 0.55), (300, 0.60))
ACTIVE = _curve((100, 0.50), (200, 0.60), (300, 0.62))


def test_the_first_point_at_or_above_the_target_counts() -> None:
    assert judgments_to_reach(RANDOM, 0.60) == 300
    assert judgments_to_reach(ACTIVE, 0.60) == 200
    assert judgments_to_reach(ACTIVE, 0.70) is None


def test_ratios_say_how_many_times_fewer_judgments_and_none_when_unreached() -> None:
    assert ratio(300, 200) == 1.5
    assert ratio(None, 200) is None and ratio(300, None) is None and ratio(300, 0) is None
    assert ratios({"random": 300, "active": 200}) == {"random/active": 1.5}


def test_the_grid_spans_every_reached_concordance() -> None:
    table = needs_by_target({"random": RANDOM, "active": ACTIVE})
    assert list(table)[0] == "0.50" and list(table)[-1] == "0.62"
    assert table["0.60"] == {"judgments": {"random": 300, "active": 200}, "ratios": {"random/active": 1.5}}
    assert table["0.62"]["judgments"] == {"random": None, "active": 300}


def test_mean_curve_averages_point_by_point() -> None:
    mean = mean_curve([RANDOM, ACTIVE])
    assert mean[1] == {"judgments": 200, "concordance": pytest.approx(0.575), "unsafe_rate": 0.0}
