"""KL-constrained PPO for a causal-LM policy, read top to bottom like CleanRL's ppo.py:
rollout -> KL-shaped rewards -> GAE -> clipped updates -> KL controller, logging and checkpoint.
Where each prompt's responses can be listed, the rollout is all of them instead of a sample
(`PPOConfig.rollouts`, clinrlhf.ppo.enumerated).

The recipe follows Ziegler et al. (2019, https://arxiv.org/abs/1909.08593) with the details of
Huang et al. (2024, "The N+ Implementation Details of RLHF with PPO", https://arxiv.org/abs/2403.17031).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from clinrlhf.lineage.tracker import NullTracker, Tracker
from clinrlhf.ppo.checkpoint import (
    fingerprint,
    load_checkpoint,
    prompts_sha256,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.ppo.core import (
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_k1,
    kl_k3,
    leave_one_out_baseline,
    masked_mean,
    masked_whiten,
    per_token_rewards,
)
from clinrlhf.ppo.distributed import Dist, current
from clinrlhf.ppo.enumerated import solve_beta
from clinrlhf.ppo.enumerated_rollout import (
    Candidates,
    CandidateTable,
    build_table,
    enumerated_rollout,
    enumerated_update,
    table_sha256,
)
from clinrlhf.ppo.kl_controller import AdaptiveKLController, FixedKLController, KLController
from clinrlhf.ppo.rollout import Experience, RewardFn, collect, response_logprobs, response_values

KL_ESTIMATORS = {"k1": kl_k1, "k3": kl_k3}
LOW_CANDIDATE_MASS = 0.5
"""Below this share of the reference's probability on the candidates, formulary rollouts warn."""
log = logging.getLogger(__name__)
# Settings that must match for a checkpoint to be resumed; the rest may change between runs.
_RESUMABLE = {"steps", "checkpoint_every", "final_kl_samples"}


class KLCapExceeded(RuntimeError):
    """The policy drifted further from the reference than the configured hard cap allows."""

    def __init__(self, step: int, kl: float, cap: float) -> None:
        super().__init__(
            f"PPO stopped at step {step}: the policy's mean KL from the reference is {kl:.2f} nats per "
            f"response, above the hard cap of {cap:.2f}. Lower lr, raise init_kl_coef, or raise kl_cap on purpose."
        )
        self.step, self.kl, self.cap = step, kl, cap


@dataclass
class PPOResult:
    policy: PreTrainedModel
    final_kl: float  # mean KL(policy || reference) in nats per response, sampled after training
    final_kl_coef: float
    history: list[dict[str, float]] = field(default_factory=list)  # one row of metrics per step
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def train_ppo(
    policy: PreTrainedModel,
    ref_policy: PreTrainedModel,
    value_model: nn.Module,
    reward_fn: RewardFn,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    config: PPOConfig,
    tracker: Tracker | None = None,
    progress: Callable[[int, int], None] | None = None,
    checkpoint_dir: Path | None = None,
    dist: Dist | None = None,
    candidates: Candidates | None = None,
    outside_score: float = 0.0,
) -> PPOResult:
    """Align `policy` to `reward_fn` while a KL penalty holds it near `ref_policy`.

    `policy` is trained in place. `value_model` gives per-token values (a `ScalarHeadModel`, usually a
    copy of the reward model). With `checkpoint_dir`, state is saved there and resumed from if present.
    Under `torchrun` (`dist`, by default the initialized process group) every rank gets the same
    arguments and trains on its share of each batch; only rank 0 logs and writes checkpoints. The
    three models are moved to `dist.device` (the rank's GPU if there is one); `reward_fn` may score
    anywhere, its scores are brought over.

    With `config.rollouts == "formulary"`, `candidates(prompt)` lists the responses weighed for each
    prompt (the formulary's prescriptions for its problem) and `outside_score` is the score given
    to the probability the policy puts on anything else (the validity penalty, negated); the value
    model is then not trained (clinrlhf.ppo.enumerated).
    """
    if not prompts:
        raise ValueError("PPO needs at least one prompt")
    dist = dist or current()
    dist.require_same("PPO prompts", prompts_sha256(prompts))
    tracker = (tracker or NullTracker()) if dist.is_main else NullTracker()
    local = dist.shard(config)  # this rank's share of each batch, drawn from its own random stream
    torch.manual_seed((config.seed or 0) + dist.rank)
    # On the CPU whatever the device, so a checkpoint's random stream resumes anywhere.
    generator = torch.Generator().manual_seed((config.seed or 0) + dist.rank)
    # Dropout off everywhere, so log-probs are the same at rollout and update (Huang et al., detail 9).
    for model in (policy, ref_policy, value_model):
        model.to(dist.device).eval()
    ref_policy.requires_grad_(False)
    table = None
    if config.rollouts == "formulary":
        if candidates is None:
            raise ValueError(
                'rollouts="formulary" needs the candidates of each prompt (train_ppo(candidates=...))'
            )
        table = build_table(
            ref_policy, reward_fn, tokenizer, prompts, candidates, outside_score, config.temperature
        )
        mass = float(1.0 - table.ref_logp[:, -1].exp().mean())
        if mass < LOW_CANDIDATE_MASS and dist.is_main:
            log.warning(
                "the reference policy puts %.1f%% of its probability on the candidate responses; formulary "
                "PPO reweighs only what the policy proposes, so it will barely move. Train the supervised "
                'policy longer, or use rollouts="sampled"',
                100 * mass,
            )
    # With every response listed there is no critic to train: the value is exact.
    parameters = [*policy.parameters(), *(value_model.parameters() if table is None else ())]
    optimizer = torch.optim.Adam(parameters, lr=config.lr, eps=config.adam_eps)
    kl_ctl = _kl_controller(config, table, dist)
    history: list[dict[str, float]] = []
    start, run = 0, ""
    if checkpoint_dir is not None:  # formulary rollouts also pin what the candidates are and score
        run = fingerprint(ref_policy, prompts) + ("" if table is None else f":{table_sha256(table)}")
    # Rank 0 reads the checkpoint and sends it on: other nodes need not share its disk.
    state = dist.broadcast_object(
        load_checkpoint(checkpoint_dir) if checkpoint_dir is not None and dist.is_main else None
    )
    if state is not None:
        start, history = _restore(state, run, config, policy, value_model, optimizer, kl_ctl, generator, dist)
    # Updates go through the DDP wrappers, which average gradients over ranks; sampling does not need to.
    train_policy = dist.wrap(policy)
    train_value = dist.wrap(value_model) if table is None else value_model  # no critic to train
    tracker.log_params(config.params())

    for step in range(start + 1, config.steps + 1):
        tick = time.perf_counter()
        if table is None:
            metrics = _sampled_iteration(
                step, policy, ref_policy, value_model, train_policy, train_value, optimizer, parameters,
                reward_fn, tokenizer, prompts, config, local, kl_ctl.value, generator, dist,
            )  # fmt: skip
        else:
            index = draw_index(len(prompts), local.batch_size, generator)
            exp, metrics = enumerated_rollout(
                policy, table, index, kl_ctl.value, local, tokenizer.pad_token_id
            )
            _check_cap(step, dist.all_reduce_mean(metrics["ppo.kl"]), config)
            metrics.update(
                enumerated_update(
                    train_policy,
                    optimizer,
                    parameters,
                    table,
                    exp,
                    local,
                    tokenizer.pad_token_id,
                    generator,
                    dist,
                )
            )
            metrics["ppo.prompts_per_second"] = config.batch_size / (time.perf_counter() - tick)  # all ranks'
        sequence_kl = dist.all_reduce_mean(metrics["ppo.kl"])  # one KL for all: the same beta everywhere

        # 5. Adapt beta, log, checkpoint.
        metrics = {"ppo.kl": sequence_kl, "ppo.kl_coef": kl_ctl.value, **metrics}
        kl_ctl.update(sequence_kl, config.batch_size)
        metrics = dist.mean(metrics)  # over the whole batch, so every rank keeps the same history
        tracker.log_metrics(metrics, step=step)
        history.append({"step": float(step), **metrics})
        if checkpoint_dir is not None and (step % config.checkpoint_every == 0 or step == config.steps):
            rngs = dist.gather_object(rng_state(generator))  # every rank's, so each resumes its own stream
            if dist.is_main:
                save_checkpoint(
                    checkpoint_dir,
                    _state(step, run, config, policy, value_model, optimizer, kl_ctl, rngs, history),
                )
        if progress is not None:
            progress(step, config.steps)

    final = dist.mean(
        _final_measure(policy, ref_policy, value_model, reward_fn, tokenizer, prompts, local, generator)
    )
    if config.kl_cap is not None and final["ppo.final_kl"] > config.kl_cap:
        raise KLCapExceeded(config.steps, final["ppo.final_kl"], config.kl_cap)
    metrics = {**final, "ppo.final_kl_coef": kl_ctl.value, "ppo.steps": float(config.steps)}
    tracker.log_metrics(metrics, step=config.steps)
    return PPOResult(
        policy=policy,
        final_kl=final["ppo.final_kl"],
        final_kl_coef=kl_ctl.value,
        history=history,
        params=config.params(),
        metrics=metrics,
    )


def _check_cap(step: int, kl: float, config: PPOConfig) -> None:
    """Stop on the rollout's KL (mean over all ranks), before an update can move the policy further."""
    if config.kl_cap is not None and kl > config.kl_cap:
        raise KLCapExceeded(step, kl, config.kl_cap)


def _kl_controller(config: PPOConfig, table: CandidateTable | None, dist: Dist) -> KLController:
    """Sampled rollouts chase the KL target with Ziegler et al.'s controller. With every response
    listed, the β whose optimum sits at the target is solved for once, exactly (rank 0's, so every
    rank trains toward one objective), and held."""
    if not config.adaptive_kl:
        return FixedKLController(config.init_kl_coef)
    if table is None:
        return AdaptiveKLController(config.init_kl_coef, config.kl_target, config.kl_horizon)
    beta = solve_beta(table.ref_logp, table.scores, table.mask, config.kl_target)
    return FixedKLController(dist.broadcast_object(beta))


def _sampled_iteration(
    step: int,
    policy: PreTrainedModel,
    ref_policy: PreTrainedModel,
    value_model: nn.Module,
    train_policy: PreTrainedModel,
    train_value: nn.Module,
    optimizer: torch.optim.Optimizer,
    parameters: list[nn.Parameter],
    reward_fn: RewardFn,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    config: PPOConfig,
    local: PPOConfig,
    kl_coef: float,
    generator: torch.Generator,
    dist: Dist,
) -> dict[str, float]:
    """One iteration on sampled responses (`config` global, `local` this rank's share). -> this rank's metrics."""
    tick = time.perf_counter()
    # 1. Rollout: sample responses, score them, and keep the log-probs and values they were sampled with.
    exp = collect(
        policy,
        ref_policy,
        value_model,
        reward_fn,
        tokenizer,
        draw_prompts(prompts, local.batch_size, generator, config.samples_per_prompt),
        response_length=config.response_length,
        temperature=config.temperature,
        generator=generator,
    )
    sequence_kl = dist.all_reduce_mean(_sequence_kl(exp))
    _check_cap(step, sequence_kl, config)

    # 2. Rewards: the score on the last token, a KL penalty on every token.
    kl = KL_ESTIMATORS[config.kl_estimator](exp.logprobs, exp.ref_logprobs)
    scores = adjusted_scores(exp, config)
    rewards, non_score = per_token_rewards(kl, scores, exp.mask, kl_coef)
    if config.whiten_rewards:
        rewards = masked_whiten(rewards, exp.mask, shift_mean=False)

    # 3. Advantages, whitened over the batch's real tokens.
    advantages, returns = gae(rewards, exp.values, exp.mask, config.gamma, config.lam)
    advantages = masked_whiten(advantages, exp.mask)

    # 4. Clipped policy and value updates over several epochs of mini-batches.
    stats = ppo_update(
        train_policy, train_value, optimizer, parameters, exp, advantages, returns, local, generator, dist
    )
    tokens = dist.all_reduce_sum(float(exp.mask.sum()))
    return {
        "ppo.kl": sequence_kl,
        "ppo.reward_mean": float(exp.scores.mean()),
        "ppo.non_score_reward": float(non_score.sum(-1).mean()),
        "ppo.rlhf_reward": float((scores + non_score.sum(-1)).mean()),
        "ppo.entropy": float(masked_mean(exp.entropy, exp.mask)),
        "ppo.response_length": tokens / config.batch_size,
        "ppo.eos_rate": float(exp.has_eos.float().mean()),
        **stats,
        "ppo.tokens_per_second": tokens / (time.perf_counter() - tick),
    }


def draw_index(n_prompts: int, n: int, generator: torch.Generator) -> list[int]:
    """`n` prompt indices without replacement (with replacement when there are fewer prompts)."""
    if n_prompts >= n:
        return torch.randperm(n_prompts, generator=generator)[:n].tolist()
    return torch.randint(n_prompts, (n,), generator=generator).tolist()


def draw_prompts(prompts: list[str], n: int, generator: torch.Generator, repeats: int = 1) -> list[str]:
    """`n // repeats` prompts without replacement (with replacement when there are fewer), each
    repeated `repeats` times in a row."""
    return [prompts[i] for i in draw_index(len(prompts), n // repeats, generator) for _ in range(repeats)]


def adjusted_scores(exp: Experience, config: PPOConfig) -> torch.Tensor:
    """The reward-function score, penalised for a missing EOS (Huang et al., detail 23) and for length,
    relative to the prompt's other responses when there are several."""
    scores = exp.scores + config.missing_eos_penalty * (~exp.has_eos).float()
    scores = scores - config.length_penalty * exp.mask.sum(-1).float()
    return leave_one_out_baseline(scores, config.samples_per_prompt)


def ppo_update(
    policy: PreTrainedModel,
    value_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    parameters: list[nn.Parameter],
    exp: Experience,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    config: PPOConfig,
    generator: torch.Generator,
    dist: Dist | None = None,
) -> dict[str, float]:
    """Clipped updates on this rank's rollouts; under DDP, pass the wrapped models so gradients are
    averaged over ranks, and `dist` so all ranks stop early together."""
    dist = dist or Dist()
    stats: dict[str, list[float]] = defaultdict(list)
    for _ in range(config.ppo_epochs):
        order = torch.randperm(config.batch_size, generator=generator)
        epoch_kl: list[float] = []
        for begin in range(0, config.batch_size, config.mini_batch_size):
            index = order[begin : begin + config.mini_batch_size]
            mb = exp.take(index)
            logprobs, _ = response_logprobs(policy, mb, config.temperature)
            values = response_values(value_model, mb)
            pg_loss, clipfrac = clipped_policy_loss(
                logprobs, mb.logprobs, advantages[index], mb.mask, config.cliprange
            )
            vf_loss, vf_clipfrac = clipped_value_loss(
                values, mb.values, returns[index], mb.mask, config.cliprange_value
            )
            loss = pg_loss + config.vf_coef * vf_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            with torch.no_grad():
                # KL(old || new) by k3, samples from the old policy (http://joschu.net/blog/kl-approx.html)
                approx_kl = float(masked_mean(kl_k3(mb.logprobs, logprobs), mb.mask))
            epoch_kl.append(approx_kl)
            for name, value in (
                ("approx_kl", approx_kl),
                ("clipfrac", float(clipfrac)),
                ("policy_loss", pg_loss.item()),
                ("value_loss", vf_loss.item()),
                ("value_clipfrac", float(vf_clipfrac)),
            ):
                stats[name].append(value)
        if (
            config.target_approx_kl is not None
            and dist.all_reduce_mean(sum(epoch_kl) / len(epoch_kl)) > config.target_approx_kl
        ):
            break  # early stopping: the policy already moved far from the one that sampled
    return {f"ppo.{name}": sum(values) / len(values) for name, values in stats.items()}


def _sequence_kl(exp: Experience) -> float:
    """Mean over responses of the summed per-token k1: an unbiased KL(pi || ref) in nats per response."""
    return float((kl_k1(exp.logprobs, exp.ref_logprobs) * exp.mask).sum(-1).mean())


@torch.no_grad()
def _final_measure(
    policy: PreTrainedModel,
    ref_policy: PreTrainedModel,
    value_model: nn.Module,
    reward_fn: RewardFn,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    config: PPOConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """KL and score of the trained policy on fresh samples (the last step's KL predates its update)."""
    kls, scores = [], []
    for begin in range(0, config.final_kl_samples, config.batch_size):
        n = min(config.batch_size, config.final_kl_samples - begin)
        exp = collect(
            policy,
            ref_policy,
            value_model,
            reward_fn,
            tokenizer,
            draw_prompts(prompts, n, generator),
            response_length=config.response_length,
            temperature=config.temperature,
            generator=generator,
        )
        kls.append(_sequence_kl(exp) * n)
        scores.append(float(exp.scores.sum()))
    total = max(config.final_kl_samples, 1)
    return {"ppo.final_kl": sum(kls) / total, "ppo.final_reward_mean": sum(scores) / total}


def _state(
    step: int,
    run: str,
    config: PPOConfig,
    policy: PreTrainedModel,
    value_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    kl_ctl: KLController,
    rngs: list[dict[str, object]],
    history: list[dict[str, float]],
) -> dict[str, object]:
    return {
        "step": step,
        "run": run,
        "config": asdict(config),
        "policy": policy.state_dict(),
        "value_model": value_model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "kl_controller": kl_ctl.state_dict(),
        "rng": rngs,  # indexed by rank
        "history": history,
    }


def _restore(
    state: dict,
    run: str,
    config: PPOConfig,
    policy: PreTrainedModel,
    value_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    kl_ctl: KLController,
    generator: torch.Generator,
    dist: Dist,
) -> tuple[int, list[dict[str, float]]]:
    if state["run"] != run:
        raise ValueError(
            "the PPO checkpoint belongs to another run (other reference policy or prompts); "
            "use a fresh checkpoint directory for each run"
        )
    saved, now = state["config"], asdict(config)
    # A setting the checkpoint predates had its default then (PPOConfig's fields only ever get added).
    defaults = {f.name: f.default for f in fields(PPOConfig)}
    changed = sorted(k for k in now if k not in _RESUMABLE and saved.get(k, defaults[k]) != now[k])
    if changed:
        raise ValueError(f"the PPO checkpoint was made with different settings: {', '.join(changed)}")
    policy.load_state_dict(state["policy"])
    value_model.load_state_dict(state["value_model"])
    optimizer.load_state_dict(state["optimizer"])
    kl_ctl.load_state_dict(state["kl_controller"])
    rngs = state["rng"] if isinstance(state["rng"], list) else [state["rng"]]  # older: one process's
    if len(rngs) != dist.world_size:
        raise ValueError(
            f"the PPO checkpoint was made by {len(rngs)} processes; resume it with as many, "
            f"not {dist.world_size}, or each process would lose its random stream"
        )
    set_rng_state(rngs[dist.rank], generator)
    return int(state["step"]), list(state["history"])
