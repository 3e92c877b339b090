"""PPO whose rollouts are every formulary prescription of a prompt, on the tiny policy with a known
reward: it reaches its reward's KL-regularised optimum (sampled PPO stalls short of it: issue 22),
logs the contract's metrics, leaves the critic alone and resumes exactly."""

from __future__ import annotations

import copy
import dataclasses
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from clinrlhf.lineage.tracker import RecordingTracker
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.ppo import PPOConfig, train_ppo
from clinrlhf.ppo.enumerated import optimum, solve_beta
from clinrlhf.ppo.enumerated_rollout import build_table, candidate_logp
from clinrlhf.text.prompt import prescriptions

if TYPE_CHECKING:
    from conftest import Task

PENALTY = 3.0


def _candidates(task: Task):
    return partial(prescriptions, task.world)


def _params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _run(task: Task, config: PPOConfig, seed: int = 0, **kwargs):
    policy, ref, value = task.models(seed)
    result = train_ppo(
        policy,
        ref,
        value,
        task.reward,
        task.tokenizer,
        task.prompts,
        config,
        candidates=_candidates(task),
        outside_score=-PENALTY,
        **kwargs,
    )
    return result, ref, value


def _distance_to_optimum(task: Task, model: torch.nn.Module, kl_target: float) -> float:
    """Mean total-variation distance, over the prompts, between the model's choice among each
    prompt's prescriptions (and everything else) and the reward's KL-regularised optimum."""
    _, ref, _ = task.models()
    table = build_table(ref, task.reward, task.tokenizer, task.prompts, _candidates(task), -PENALTY, 1.0)
    beta = solve_beta(table.ref_logp, table.scores, table.mask, kl_target)
    target = optimum(table.ref_logp, table.scores, table.mask, beta).exp()
    with torch.no_grad():
        got = candidate_logp(model, table, range(len(table)), task.tokenizer.pad_token_id, 1.0).exp()
    return float(0.5 * (got - target).abs().sum(-1).mean())


# The loop's PPO with smaller batches for the tiny task (about 400 prompts).
SHIPPED = dataclasses.replace(
    PipelineConfig().ppo, steps=40, batch_size=64, checkpoint_every=10**9, final_kl_samples=64
)


def test_the_loops_ppo_brings_the_policy_to_its_rewards_optimum(task: Task) -> None:
    tracker = RecordingTracker()
    result, ref, value = _run(task, SHIPPED, tracker=tracker)
    before = _distance_to_optimum(task, ref, SHIPPED.kl_target)
    after = _distance_to_optimum(task, result.policy, SHIPPED.kl_target)
    # From 0.50 this ends at 0.25. Sampled PPO with the same iterations, prompts and seed
    # (rollouts="sampled", 4 epochs of 2 mini-batches) ends at 0.59, further than it began: the
    # stall of issue 22, where PPO reached half its reward's optimum. The tiny policy (one block, 32
    # wide) cannot fit the optimum exactly, the loop's does closer (docs/results.md).
    assert after < 0.3 and after < before - 0.2, (before, after)
    rewards = tracker.series("ppo.reward_mean")
    assert rewards[-1] > rewards[0] + 0.3
    assert SHIPPED.kl_target / 3 < result.final_kl < 1.5 * SHIPPED.kl_target  # sampled, after training
    # The contract's metrics once per iteration; β solved once and held.
    for name in (
        "ppo.kl",
        "ppo.kl_coef",
        "ppo.reward_mean",
        "ppo.entropy",
        "ppo.candidate_mass",
        "ppo.clipfrac",
    ):
        assert len(tracker.series(name)) == SHIPPED.steps, name
    assert (
        len(set(tracker.series("ppo.kl_coef"))) == 1
        and result.final_kl_coef == tracker.series("ppo.kl_coef")[0]
    )
    assert tracker.series("ppo.candidate_mass")[-1] > 0.9
    # No critic to train, and the reference never moves.
    assert torch.equal(_params(value), _params(task.models()[2]))
    assert torch.equal(_params(ref), _params(task.models()[1]))


SMALL = PPOConfig(
    rollouts="formulary", steps=4, batch_size=16, mini_batches=2, ppo_epochs=2, lr=1e-3, checkpoint_every=2,
    final_kl_samples=16,
)  # fmt: skip


def test_the_same_seed_repeats_and_a_resumed_run_continues_exactly(task: Task, tmp_path: Path) -> None:
    straight, _, _ = _run(task, SMALL)
    again, _, _ = _run(task, SMALL)
    assert torch.equal(_params(straight.policy), _params(again.policy))
    half, _, _ = _run(task, dataclasses.replace(SMALL, steps=2), checkpoint_dir=tmp_path)
    assert len(half.history) == 2
    resumed, _, _ = _run(task, SMALL, checkpoint_dir=tmp_path)
    assert torch.allclose(_params(resumed.policy), _params(straight.policy), atol=1e-6)
    assert resumed.final_kl_coef == pytest.approx(straight.final_kl_coef)


def test_a_fixed_beta_is_kept_as_configured(task: Task) -> None:
    result, _, _ = _run(task, dataclasses.replace(SMALL, adaptive_kl=False, init_kl_coef=0.7))
    assert {row["ppo.kl_coef"] for row in result.history} == {0.7}


def test_formulary_rollouts_without_candidates_are_refused_with_the_reason(task: Task) -> None:
    policy, ref, value = task.models()
    with pytest.raises(ValueError, match="candidates"):
        train_ppo(policy, ref, value, task.reward, task.tokenizer, task.prompts, SMALL)
    with pytest.raises(ValueError, match="no candidate response .* formulary"):
        train_ppo(
            policy, ref, value, task.reward, task.tokenizer, task.prompts, SMALL, candidates=lambda p: []
        )


def test_settings_that_mean_nothing_for_formulary_rollouts_are_refused() -> None:
    with pytest.raises(ValueError, match="samples_per_prompt"):
        PPOConfig(rollouts="formulary", samples_per_prompt=2, batch_size=16)
    with pytest.raises(ValueError, match="rollouts"):
        PPOConfig(rollouts="beam")  # type: ignore[arg-type]


def test_a_reference_that_seldom_proposes_a_prescription_is_warned_about(
    task: Task, caplog: pytest.LogCaptureFixture
) -> None:
    """Formulary PPO can only reweigh what the policy proposes; an untrained one proposes gibberish."""
    from clinrlhf.policy import PolicyConfig, build_policy

    torch.manual_seed(0)
    raw = build_policy(PolicyConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64), task.tokenizer)
    _, _, value = task.models()
    with caplog.at_level("WARNING", logger="clinrlhf.ppo.trainer"):
        train_ppo(
            raw, copy.deepcopy(raw), value, task.reward, task.tokenizer, task.prompts,
            dataclasses.replace(SMALL, steps=1), candidates=_candidates(task), outside_score=-PENALTY,
        )  # fmt: skip
    assert "barely move" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="clinrlhf.ppo.trainer"):
        _run(task, dataclasses.replace(SMALL, steps=1))  # the warm policy speaks the formulary
    assert "barely move" not in caplog.text


def test_a_prompt_drawn_twice_in_one_batch_gets_its_own_row_each_time(task: Task) -> None:
    """Fewer prompts than the batch: prompts are drawn with replacement, and a repeated prompt's rows
    must each hold its log-probs (a lost row is -inf where the mask says real: NaN everywhere)."""
    _, ref, _ = task.models()
    table = build_table(ref, task.reward, task.tokenizer, task.prompts[:3], _candidates(task), -PENALTY, 1.0)
    with torch.no_grad():
        once = candidate_logp(ref, table, [0, 1], task.tokenizer.pad_token_id, 1.0)
        twice = candidate_logp(ref, table, [0, 1, 0, 0], task.tokenizer.pad_token_id, 1.0)
    assert torch.allclose(twice[[0, 2, 3]], once[[0, 0, 0]], atol=1e-5) and torch.allclose(
        twice[1], once[1], atol=1e-5
    )
    result, _, _ = _run_on(task, task.prompts[:3], dataclasses.replace(SMALL, steps=2))
    assert all(torch.isfinite(p).all() for p in result.policy.parameters())
    assert all(torch.isfinite(torch.tensor(row["ppo.policy_loss"])) for row in result.history)


def test_kl_beyond_the_hard_cap_stops_formulary_ppo_before_it_updates(task: Task) -> None:
    from clinrlhf.ppo import KLCapExceeded

    config = dataclasses.replace(SMALL, lr=1e-2, kl_cap=1e-3, adaptive_kl=False, init_kl_coef=0.01)
    policy, ref, value = task.models()
    seen: list[torch.Tensor] = []
    with pytest.raises(KLCapExceeded, match="hard cap") as raised:
        train_ppo(
            policy, ref, value, task.reward, task.tokenizer, task.prompts, config,
            progress=lambda step, total: seen.append(_params(policy)),
            candidates=_candidates(task), outside_score=-PENALTY,
        )  # fmt: skip
    # Step 1 starts at the reference (KL 0); the step that measured too much KL did not update.
    assert raised.value.step == len(seen) + 1 and torch.equal(_params(policy), seen[-1])


def test_a_checkpoint_of_another_reward_or_penalty_is_never_resumed(task: Task, tmp_path: Path) -> None:
    _run(task, dataclasses.replace(SMALL, steps=1), checkpoint_dir=tmp_path)
    policy, ref, value = task.models()
    with pytest.raises(ValueError, match="another run"):
        train_ppo(
            policy, ref, value, task.reward, task.tokenizer, task.prompts, SMALL, checkpoint_dir=tmp_path,
            candidates=_candidates(task), outside_score=-1.0,
        )  # fmt: skip


def _run_on(task: Task, prompts: list[str], config: PPOConfig):
    policy, ref, value = task.models()
    result = train_ppo(
        policy, ref, value, task.reward, task.tokenizer, prompts, config,
        candidates=_candidates(task), outside_score=-PENALTY,
    )  # fmt: skip
    return result, ref, value


def test_a_prompt_listed_twice_is_scored_once(task: Task) -> None:
    """ppo_prompt_balance repeats prompts in PPO's list; the table must not score them again."""
    _, ref, _ = task.models()
    scored: list[str] = []

    def reward(prompts: list[str], responses: list[str]) -> torch.Tensor:
        scored.extend(prompts)
        return task.reward(prompts, responses)

    a, b = task.prompts[:2]
    once = build_table(ref, reward, task.tokenizer, [a, b], _candidates(task), -PENALTY, 1.0)
    n = len(scored)
    twice = build_table(ref, reward, task.tokenizer, [a, b, a, a], _candidates(task), -PENALTY, 1.0)
    assert len(scored) - n == n  # the repeats cost nothing
    assert torch.equal(twice.scores[[0, 1, 2, 3]], once.scores[[0, 1, 0, 0]])
    assert torch.equal(twice.ref_logp[[2, 3]], once.ref_logp[[0, 0]]) and torch.equal(
        twice.mask[2], once.mask[0]
    )
