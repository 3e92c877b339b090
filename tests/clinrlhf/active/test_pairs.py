"""Double Thompson sampling of the pair a card shows, on hand-made reward samples."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from clinrlhf.active.pairs import best_disagreement, thompson_pair


def test_samples_that_agree_give_the_best_and_the_runner_up():
    rewards = torch.tensor([[0.0, 3.0, 1.0, 2.0], [0.1, 2.9, 1.1, 2.2], [0.0, 3.1, 0.9, 1.9]])
    for seed in range(20):
        assert thompson_pair(rewards, random.Random(seed)) == (1, 3)
    assert best_disagreement(rewards) == 0.0


def test_samples_that_disagree_pair_their_two_bests():
    # Two samples favour candidate 0, two favour candidate 2; candidate 1 is nobody's best.
    rewards = torch.tensor([[2.0, 1.0, 0.0], [2.0, 1.5, 0.0], [0.0, 1.0, 2.0], [0.0, 1.5, 2.0]])
    pairs = Counter(frozenset(thompson_pair(rewards, random.Random(seed))) for seed in range(200))
    assert set(pairs) == {frozenset({0, 2})}
    assert best_disagreement(rewards) == pytest.approx(0.5)


def test_the_first_candidate_is_each_sample_best_in_proportion():
    # Three samples: the best is 0, 0 and 1, so `first` is 0 about two thirds of the time.
    rewards = torch.tensor([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    firsts = Counter(thompson_pair(rewards, random.Random(seed))[0] for seed in range(3000))
    assert firsts[0] / 3000 == pytest.approx(2 / 3, abs=0.03)
    assert best_disagreement(rewards) == pytest.approx(1 / 3)


def test_deterministic_for_a_seed_and_never_the_same_candidate_twice():
    rewards = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    assert thompson_pair(rewards, random.Random(3)) == thompson_pair(rewards, random.Random(3))
    for seed in range(100):
        first, second = thompson_pair(rewards, random.Random(seed))
        assert first != second and 0 <= first < 7 and 0 <= second < 7


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="two candidates"):
        thompson_pair(torch.zeros(3, 1), random.Random(0))
    with pytest.raises(ValueError, match="samples, candidates"):
        best_disagreement(torch.zeros(4))
