"""Ensemble members: subsampled by case (never with replacement), trained with the project's trainer."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from clinrlhf.active.ensemble import subsample, train_ensemble
from clinrlhf.active.uncertainty import ensemble_rewards, pair_uncertainty
from clinrlhf.policy import build_policy
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import train_reward
from privacy.dp.opacus_config import DPConfig

from .conftest import TINY

Triples = tuple[list[str], list[str], list[str]]


def test_subsample_keeps_groups_whole_and_never_repeats() -> None:
    items = [(g, i) for g in "abcdefghij" for i in range(3)]
    kept = subsample(items, 0.5, seed=0, key=lambda x: x[0])
    groups = {g for g, _ in kept}
    assert len(groups) == 5
    assert kept == [x for x in items if x[0] in groups]  # whole groups, input order, no duplicates
    assert subsample(items, 0.5, seed=0, key=lambda x: x[0]) == kept
    assert {g for g, _ in subsample(items, 0.5, seed=1, key=lambda x: x[0])} != groups
    assert subsample(items, 1.0, seed=3, key=lambda x: x[0]) == items
    assert len(subsample(items, 0.01, seed=0, key=lambda x: x[0])) == 3  # at least one group
    with pytest.raises(ValueError, match="fraction"):
        subsample(items, 0.0, seed=0)


def test_members_differ_and_the_first_is_the_plain_reward_model(
    tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, b = triples
    pairs = [
        PreferencePair(p, x, y, clinician=f"dr-{i % 3}", patient=f"pt-{i}", source="clinician")
        for i, (p, x, y) in enumerate(zip(prompts * 4, a * 4, b * 4, strict=True))
    ]
    torch.manual_seed(0)
    backbone = build_policy(TINY, tokenizer).transformer
    before = copy.deepcopy(backbone.state_dict())
    config = RewardConfig(epochs=2, batch_size=16, learning_rate=1e-2, dp=DPConfig(enabled=False), seed=4)
    results = train_ensemble(pairs, backbone, tokenizer, config, members=3, fraction=0.5)
    assert len(results) == 3
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())  # copied, not changed

    plain = train_reward(pairs, copy.deepcopy(backbone), tokenizer, config).model
    models = [r.model for r in results]
    assert torch.allclose(
        score_texts(models[0], tokenizer, prompts, a), score_texts(plain, tokenizer, prompts, a)
    )

    ra, rb = ensemble_rewards(models, tokenizer, prompts, a), ensemble_rewards(models, tokenizer, prompts, b)
    assert pair_uncertainty(ra, rb, "margin_std").min().item() > 0.0
    with pytest.raises(ValueError, match="at least one member"):
        train_ensemble(pairs, backbone, tokenizer, config, members=0)
