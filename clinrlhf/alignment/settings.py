"""The methods compared, and the settings each trains with: the pipeline's own, or smoke-sized ones."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from clinrlhf.dpo.config import DPOConfig
from clinrlhf.pipeline.config import PipelineConfig
from clinrlhf.ppo.config import PPOConfig
from clinrlhf.reward.config import RewardConfig
from clinrlhf.reward.pairs import PreferencePair
from privacy.dp.opacus_config import DPConfig

METHODS = ("sft", "ppo", "dpo-dp", "dpo", "rlaif")
NAMES = {
    "sft": "SFT",
    "ppo": "PPO (pipeline)",
    "dpo-dp": "DPO (DP, ε={eps:g})",
    "dpo": "DPO (non-private)",
    "rlaif": "RLAIF + PPO",
}
KL_SAMPLES = 1024
"""Responses sampled per policy for the held-out KL estimate (full mode)."""


@dataclass(frozen=True)
class BenchSettings:
    """How the comparison trains and measures: the pipeline's own settings, or tiny ones under --quick."""

    dpo: DPOConfig
    reward: RewardConfig
    ppo: PPOConfig
    kl_samples: int
    max_train_pairs: int | None
    """Train DPO and the RLAIF reward on at most this many pairs (a seeded sample); None: all."""
    utility_patients: int
    quick: bool


def bench_settings(
    config: PipelineConfig, *, quick: bool, dpo_epsilon: float, kl_samples: int | None
) -> BenchSettings:
    """The pipeline's own settings (RLAIF: rater weighting off), or tiny ones under --quick."""
    reward = replace(config.reward, rater_weighting="none", rater_accuracies=None)
    dpo = DPOConfig(
        dp=DPConfig(target_epsilon=dpo_epsilon, accountant=config.reward.dp.accountant), seed=config.seed
    )
    ppo = config.ppo
    if quick:
        reward = replace(reward, epochs=1)
        dpo = replace(dpo, epochs=1)
        ppo = replace(ppo, steps=2, final_kl_samples=min(ppo.final_kl_samples, ppo.batch_size))
    return BenchSettings(
        dpo=dpo,
        reward=reward,
        ppo=ppo,
        kl_samples=kl_samples if kl_samples is not None else (128 if quick else KL_SAMPLES),
        max_train_pairs=512 if quick else None,
        utility_patients=40 if quick else 200,
        quick=quick,
    )


def subsample(pairs: list[PreferencePair], n: int | None, seed: int) -> list[PreferencePair]:
    """At most `n` of `pairs` (a seeded sample, in their order); all of them for None."""
    if n is None or len(pairs) <= n:
        return pairs
    keep = set(random.Random(seed).sample(range(len(pairs)), n))
    return [p for i, p in enumerate(pairs) if i in keep]
