"""The reward model's uncertainty about a pair: zero where its samples agree, larger where they don't."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn
from transformers import PreTrainedTokenizerFast

from clinrlhf.active.uncertainty import (
    METHODS,
    bald,
    ensemble_rewards,
    margin_std,
    mc_dropout_rewards,
    pair_uncertainty,
    predictive_entropy,
    preference_probabilities,
    probability_std,
    thinned,
)
from clinrlhf.reward.evaluate import score_texts
from clinrlhf.reward.model import ScalarHeadModel

Triples = tuple[list[str], list[str], list[str]]


def test_formulas_on_known_samples() -> None:
    agree_on_a_coin = torch.full((4, 1), 0.5)
    split = torch.tensor([[0.01], [0.99], [0.01], [0.99]])
    assert probability_std(agree_on_a_coin).item() == 0.0
    assert probability_std(split).item() == pytest.approx(0.49)
    # BALD counts only disagreement: a shared coin flip is aleatoric, not worth asking about.
    assert bald(agree_on_a_coin).item() == pytest.approx(0.0, abs=1e-12)
    assert predictive_entropy(agree_on_a_coin).item() == pytest.approx(math.log(2))
    assert bald(split).item() == pytest.approx(math.log(2) - 0.0560, abs=1e-3)
    assert bald(split).item() > bald(torch.tensor([[0.4], [0.6], [0.4], [0.6]])).item() > 0.0


def test_margin_std_and_probabilities() -> None:
    a, b = torch.tensor([[1.0, 2.0], [3.0, 2.0]]), torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    assert margin_std(a, b).tolist() == pytest.approx([1.0, 0.0])
    assert preference_probabilities(a, b)[:, 1].tolist() == [0.5, 0.5]
    assert pair_uncertainty(a, b, "margin_std").tolist() == pytest.approx([1.0, 0.0])
    with pytest.raises(ValueError, match="shapes differ"):
        preference_probabilities(a, b[:1])
    with pytest.raises(ValueError, match="method must be one of"):
        pair_uncertainty(a, b, "variance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="samples, pairs"):
        probability_std(torch.zeros(3))


def test_identical_members_are_certain(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, b = triples
    model = reward_model(0)
    members = [model, reward_model(0), reward_model(0)]  # same seed: the same weights
    ra, rb = (
        ensemble_rewards(members, tokenizer, prompts, a),
        ensemble_rewards(members, tokenizer, prompts, b),
    )
    assert ra.shape == (3, len(prompts))
    for method in METHODS:
        u = pair_uncertainty(ra, rb, method)
        if method == "entropy":
            assert (u > 0).all()  # a single model's own coin flips still count here
        else:
            assert u.abs().max().item() < 1e-6, method


def test_members_that_disagree_are_uncertain(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, b = triples
    members = [reward_model(0), reward_model(0), reward_model(0)]
    with torch.no_grad():  # members agree on everything but the head, which now pulls apart
        for k, m in enumerate(members):
            m.head.weight.mul_(1 + 20 * k)
    ra, rb = (
        ensemble_rewards(members, tokenizer, prompts, a),
        ensemble_rewards(members, tokenizer, prompts, b),
    )
    for method in ("std", "margin_std", "bald"):
        assert pair_uncertainty(ra, rb, method).min().item() > 1e-4, method
    with pytest.raises(ValueError, match="at least one model"):
        ensemble_rewards([], tokenizer, prompts, a)


def test_dropout_off_means_no_variance(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, _ = triples
    model = reward_model(1)
    samples = mc_dropout_rewards(model, tokenizer, prompts, a, passes=5, rate=0.0)
    assert samples.shape == (5, len(prompts))
    assert samples.std(dim=0).max().item() == 0.0
    assert torch.allclose(samples[0], score_texts(model, tokenizer, prompts, a))


def test_dropout_on_varies_and_is_reproducible(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, b = triples
    model = reward_model(2)
    before = score_texts(model, tokenizer, prompts, a)
    ra = mc_dropout_rewards(model, tokenizer, prompts + prompts, a + b, passes=8, rate=0.3, seed=7)
    assert ra.std(dim=0).min().item() > 0.0
    assert torch.equal(
        ra, mc_dropout_rewards(model, tokenizer, prompts + prompts, a + b, passes=8, rate=0.3, seed=7)
    )
    assert not torch.equal(
        ra, mc_dropout_rewards(model, tokenizer, prompts + prompts, a + b, passes=8, rate=0.3, seed=8)
    )
    u = pair_uncertainty(ra[:, : len(prompts)], ra[:, len(prompts) :], "bald")
    assert (u > 0).all()
    # The model comes back as it was: same scores, eval mode, dropout rates 0, no hooks left.
    assert torch.equal(score_texts(model, tokenizer, prompts, a), before)
    assert not model.training
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert layers and all(m.p == 0.0 and not m._forward_hooks for m in layers)


def test_one_pass_is_one_network_for_every_row(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    """A pass samples one thinned network, so the same text scores the same in every row of it: the
    two responses of a pair are compared by the same sample, not by independent noise."""
    prompts, a, _ = triples
    model = reward_model(3)
    ra = mc_dropout_rewards(model, tokenizer, prompts + prompts, a + a, passes=4, rate=0.5, seed=0)
    assert torch.allclose(ra[:, : len(prompts)], ra[:, len(prompts) :])
    assert ra.std(dim=0).min().item() > 0.0


def test_mc_dropout_refuses_what_it_cannot_do(
    reward_model: Callable[[int], ScalarHeadModel], tokenizer: PreTrainedTokenizerFast, triples: Triples
) -> None:
    prompts, a, _ = triples
    model = reward_model(0)
    with pytest.raises(ValueError, match="rate must be in"):
        mc_dropout_rewards(model, tokenizer, prompts, a, rate=1.0)
    with pytest.raises(ValueError, match="passes"):
        mc_dropout_rewards(model, tokenizer, prompts, a, passes=0)
    with pytest.raises(ValueError, match="prompts but"):
        mc_dropout_rewards(model, tokenizer, prompts, a[:-1])
    with pytest.raises(ValueError, match="no nn.Dropout"), thinned(nn.Linear(2, 1), 0.1, torch.Generator()):
        pass
