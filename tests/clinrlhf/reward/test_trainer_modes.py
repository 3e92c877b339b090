"""Both Opacus modes train GPT-2 (after Conv1D -> Linear), and agree; empty Poisson batches still
count as noisy steps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward
from privacy.dp import epsilon_for
from privacy.dp.opacus_config import DPConfig


def test_ghost_clipping_trains_the_same_model_as_per_sample_hooks(
    tokenizer: PreTrainedTokenizerFast, train_pairs: list[PreferencePair], backbone: Callable[..., GPT2Model]
) -> None:
    """Same seed, so the same Poisson batches and the same noise draws: the two ways of clipping
    (materialised per-sample gradients vs. ghost norms and a second backward) must give the same
    update, up to float rounding."""
    config = RewardConfig(
        epochs=1,
        batch_size=40,
        learning_rate=1e-2,
        seed=7,
        trainable_blocks=None,
        privacy_unit="pair",  # ghost clipping clips pairs only
        dp=DPConfig(reproducible_noise=True),  # the same noise in both runs
    )
    pairs = train_pairs[:200]
    start = backbone(seed=1).state_dict()
    hooks = train_reward(pairs, backbone(seed=1), tokenizer, config)
    ghost = train_reward(
        pairs, backbone(seed=1), tokenizer, RewardConfig(**{**config.__dict__, "grad_sample_mode": "ghost"})
    )
    assert ghost.params["dp.grad_sample_mode"] == "ghost" and ghost.steps == hooks.steps == 5
    assert ghost.epsilon == hooks.epsilon <= config.dp.target_epsilon
    h, g = hooks.model.state_dict(), ghost.model.state_dict()
    assert not torch.equal(h["backbone.wte.weight"], start["wte.weight"])  # it trained
    for key in h:
        torch.testing.assert_close(g[key], h[key], atol=1e-4, rtol=1e-3, msg=lambda m, key=key: f"{key}: {m}")


@pytest.mark.parametrize("mode", ["hooks", "ghost"])
def test_empty_poisson_batches_are_noisy_steps_that_the_accountant_counts(
    mode: str,
    tokenizer: PreTrainedTokenizerFast,
    train_pairs: list[PreferencePair],
    backbone: Callable[..., GPT2Model],
) -> None:
    # 20 pairs, expected batch 1: each step's sample is empty with probability (19/20)^20 ≈ 0.36.
    config = RewardConfig(
        epochs=1,
        batch_size=1,
        learning_rate=1e-2,
        seed=3,
        grad_sample_mode=mode,  # type: ignore[arg-type]
        trainable_blocks=None,
        privacy_unit="pair",
        dp=DPConfig(reproducible_noise=True),  # a seed known to draw empty batches
    )
    trunk = backbone(seed=2)
    trunk.wpe.weight.requires_grad_(False)  # the caller's frozen parameters stay frozen
    start, positions = trunk.wte.weight.detach().clone(), trunk.wpe.weight.detach().clone()
    result = train_reward(train_pairs[:20], trunk, tokenizer, config)
    sizes = [h["batch_size"] for h in result.history]
    assert 0 in sizes and result.steps == len(sizes) == 20
    assert result.epsilon == epsilon_for(result.noise_multiplier, 1 / 20, 20, result.delta)
    assert not torch.equal(result.model.backbone.wte.weight, start)
    assert torch.equal(result.model.backbone.wpe.weight, positions)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
