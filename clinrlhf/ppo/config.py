"""Hyperparameters of KL-constrained PPO.

The measurements behind the defaults are in docs/results.md ("How the defaults were chosen").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal


@dataclass(frozen=True)
class PPOConfig:
    rollouts: Literal["sampled", "formulary"] = "sampled"
    """What an iteration's experience is. "sampled": one response sampled per prompt (or
    `samples_per_prompt`), with GAE over a critic. "formulary": every candidate response of the
    prompt (in the loop, the formulary's prescriptions for its problem), weighted by the policy's
    probability of it, so PPO's expectation over responses is exact and needs no critic
    (clinrlhf.ppo.enumerated); with `adaptive_kl` the β whose optimum sits at `kl_target` is solved
    for once instead of chased. Used by "formulary" only: steps, batch_size (prompts), mini_batches,
    ppo_epochs, lr, adam_eps, cliprange, init_kl_coef, adaptive_kl, kl_target, kl_cap, temperature,
    max_grad_norm, target_approx_kl, checkpoint_every, final_kl_samples, response_length (of the
    final KL's samples) and seed."""
    steps: int = 120
    """PPO iterations; each samples `batch_size` responses and then updates on them."""
    batch_size: int = 128
    """Rollouts (prompt, response) per iteration."""
    samples_per_prompt: int = 1
    """Responses sampled per prompt in an iteration. Above 1, each response's score has the mean score
    of its siblings subtracted (a leave-one-out baseline, Ahmadian et al., 2024): a Bradley–Terry
    reward is only identified up to a per-prompt constant, which the value model would otherwise
    have to learn before the advantages mean anything."""
    mini_batches: int = 2
    """Mini-batches each iteration's rollouts are split into; large ones average out update noise."""
    ppo_epochs: int = 4
    """Passes over each iteration's rollouts."""
    lr: float = 3e-4
    """Adam step size, shared by the policy and the value model."""
    adam_eps: float = 1e-5
    """Adam's epsilon (Huang et al.'s 1e-5; 1e-3 was measured too: docs/results.md)."""
    gamma: float = 1.0
    """Discount; 1 because the episode is one short response (Ziegler et al., 2019)."""
    lam: float = 0.95
    """GAE lambda."""
    cliprange: float = 0.2
    """Clip range of the policy ratio."""
    cliprange_value: float = 0.2
    """Clip range of the value update around the rollout's values."""
    vf_coef: float = 0.1
    """Weight of the value loss in the joint loss."""
    kl_estimator: Literal["k1", "k3"] = "k1"
    """Per-token KL estimator in the reward penalty (http://joschu.net/blog/kl-approx.html)."""
    init_kl_coef: float = 0.3
    """Initial KL coefficient beta; high enough that update noise cannot spend the KL budget."""
    adaptive_kl: bool = True
    """Adapt beta toward `kl_target` (Ziegler et al., 2019); otherwise keep it fixed."""
    kl_target: float = 1.0
    """Target KL of policy from reference, in nats per response (sum over its tokens)."""
    kl_horizon: float = 3000.0
    """Horizon of the adaptive KL controller, in episodes; smaller reacts faster (Ziegler et al. used
    10,000)."""
    kl_cap: float | None = 12.0
    """Hard ceiling on the mean KL per response: training stops with KLCapExceeded above it."""
    temperature: float = 1.0
    """Sampling temperature, used again when log-probs are recomputed."""
    response_length: int = 20
    """Most tokens a response may have, EOS included."""
    missing_eos_penalty: float = -1.0
    """Added to the score of a response that does not end with EOS within `response_length`."""
    length_penalty: float = 0.0
    """Subtracted from the score per response token."""
    whiten_rewards: bool = False
    """Scale per-token rewards to unit variance (without shifting their mean)."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm of policy and value model to this."""
    target_approx_kl: float | None = 0.1
    """Stop an iteration's epochs early once the policy moved further than this from the rollout's."""
    checkpoint_every: int = 20
    """Save a resumable checkpoint every this many iterations (and after the last one)."""
    final_kl_samples: int = 256
    """Responses sampled after training to measure the final KL and reward."""
    seed: int | None = None
    """Seeds torch and the generator used for sampling, prompt choice and mini-batch order.
    None: derived from the pipeline seed (clinrlhf.pipeline.seeds) in a pipeline run, 0 when trained alone."""

    @staticmethod
    def upgrade_settings(overrides: Mapping[str, Any]) -> dict[str, Any]:
        """A whole `ppo` section logged before `rollouts` existed (every other field, as a run logs
        its config) is of a run that sampled: read it so, not as today's loop default. A partial
        override (a user's `{"ppo": {"kl_target": 1.5}}`) is left to the defaults."""
        out = dict(overrides)
        if "rollouts" not in out and {f.name for f in fields(PPOConfig)} - {"rollouts"} <= out.keys():
            out["rollouts"] = "sampled"
        return out

    def __post_init__(self) -> None:
        if self.batch_size % self.mini_batches:
            raise ValueError("batch_size must be a multiple of mini_batches")
        if self.samples_per_prompt < 1 or self.batch_size % self.samples_per_prompt:
            raise ValueError("batch_size must be a positive multiple of samples_per_prompt")
        if self.rollouts not in ("sampled", "formulary"):
            raise ValueError(f"rollouts must be 'sampled' or 'formulary', not {self.rollouts!r}")
        if self.rollouts == "formulary" and self.samples_per_prompt != 1:
            raise ValueError(
                'samples_per_prompt is for sampled rollouts; "formulary" weighs every response already'
            )
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError("kl_estimator must be 'k1' or 'k3'")

    @property
    def mini_batch_size(self) -> int:
        return self.batch_size // self.mini_batches

    def params(self) -> dict[str, object]:
        """The config as MLflow params, namespaced `ppo.`."""
        return {f"ppo.{key}": value for key, value in asdict(self).items()}
