"""PPO on a tiny policy with a known reward: it learns, stays near its reference, resumes exactly and
repeats itself for a seed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.ppo import KLCapExceeded, PPOConfig, train_ppo
from clinrlhf.ppo.checkpoint import CHECKPOINT_FILE
from clinrlhf.ppo.rollout import response_mask
from clinrlhf.ppo.trainer import draw_prompts

if TYPE_CHECKING:
    from conftest import Task

SMALL = PPOConfig(
    steps=4,
    batch_size=16,
    mini_batches=2,
    ppo_epochs=2,
    lr=1e-3,
    response_length=16,
    checkpoint_every=2,
    final_kl_samples=16,
)


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _run(task: Task, config: PPOConfig, seed: int = 0, **kwargs):
    policy, ref, value = task.models(seed)
    result = train_ppo(policy, ref, value, task.reward, task.tokenizer, task.prompts, config, **kwargs)
    return result, ref, value


def test_mean_reward_rises_while_kl_stays_near_target(task: Task) -> None:
    config = PPOConfig(
        steps=30,
        batch_size=64,
        mini_batches=2,
        ppo_epochs=4,
        lr=5e-4,
        response_length=16,
        init_kl_coef=0.3,
        kl_target=1.0,
        kl_horizon=640,
        target_approx_kl=None,
        final_kl_samples=128,
    )
    tracker, calls = RecordingTracker(), []
    result, ref, _ = _run(task, config, tracker=tracker, progress=lambda s, n: calls.append((s, n)))
    rewards = tracker.series("ppo.reward_mean")  # world utility: +1 concordant, 0 off-target, -2 unsafe
    first, last = sum(rewards[:5]) / 5, sum(rewards[-10:]) / 10
    assert last > first + 0.1, (first, last)
    assert result.metrics["ppo.final_reward_mean"] > first + 0.1
    assert config.kl_target / 3 < result.final_kl < 2 * config.kl_target
    assert torch.isfinite(torch.tensor([row["ppo.kl"] for row in result.history])).all()
    # The trained policy moved, the reference did not.
    assert not torch.equal(_params(result.policy), _params(ref))
    assert torch.equal(_params(ref), _params(task.models()[1]))
    # Contract metric names, once per step; params and progress.
    for name in (
        "ppo.kl",
        "ppo.kl_coef",
        "ppo.reward_mean",
        "ppo.non_score_reward",
        "ppo.entropy",
        "ppo.response_length",
        "ppo.approx_kl",
        "ppo.clipfrac",
        "ppo.policy_loss",
        "ppo.value_loss",
    ):
        assert len(tracker.series(name)) == config.steps, name
    assert tracker.params["ppo.kl_target"] == 1.0 and result.params == tracker.params
    assert calls == [(s, config.steps) for s in range(1, config.steps + 1)]
    assert [m[0] for m in tracker.metrics[: config.steps]] == list(range(1, config.steps + 1))


def test_the_same_seed_gives_the_same_run_and_another_seed_does_not(task: Task) -> None:
    a, _, _ = _run(task, SMALL)
    b, _, _ = _run(task, SMALL)
    c, _, _ = _run(task, dataclasses.replace(SMALL, seed=1))
    assert torch.equal(_params(a.policy), _params(b.policy))
    assert _strip_timing(a.history) == _strip_timing(b.history)
    assert not torch.equal(_params(a.policy), _params(c.policy))


def test_resuming_from_a_checkpoint_continues_exactly(task: Task, tmp_path: Path) -> None:
    straight, _, straight_value = _run(task, SMALL)
    half, _, _ = _run(task, dataclasses.replace(SMALL, steps=2), checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).exists() and len(half.history) == 2
    # Another seed gives another value head on purpose: everything must come from the checkpoint.
    resumed, _, resumed_value = _run(task, SMALL, seed=5, checkpoint_dir=tmp_path)
    assert torch.allclose(_params(resumed.policy), _params(straight.policy), atol=1e-6)
    assert torch.allclose(_params(resumed_value), _params(straight_value), atol=1e-6)
    assert _close(resumed.history, straight.history)
    assert resumed.final_kl_coef == pytest.approx(straight.final_kl_coef)
    assert not list(tmp_path.glob("*.tmp"))  # writes are atomic: no temporary file is left behind


def test_a_checkpoint_saved_before_a_setting_existed_resumes_with_its_default(
    task: Task, tmp_path: Path
) -> None:
    """Checkpoints written before `rollouts` existed hold no such key; they were sampled runs."""
    from clinrlhf.ppo.checkpoint import load_checkpoint, save_checkpoint

    straight, _, _ = _run(task, SMALL)
    _run(task, dataclasses.replace(SMALL, steps=2), checkpoint_dir=tmp_path)
    state = load_checkpoint(tmp_path)
    assert state is not None
    del state["config"]["rollouts"]
    save_checkpoint(tmp_path, state)
    resumed, _, _ = _run(task, SMALL, checkpoint_dir=tmp_path)
    assert torch.allclose(_params(resumed.policy), _params(straight.policy), atol=1e-6)


def test_resuming_with_different_settings_is_refused(task: Task, tmp_path: Path) -> None:
    _run(task, dataclasses.replace(SMALL, steps=1), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="lr"):
        _run(task, dataclasses.replace(SMALL, lr=5e-4), checkpoint_dir=tmp_path)


def test_a_checkpoint_from_another_run_is_never_resumed(task: Task, tmp_path: Path) -> None:
    _run(task, dataclasses.replace(SMALL, steps=1), checkpoint_dir=tmp_path)
    policy, ref, value = task.models()
    with torch.no_grad():
        ref.lm_head.weight.mul_(1.01)  # another SFT policy as the reference
    with pytest.raises(ValueError, match="another run"):
        train_ppo(
            policy, ref, value, task.reward, task.tokenizer, task.prompts, SMALL, checkpoint_dir=tmp_path
        )


def test_kl_beyond_the_hard_cap_stops_training_with_a_clear_message(task: Task) -> None:
    config = dataclasses.replace(SMALL, lr=1e-2, kl_cap=1e-3)
    with pytest.raises(KLCapExceeded, match="hard cap") as raised:
        _run(task, config)
    assert raised.value.step >= 2 and raised.value.kl > raised.value.cap  # step 1 samples from the reference


def test_response_mask_keeps_tokens_through_the_first_eos() -> None:
    eos = 2
    response = torch.tensor([[5, 6, eos, 0, 0], [5, eos, 7, eos, 0], [5, 6, 7, 8, 9]])
    mask, has_eos = response_mask(response, eos)
    assert mask.long().tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert has_eos.tolist() == [True, True, False]


def test_a_response_cut_off_before_eos_is_penalised(task: Task) -> None:
    config = dataclasses.replace(SMALL, steps=1, response_length=2, missing_eos_penalty=-1.0)
    row = _run(task, config)[0].history[0]
    assert row["ppo.eos_rate"] < 0.5  # no prescription fits in 2 tokens
    # reward_mean is the reward function's own score; the penalty shows in the reward PPO optimised.
    penalty = -1.0 * (1.0 - row["ppo.eos_rate"])
    assert row["ppo.rlhf_reward"] == pytest.approx(
        row["ppo.reward_mean"] + penalty + row["ppo.non_score_reward"]
    )


def _strip_timing(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "ppo.tokens_per_second"} for row in history]


def _close(a: list[dict[str, float]], b: list[dict[str, float]]) -> bool:
    a, b = _strip_timing(a), _strip_timing(b)
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(x[k] == pytest.approx(y[k], abs=1e-5) for k in x)
        for x, y in zip(a, b, strict=True)
    )


def test_draw_prompts_repeats_each_prompt_in_a_row() -> None:
    drawn = draw_prompts([f"p{i}" for i in range(10)], 8, torch.Generator().manual_seed(0), repeats=4)
    assert len(drawn) == 8 and drawn[:4] == [drawn[0]] * 4 and drawn[4:] == [drawn[4]] * 4
    assert drawn[0] != drawn[4]  # without replacement


def test_several_samples_per_prompt_train_with_a_per_prompt_baseline(task: Task) -> None:
    config = dataclasses.replace(SMALL, steps=2, samples_per_prompt=4)
    result, _, _ = _run(task, config)
    row = result.history[-1]
    # The leave-one-out baseline centres the scores, so the optimised reward is the KL penalty alone
    # (plus the mean missing-EOS penalty, also centred): its mean is the non-score part.
    assert row["ppo.rlhf_reward"] == pytest.approx(row["ppo.non_score_reward"], abs=1e-5)
    with pytest.raises(ValueError, match="samples_per_prompt"):
        PPOConfig(batch_size=16, samples_per_prompt=3)
