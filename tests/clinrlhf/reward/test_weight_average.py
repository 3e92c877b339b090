"""`RewardConfig.ema_decay`: the reward model returned is the exponential moving average of the
DP-SGD iterates, computed from the released iterates only (post-processing), so ε is unchanged.
Real Opacus on a tiny GPT-2."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from transformers import GPT2Model, PreTrainedTokenizerFast

from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair
from clinrlhf.reward.trainer import prepare_training, train_reward
from privacy.dp.opacus_config import DPConfig

torch.set_num_threads(1)

DP = DPConfig(target_epsilon=8.0, target_delta=1e-5, reproducible_noise=True)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_the_returned_weights_are_the_moving_average_of_the_iterates(
    train_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    decay = 0.3  # below the warm-up from the fourth update on, so both branches of the min are taken
    config = RewardConfig(epochs=1, units_per_batch=16, rater_buckets=None, ema_decay=decay, seed=3, dp=DP)
    torch.manual_seed(0)
    run = prepare_training(train_pairs[:200], backbone(), tokenizer, config)
    expected: list[torch.Tensor] | None = None
    last: list[torch.Tensor] = []
    for steps, batch in enumerate(run.loader, start=1):
        run.step(batch)
        last = _weights(run.trained.reward)
        # By hand: the first iterate, then w_ema <- d * w_ema + (1 - d) * w_t, d warming up to `decay`
        # as min(decay, (1 + n) / (10 + n)) after n updates.
        d = min(decay, steps / (9 + steps))
        expected = (
            last if expected is None else [d * e + (1 - d) * w for e, w in zip(expected, last, strict=True)]
        )
        if steps == 6:
            break
    run.finish()
    got = _weights(run.trained.reward)
    assert expected is not None
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)
    trained = [p.requires_grad for p in run.trained.reward.parameters()]
    moved = [g for g, w, t in zip(got, last, trained, strict=True) if t and not torch.equal(g, w)]
    assert moved, "the average equals the last iterate: nothing was averaged"


def test_averaging_spends_no_privacy(
    train_pairs: list[PreferencePair], tokenizer: PreTrainedTokenizerFast, backbone: Callable[..., GPT2Model]
) -> None:
    base = RewardConfig(epochs=1, units_per_batch=32, rater_buckets=None, ema_decay=None, seed=1, dp=DP)
    plain = train_reward(train_pairs[:300], backbone(), tokenizer, base)
    averaged = train_reward(
        train_pairs[:300], backbone(), tokenizer, RewardConfig(**{**base.__dict__, "ema_decay": 0.9})
    )
    assert averaged.steps == plain.steps
    assert averaged.noise_multiplier == plain.noise_multiplier and averaged.epsilon == plain.epsilon
    assert averaged.params["reward.ema_decay"] == "0.9" and plain.params["reward.ema_decay"] == "None"
    # Same noise (reproducible), same iterates: only the average differs from the last one.
    differ = any(
        not torch.equal(a, b)
        for a, b in zip(averaged.model.parameters(), plain.model.parameters(), strict=True)
    )
    assert differ


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_a_decay_outside_the_open_unit_interval_is_refused(decay: float) -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        RewardConfig(ema_decay=decay)
