"""Per-rater flip rates: the noisy-label likelihood, the buckets, and that training finds who flips."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.loss import bradley_terry_loss
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.raters import RaterFlipLogits, rater_bucket
from clinrlhf.reward.trainer import train_reward
from privacy.dp.opacus_config import DPConfig


def test_a_rater_who_never_flips_gives_the_plain_bradley_terry_loss() -> None:
    chosen, rejected = torch.tensor([1.0, -0.5, 2.0]), torch.tensor([0.0, 0.5, -1.0])
    never = torch.full((3,), -1e4)
    assert torch.allclose(
        bradley_terry_loss(chosen, rejected, flip_logits=never, reduction="none"),
        bradley_terry_loss(chosen, rejected, reduction="none"),
    )


def test_a_rater_who_always_flips_counts_reversed() -> None:
    chosen, rejected = torch.tensor([1.0, -0.5]), torch.tensor([0.0, 0.5])
    always = torch.full((2,), 1e4)
    assert torch.allclose(
        bradley_terry_loss(chosen, rejected, flip_logits=always, reduction="none"),
        bradley_terry_loss(rejected, chosen, reduction="none"),
    )


def test_a_coin_flipping_rater_carries_no_signal() -> None:
    chosen = torch.tensor([3.0, -2.0], requires_grad=True)
    loss = bradley_terry_loss(chosen, torch.zeros(2), flip_logits=torch.zeros(2), reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(2 * math.log(2))
    assert torch.allclose(chosen.grad, torch.zeros(2), atol=1e-6)


def test_buckets_are_stable_and_in_range() -> None:
    assert rater_bucket("dr-a", 1024) == rater_bucket("dr-a", 1024)
    assert all(0 <= rater_bucket(f"dr-{i}", 7) < 7 for i in range(50))
    assert len({rater_bucket(f"dr-{i}", 1024) for i in range(10)}) > 8


def test_flip_rates_start_at_the_prior() -> None:
    rates = RaterFlipLogits(64, 0.2).flip_rates(["a", "b"])
    assert rates == pytest.approx({"a": 0.2, "b": 0.2})


def test_an_invalid_prior_is_refused() -> None:
    with pytest.raises(ValueError, match="initial_flip"):
        RaterFlipLogits(8, 0.5)


def test_training_learns_which_rater_flips_and_ignores_it(
    train_pairs: list[PreferencePair],
    tokenizer: PreTrainedTokenizerFast,
    backbone: Callable[..., GPT2Model],
) -> None:
    """Three raters label truthfully, one labels every pair backwards. Without DP noise to blur it,
    the adversary's learned flip rate goes above 1/2 and the honest ones' below their prior."""
    labelled = [
        replace(p, clinician=f"dr-{i % 4}")
        if i % 4
        else replace(p, clinician="dr-0", chosen=p.rejected, rejected=p.chosen)
        for i, p in enumerate(train_pairs)
    ]
    config = RewardConfig(dp=DPConfig(enabled=False), epochs=12, rater_initial_flip=0.2)
    result = train_reward(labelled, backbone(), tokenizer, config)
    rates = result.rater_flip_rates
    assert set(rates) == {"dr-0", "dr-1", "dr-2", "dr-3"}
    assert rates["dr-0"] > 0.5
    assert max(rates[f"dr-{i}"] for i in (1, 2, 3)) < 0.2
    assert result.params["reward.rater_buckets"] == "4096"
