"""Steering feedback collection toward under-served subgroups."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from clinrlhf.feedback.steering import (
    SteeringConfig,
    patient_weights,
    steered_order,
    steering_weights,
    target_shares,
)


def test_target_shares_default_to_equal_and_renormalise():
    assert target_shares(["a", "b", "b", "c"], {}) == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    # "c" is not named: it gets the smallest named share (0.2) before renormalising.
    assert target_shares(["a", "b", "c"], {"a": 0.6, "b": 0.2}) == pytest.approx(
        {"a": 0.6, "b": 0.2, "c": 0.2}
    )
    with pytest.raises(ValueError):
        target_shares(["a"], {"a": -1.0})


def test_weights_follow_the_deficit_ratio():
    # counts 9 and 1 smooth to 10 and 2 (shares 5/6 and 1/6); equal targets give ratios 0.6 and 3.
    weights = steering_weights({"a": 9, "b": 1}, {"a": 0.5, "b": 0.5})
    assert weights == pytest.approx({"a": 0.6 / 3.6, "b": 3 / 3.6})
    assert steering_weights({}, {"a": 0.5, "b": 0.5}) == pytest.approx({"a": 0.5, "b": 0.5})


def test_weights_are_capped():
    weights = steering_weights({"a": 999, "b": 0}, {"a": 0.5, "b": 0.5}, max_weight=4.0)
    assert weights["b"] / weights["a"] == pytest.approx(4.0)


def test_patient_weights_spread_a_group_weight_over_its_patients():
    assert patient_weights(["a", "a", "b"], {"a": 0.5, "b": 0.5}) == [0.25, 0.25, 0.5]


def test_steering_raises_a_minority_share_toward_its_target():
    rng = random.Random(0)
    groups = ["white"] * 900 + ["asian"] * 60 + ["aian"] * 40
    rng.shuffle(groups)
    config = SteeringConfig(attribute="race", patients=150)
    order = steered_order(groups, config, random.Random(1))
    assert len(order) == len(set(order)) == 150
    picked = Counter(groups[i] for i in order)
    # Unsteered, 150 patients would hold ~135 white and ~6 aian; equal targets give ~50 each.
    assert picked["aian"] >= 35 and picked["white"] <= 65


def test_without_a_budget_every_patient_is_sent_once():
    groups = ["x"] * 5 + ["y"] * 3
    order = steered_order(groups, SteeringConfig(), random.Random(2))
    assert sorted(order) == list(range(8))


def test_unequal_targets_are_reached_not_compressed_toward_equal():
    # Drawing groups with probability ∝ target / observed alone settles at √target (60/30/10 ->
    # 47/33/19); the target factor makes the shares drawn converge to the targets themselves.
    groups = ["a"] * 3000 + ["b"] * 1500 + ["c"] * 500
    random.Random(0).shuffle(groups)
    targets = {"a": 0.6, "b": 0.3, "c": 0.1}
    for seed in (0, 1):
        order = steered_order(
            groups, SteeringConfig(target_shares=targets, patients=600), random.Random(seed)
        )
        got = {g: n / 600 for g, n in Counter(groups[i] for i in order).items()}
        assert got == pytest.approx(targets, abs=0.03)


def test_weights_favour_a_group_behind_its_target():
    # Exactly on target (60/30/10 observed, smoothed), weights equal the targets to within smoothing;
    # a group behind its target is drawn more often than its target share.
    on = steering_weights({"a": 599, "b": 299, "c": 99}, {"a": 0.6, "b": 0.3, "c": 0.1})
    assert on == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1}, abs=1e-3)
    behind = steering_weights({"a": 650, "b": 299, "c": 49}, {"a": 0.6, "b": 0.3, "c": 0.1})
    assert behind["c"] > 0.1 and behind["a"] < 0.6
