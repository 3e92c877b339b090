"""User-level DP-SGD's pure steps: contribution bounding, the sample rate over units, per-unit sums."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from privacy.dp import bound_contributions, sum_by_unit, unit_sample_rate


def _units(counts: dict[str, int]) -> list[str]:
    """Rows interleaved across units, as pairs arrive from many clinicians at once."""
    rows, left = [], dict(counts)
    while any(left.values()):
        for unit in counts:
            if left[unit]:
                rows.append(unit)
                left[unit] -= 1
    return rows


def test_every_unit_keeps_at_most_the_bound_and_small_units_keep_everything() -> None:
    units = _units({"a": 50, "b": 3, "c": 8, "d": 9})
    kept = bound_contributions(units, max_per_unit=8, seed=0)
    per_unit = Counter(units[i] for i in kept)
    assert per_unit == {"a": 8, "b": 3, "c": 8, "d": 8}
    assert kept == sorted(set(kept))  # ascending, no duplicates
    assert {i for i, u in enumerate(units) if u in ("b", "c")} <= set(kept)


def test_a_units_choice_depends_on_its_own_rows_only() -> None:
    """Adding or removing a whole other unit must not change what this unit keeps, or bounding would
    turn neighbouring datasets into datasets that differ in more than one unit."""
    alone = ["a"] * 30
    crowded = _units({"a": 30, "z": 40})
    kept_alone = bound_contributions(alone, 5, seed=3)
    kept_crowded = bound_contributions(crowded, 5, seed=3)
    a_rows = [i for i, u in enumerate(crowded) if u == "a"]  # the k-th "a" row in the crowded list
    assert [a_rows[i] for i in kept_alone] == [i for i in kept_crowded if crowded[i] == "a"]


def test_the_choice_is_seeded_and_not_simply_the_first_rows() -> None:
    units = ["a"] * 100
    first = bound_contributions(units, 10, seed=0)
    assert first == bound_contributions(units, 10, seed=0)
    assert first != bound_contributions(units, 10, seed=1)
    assert first != list(range(10))


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_per_unit"):
        bound_contributions(["a"], 0, seed=0)


@pytest.mark.parametrize(
    ("n_units", "per_batch", "rate"), [(10, 3, 1 / 4), (10, 10, 1.0), (10, 64, 1.0), (1000, 50, 1 / 20)]
)
def test_sample_rate_is_one_over_the_steps_per_epoch(n_units: int, per_batch: int, rate: float) -> None:
    assert unit_sample_rate(n_units, per_batch) == rate


def test_sample_rate_needs_units() -> None:
    with pytest.raises(ValueError, match="at least one unit"):
        unit_sample_rate(0, 5)


def test_rows_are_summed_into_their_units() -> None:
    rows = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 20.0], [5.0, 6.0]])
    owner = torch.tensor([0, 0, 2, 0])
    expected = torch.tensor([[9.0, 12.0], [0.0, 0.0], [10.0, 20.0]])
    assert torch.equal(sum_by_unit(rows, owner, 3), expected)
