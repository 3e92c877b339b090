"""Held-out metrics: accuracy with ties, loss, and calibration against a slow reference."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.evaluate import evaluate_reward, expected_calibration_error, score_texts
from clinrlhf.reward.model import ScalarHeadModel
from clinrlhf.reward.pairs import PreferencePair


def reference_ece(p_chosen: list[float], bins: int) -> float:
    points = [(p, 1.0) for p in p_chosen] + [(1 - p, 0.0) for p in p_chosen]
    total = 0.0
    for b in range(bins):
        inside = [(p, y) for p, y in points if min(int(p * bins), bins - 1) == b]
        if inside:
            conf = sum(p for p, _ in inside) / len(inside)
            acc = sum(y for _, y in inside) / len(inside)
            total += len(inside) / len(points) * abs(conf - acc)
    return total


def test_ece_matches_the_reference() -> None:
    p = torch.rand(200, generator=torch.Generator().manual_seed(0))
    assert expected_calibration_error(p, bins=10) == pytest.approx(reference_ece(p.tolist(), 10), abs=1e-6)


def test_a_model_that_is_always_right_and_certain_is_calibrated() -> None:
    assert expected_calibration_error(torch.ones(50)) == pytest.approx(0.0, abs=1e-6)
    assert expected_calibration_error(torch.full((50,), 0.9)) == pytest.approx(0.1, abs=1e-6)


def test_an_indifferent_model_scores_ties_as_half_right(
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    heldout_pairs: list[PreferencePair],
) -> None:
    model = ScalarHeadModel(backbone())
    torch.nn.init.zeros_(model.head.weight)
    torch.nn.init.constant_(model.head.bias, 0.3)
    metrics = evaluate_reward(model, tokenizer, heldout_pairs[:20])
    assert metrics["accuracy"] == 0.5 and metrics["loss"] == pytest.approx(math.log(2))
    assert metrics["ece"] == pytest.approx(0.0, abs=1e-6) and metrics["reward_mean"] == pytest.approx(0.3)


def test_score_texts_batches_and_checks_lengths(
    backbone: Callable[..., GPT2Model],
    tokenizer: PreTrainedTokenizerFast,
    heldout_pairs: list[PreferencePair],
) -> None:
    model = ScalarHeadModel(backbone()).train()
    prompts, responses = [p.prompt for p in heldout_pairs[:7]], [p.chosen for p in heldout_pairs[:7]]
    whole = score_texts(model, tokenizer, prompts, responses)
    torch.testing.assert_close(
        score_texts(model, tokenizer, prompts, responses, batch_size=3), whole, atol=1e-5, rtol=1e-5
    )
    assert whole.shape == (7,) and model.training  # the caller's mode is restored
    with pytest.raises(ValueError, match="7 prompts but 6 responses"):
        score_texts(model, tokenizer, prompts, responses[:6])
